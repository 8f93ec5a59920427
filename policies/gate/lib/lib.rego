# METADATA
# title: shared helpers of the gate policy library
# description: |
#   Configuration access, the environment's rule set (with change kinds and effective-on dates),
#   subjects, signer matching and result construction. Besides the builtins compiled natively
#   to WebAssembly, the library calls only time.parse_rfc3339_ns and semver.*, which the gate
#   provides to WebAssembly (src/evaluate/builtins.ts). Work that does not depend on an
#   argument is a rule, computed once per evaluation; functions are recomputed on every call.
package gate.lib

import data.gate.lib.changes

# Rules every environment evaluates; they cannot be disabled or postponed.
always_rules := {"config.invalid", "environment.unknown", "input.attestations", "input.effective_time", "input.subjects"}

# Rules an environment can require (data.gate.config.environments[env].required_rules).
known_rules := {
	"change.ticket",
	"promotion.vsa",
	"provenance.build_type",
	"provenance.present",
	"provenance.signer",
	"provenance.source_ref",
	"provenance.source_repository",
	"provenance.trusted_builder",
	"release.constraints",
	"review.approvals",
	"review.changes_requested",
	"review.present",
	"review.revision",
	"tests.passed",
	"tests.present",
	"tests.required_suites",
	"vulnerabilities.fresh",
	"vulnerabilities.present",
	"vulnerabilities.severity",
}

# Families whose "<family>.present" rule is implied by any other rule of the family.
present_families := {"provenance", "review", "tests", "vulnerabilities"}

default config := {}

config := c if {
	c := data.gate.config
	is_object(c)
}

default environments := {}

environments := e if {
	e := config.environments
	is_object(e)
}

known_environment if {
	is_string(input.environment)
	is_object(environments[input.environment])
}

# The configuration of input.environment; {} when it is unknown.
default env := {}

env := environments[input.environment] if known_environment

# env_setting(["vulnerabilities", "severity_threshold"], "high")
env_setting(path, fallback) := object.get(env, path, fallback)

# The decision time: input.effectiveTime in nanoseconds since the Unix epoch. Undefined when it
# is not an RFC 3339 date-time time.parse_rfc3339_ns reads; every check that needs it then
# fails closed.
now_ns := time.parse_rfc3339_ns(input.effectiveTime)

# Change kinds -------------------------------------------------------------------------------

# A change is routine when the environment names a routine rule set, trusted change statements
# (data.gate.lib.changes) state kinds for every subject, and every kind stated, or declared in
# the unsigned context, is one of the environment's routine kinds. The context can thus make a
# change non-routine, never routine.
routine_change if {
	is_array(env.change_kinds.routine_required_rules)
	changes.every_subject_stated
	routine := env_setting(["change_kinds", "routine"], [])
	kinds := changes.verified_kinds | changes.declared_kinds
	every k in kinds {
		k in routine
	}
}

configured_rules := {id | some id in env.change_kinds.routine_required_rules; is_string(id)} if routine_change

configured_rules := {id | some id in env_setting(["required_rules"], []); is_string(id)} if not routine_change

unknown_configured_rules := (configured_rules - known_rules) - always_rules

configured_known := configured_rules & known_rules

family(id) := split(id, ".")[0]

# The families of the required rules ("provenance" for "provenance.signer"): a family's
# rules compute nothing when it has none here.
required_families := {family(id) | some id in configured_known}

implied_present := {p |
	some f in (required_families & present_families)
	p := concat(".", [f, "present"])
	not p in configured_known
}

# Every rule the environment requires (enforced now or effective later).
required := configured_known | implied_present

# Effective-on dates ---------------------------------------------------------------------------

default effective_on := {}

effective_on := e if {
	e := config.rule_effective_on
	is_object(e)
}

# rule id -> its effective-on date in nanoseconds, for every date that parses (parsed once)
effective_on_ns := {id: ns | some id, t in effective_on; ns := time.parse_rfc3339_ns(t)}

pending_configured[id] := t if {
	some id, t in effective_on
	id in configured_known
	now_ns < effective_on_ns[id]
}

# An implied "<family>.present" is pending only while every required rule of its family is,
# until the earliest of their dates.
pending_implied[p] := earliest if {
	some p in implied_present
	members := {id | some id in configured_known; family(id) == family(p)}
	every id in members {
		pending_configured[id]
	}
	earliest := min({[effective_on_ns[id], pending_configured[id]] | some id in members})[1]
}

