# METADATA
# title: semantic versions and ranges
# description: |
#   Versions are compared by semver.compare and checked by semver.is_valid (OPA's builtins,
#   which the gate provides to WebAssembly): Semantic Versioning 2.0.0 with an optional leading
#   "v", precedence as the specification orders it, build metadata ignored. Ranges are not an
#   OPA builtin and are read here: comparators ">=", ">", "<=", "<", "=" (or none, meaning "=")
#   each directly followed by a version, separated by spaces (all must hold), alternatives
#   joined by "||"; "*" matches every version. In a range a version may omit minor and patch
#   (taken as 0).
package gate.lib.versions

valid(v) if {
	plain(v)
} else if {
	semver.is_valid(v)
}

# compare("1.2.3", "1.10.0") == -1; undefined unless both are valid versions
compare(a, b) := cmp(numbers(a), numbers(b)) if {
	plain(a)
	plain(b)
} else := semver.compare(a, b)

# "2.4.0": MAJOR.MINOR.PATCH of at most 15 digits each, without leading zeros, prerelease or
# build metadata. semver.is_valid accepts it and semver.compare orders such versions as their
# numbers; they are recognised and compared here without a call to the host.
plain(v) if {
	parts := split(v, ".")
	count(parts) == 3
	every p in parts {
		plain_number(p)
	}
}

plain_number(p) if {
	count(p) > 0
	count(p) <= 15
	trim(p, "0123456789") == ""
	not leading_zero(p)
}

leading_zero(p) if {
	count(p) > 1
	startswith(p, "0")
}

numbers(v) := [to_number(p) | some p in split(v, ".")]

cmp(ka, kb) := -1 if ka < kb

cmp(ka, kb) := 0 if ka == kb

cmp(ka, kb) := 1 if ka > kb

# satisfies("2.3.1", ">=2.0.0 <3.0.0")
satisfies(v, range) if {
	valid(v)
	valid_range(range)
	some alternative in split(range, "||")
	every c in comparators(alternative) {
		comparator_holds(v, c)
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

# ">=2.0" -> [">=", "2.0"]; "2.0.0" -> ["", "2.0.0"]
operator_and_bound(c) := [">=", substring(c, 2, -1)] if {
	startswith(c, ">=")
} else := ["<=", substring(c, 2, -1)] if {
	startswith(c, "<=")
} else := [">", substring(c, 1, -1)] if {
	startswith(c, ">")
} else := ["<", substring(c, 1, -1)] if {
	startswith(c, "<")
} else := ["=", substring(c, 1, -1)] if {
	startswith(c, "=")
} else := ["", c]

# A bound may leave out minor and patch ("2", "v2.1"): they are 0. A bound with a prerelease
# or build metadata is taken as it is.
bound_version(b) := b if {
	some marker in ["-", "+"]
	contains(b, marker)
} else := concat("", [b, ".0.0"]) if {
	count(split(b, ".")) == 1
} else := concat("", [b, ".0"]) if {
	count(split(b, ".")) == 2
} else := b

valid_comparator("*")

valid_comparator(c) if {
	c != "*"
	valid(bound_version(operator_and_bound(c)[1]))
}

comparator_holds(_, "*")

comparator_holds(v, c) if {
	c != "*"
	ob := operator_and_bound(c)
	op_holds(ob[0], compare(v, bound_version(ob[1])))
}

op_holds("", 0)

op_holds("=", 0)

op_holds(">", 1)

op_holds(">=", c) if c >= 0

op_holds("<", -1)

op_holds("<=", c) if c <= 0
