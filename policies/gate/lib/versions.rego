# METADATA
# title: semantic versions without semver.* builtins
# description: |
#   semver.compare and semver.is_valid are not compiled to WebAssembly, so versions are
#   compared here: a version becomes the key [major, minor, patch, release, prerelease] and
#   keys compare as arrays (Semantic Versioning 2.0.0 precedence; build metadata is ignored).
#   Ranges: comparators ">=", ">", "<=", "<", "=" (or none, meaning "=") each directly
#   followed by a version, separated by spaces (all must hold), alternatives joined by "||";
#   "*" matches every version. In a range a version may omit minor and patch (taken as 0).
package gate.lib.versions

import data.gate.lib.num

# MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], optional leading "v"; numbers of at most 15 digits.
version_re := `^v?(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`

# as version_re, but minor and patch may be left out (then they are 0)
bound_re := `^v?(0|[1-9][0-9]{0,14})(?:\.(0|[1-9][0-9]{0,14})(?:\.(0|[1-9][0-9]{0,14})(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?$`

comparator_re := `^(>=|<=|>|<|=)?(.+)$`

valid(v) if key(v)

key(v) := k if {
	is_string(v)
	m := regex.find_all_string_submatch_n(version_re, v, 1)
	count(m) == 1
	k := key_of(m[0])
}

bound_key(v) := k if {
	m := regex.find_all_string_submatch_n(bound_re, v, 1)
	count(m) == 1
	k := key_of(m[0])
}

key_of(g) := [num.int(g[1]), int_or_zero(g[2]), int_or_zero(g[3]), release_flag(g[4]), prerelease_key(g[4])]

int_or_zero("") := 0

int_or_zero(s) := num.int(s) if s != ""

# a release (no prerelease) sorts after all of its prereleases
release_flag("") := 1

release_flag(p) := 0 if p != ""

prerelease_key("") := []

prerelease_key(p) := [identifier_key(x) | some x in split(p, ".")] if p != ""

# numeric identifiers sort numerically and before alphanumeric ones, which sort as ASCII
identifier_key(x) := [0, num.int(x), ""] if regex.match(`^[0-9]{1,15}$`, x)

identifier_key(x) := [1, 0, x] if not regex.match(`^[0-9]{1,15}$`, x)

# compare("1.2.3", "1.10.0") == -1; undefined unless both are valid versions
compare(a, b) := cmp(key(a), key(b))

cmp(ka, kb) := -1 if ka < kb

cmp(ka, kb) := 0 if ka == kb

cmp(ka, kb) := 1 if ka > kb

# satisfies("2.3.1", ">=2.0.0 <3.0.0")
satisfies(v, range) if {
	k := key(v)
	valid_range(range)
	some alternative in split(range, "||")
	every c in comparators(alternative) {
		comparator_holds(k, c)
	}
}

valid_range(range) if {
	is_string(range)
	every alternative in split(range, "||") {
		count(comparators(alternative)) > 0
		every c in comparators(alternative) {
			valid_comparator(c)
		}
	}
}

comparators(alternative) := [c | some c in split(trim_space(alternative), " "); c != ""]

valid_comparator("*")

valid_comparator(c) if {
	c != "*"
	m := regex.find_all_string_submatch_n(comparator_re, c, 1)
	bound_key(m[0][2])
}

comparator_holds(_, "*")

comparator_holds(k, c) if {
	c != "*"
	m := regex.find_all_string_submatch_n(comparator_re, c, 1)
	op_holds(m[0][1], cmp(k, bound_key(m[0][2])))
}

op_holds("", 0)

op_holds("=", 0)

op_holds(">", 1)

op_holds(">=", c) if c >= 0

op_holds("<", -1)

op_holds("<=", c) if c <= 0