# Required rules not yet in effect at input.effectiveTime: rule id -> effective-on date.
pending := object.union(pending_configured, pending_implied)

# Rules whose failures are violations.
enforced := (required - {id | some id, _ in pending}) | always_rules

# Every rule evaluated for this decision.
evaluated := required | always_rules

# Subjects -----------------------------------------------------------------------------------

hex_lengths := {"sha256": 64, "sha512": 128}

# Note on negation: `not f(x.missing)` is undefined in Rego (the argument is evaluated first),
# never true. Checks therefore negate a helper over arguments that are always defined.
# A digest is 64 (sha256) or 128 (sha512) hex characters: counted, and nothing left once every
# hex character is trimmed (cheaper than a regular expression, which WebAssembly compiles anew
# in every evaluation).
valid_digest(s, alg) if {
	d := object.get(s, ["digest", alg], null)
	is_string(d)
	count(d) == hex_lengths[alg]
	trim(d, "0123456789abcdefABCDEF") == ""
}

digests(s) := {alg: lower(s.digest[alg]) | some alg in ["sha256", "sha512"]; valid_digest(s, alg)}

# "sha256:<hex>" (sha512 only when there is no sha256)
subject_key(s) := key_of_digests(digests(s))

key_of_digests(ds) := concat(":", ["sha256", ds.sha256]) if {
	is_string(ds.sha256)
} else := concat(":", ["sha512", ds.sha512]) if {
	is_string(ds.sha512)
}

# The valid digests and the key of each input subject, by position (computed once).
subject_digests[i] := digests(s) if some i, s in input.subjects

subject_keys[i] := key_of_digests(ds) if some i, ds in subject_digests

# the first 12 characters of an attestation id, as messages name attestations
short(id) := substring(id, 0, 12) if {
	is_string(id)
} else := json.marshal(id)

subject_label(s, key) := s.name if {
	is_string(s.name)
	s.name != ""
} else := concat("", [substring(key, 0, 7 + 12), "..."])

# The subjects decided on: key, label (name or short digest), name, version and digests.
subjects contains subject if {
	some i, key in subject_keys
	s := input.subjects[i]
	subject := {
		"key": key,
		"label": subject_label(s, key),
		"name": object.get(s, "name", null),
		"version": object.get(s, "version", null),
		"digests": subject_digests[i],
	}
}

# Attestations ---------------------------------------------------------------------------------

# The attestation was matched to subject s (by any digest algorithm both carry).
about(a, s) if {
	some alg, hex in s.digests
	d := a.subject.digest[alg]
	is_string(d)
	lower(d) == hex
}

# Positions in input.attestations of the attestations about each subject (computed once; keyed
# by the whole subject, as two subjects may share a digest).
about_indices[s] := [i | some i, a in input.attestations; about(a, s)] if {
	some s in subjects
}

# Positions of the attestations of the given predicate types about subject s, in input order.
indices_about(s, types) := [i | some i in about_indices[s]; input.attestations[i].predicateType in types]

# The attestations of the given predicate types about subject s, in input order.
attestations_about(s, types) := [input.attestations[i] | some i in indices_about(s, types)]

ids(atts) := {a.id | some a in atts}

# Signers ----------------------------------------------------------------------------------

anchored(re) := concat("", ["^(?:", re, ")$"])

# A matcher is {"san", "issuer"} or {"san_regexp", "issuer"} (keyless; the regular expression
# is always anchored) with optional exact "extensions", or {"key_id"} (key-signed bundles).
signer_matches(signer, m) if {
	signer.kind == "keyless"
	is_string(m.san)
	signer.identity == m.san
	signer.issuer == m.issuer
	extensions_match(signer, m)
}

# (the exact checks first: the regular expression is compiled anew in every evaluation)
signer_matches(signer, m) if {
	signer.kind == "keyless"
	is_string(m.san_regexp)
	is_string(signer.identity)
	signer.issuer == m.issuer
	extensions_match(signer, m)
	regex.match(anchored(m.san_regexp), signer.identity)
}

signer_matches(signer, m) if {
	signer.kind == "key"
	is_string(m.key_id)
	signer.keyId == m.key_id
}

extensions_match(signer, m) if {
	every name, value in object.get(m, "extensions", {}) {
		object.get(signer, ["extensions", name], null) == value
	}
}

describe_signer(signer) := concat("", [signer.identity, " (issuer ", object.get(signer, "issuer", "unknown"), ")"]) if {
	signer.kind == "keyless"
	is_string(signer.identity)
} else := concat("", ["key ", signer.keyId]) if {
	signer.kind == "key"
	is_string(signer.keyId)
} else := "an unidentified signer"

describe_matcher(m) := concat("", [m.san, " (issuer ", m.issuer, ")"]) if {
	is_string(m.san)
} else := concat("", [anchored(m.san_regexp), " (issuer ", m.issuer, ")"]) if {
	is_string(m.san_regexp)
} else := concat("", ["key ", m.key_id]) if {
	is_string(m.key_id)
} else := json.marshal(m)

# config.attestors[family] lists who may sign tests, vulnerabilities and review attestations.
# Absent: any verified signer. Present: one of its matchers must match ([], or anything that
# is not a list, trusts nobody; the latter is also config.invalid).
attestor_trusted(fam, _) if {
	attestors := object.get(config, "attestors", {})
	is_object(attestors)
	not fam in object.keys(attestors)
}

attestor_trusted(fam, a) if {
	some m in config.attestors[fam]
	is_object(m)
	signer_matches(a.signer, m)
}

# Text ---------------------------------------------------------------------------------------

quote(v) := json.marshal(v)

# a string as it is, anything else as json
text(v) := v if {
	is_string(v)
} else := json.marshal(v)

# "a, b, c" for at most n items, then " and 2 more"
list_text(items, n) := concat(", ", items) if count(items) <= n

list_text(items, n) := concat("", [concat(", ", array.slice(items, 0, n)), " and ", format_int(count(items) - n, 10), " more"]) if {
	count(items) > n
}

# "1 approval" / "2 approvals"
plural(n, word) := concat(" ", [format_int(n, 10), word]) if n == 1

plural(n, word) := concat("", [format_int(n, 10), " ", word, "s"]) if n != 1

# Repositories and refs ----------------------------------------------------------------------

# "git+https://github.com/Acme/App.git@refs/heads/main" -> "https://github.com/acme/app"
normalize_repo(uri) := trim_suffix(trim_suffix(split(trim_prefix(lower(uri), "git+"), "@")[0], "/"), ".git")

# "git+https://github.com/acme/app@refs/heads/main" -> "refs/heads/main"
ref_of_uri(uri) := ref if {
	rest := trim_prefix(uri, "git+")
	i := indexof(rest, "@")
	i >= 0
	ref := substring(rest, i + 1, -1)
	ref != ""
}

# Results ------------------------------------------------------------------------------------

subject_result(id, key, message, remediation, atts) := {
	"id": id,
	"subject": key,
	"message": message,
	"remediation": remediation,
	"attestations": sort({x | some x in atts}),
}

global_result(id, message, remediation, atts) := {
	"id": id,
	"message": message,
	"remediation": remediation,
	"attestations": sort({x | some x in atts}),
}

# A family's results split by the state of their rule: enforced ones are violations, pending
# ones warnings carrying effectiveOn, and results of rules not required are dropped.
violations_of(results) := {r | some r in results; r.id in enforced}

warnings_of(results) := {object.union(r, {"effectiveOn": pending[r.id]}) | some r in results; pending[r.id]}

# Conformance families (provenance, review): one candidate attestation must pass every check
# at once. fs is a set of {"att": id, "result": Result}. While no candidate passes all
# enforced checks, each candidate's enforced failures are reported.
passing(candidates, fs, checks) := {c | some c in candidates; not failing(c, fs, checks)}

failing(c, fs, checks) if {
	some f in fs
	f.att == c
	f.result.id in checks
}

# enforced and pending rules: every rule evaluated
active := evaluated

conformance_violations(candidates, fs) := {f.result |
	count(passing(candidates, fs, enforced)) == 0
	some f in fs
	f.result.id in enforced
}

# Warnings for rules not yet in effect: what would fail once they are, reported for the
# candidates that pass today (or for all, when none does).
conformance_warnings(candidates, fs) := {object.union(f.result, {"effectiveOn": pending[f.result.id]}) |
	count(passing(candidates, fs, active)) == 0
	pool := warning_pool(candidates, fs)
	some f in fs
	f.att in pool
	pending[f.result.id]
}

warning_pool(candidates, fs) := p if {
	p := passing(candidates, fs, enforced)
	count(p) > 0
} else := candidates
