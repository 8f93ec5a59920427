# METADATA
# title: rules every decision evaluates
# description: |
#   environment.unknown, input.effective_time, input.subjects, input.attestations and
#   config.invalid are always enforced; evidence that failed verification is reported as
#   evidence.rejected warnings.
package gate.rules.core

import data.gate.lib
import data.gate.lib.versions

results contains lib.global_result(
	"environment.unknown",
	concat("", ["environment ", lib.quote(object.get(input, "environment", null)), " is not configured"]),
	environment_remediation,
	[],
) if {
	not lib.known_environment
}

environment_remediation := concat("", [
	"ask for one of the configured environments (", concat(", ", sort(object.keys(lib.environments))),
	") or add it under data.gate.config.environments",
]) if {
	count(lib.environments) > 0
} else := "configure environments under data.gate.config.environments"

results contains lib.global_result(
	"input.effective_time",
	concat("", ["effectiveTime ", lib.quote(object.get(input, "effectiveTime", null)), " is not an rfc 3339 date-time"]),
	"pass the decision time as an rfc 3339 date-time such as 2026-11-20T12:00:00Z",
	[],
) if {
	not lib.now_ns
}

results contains lib.global_result(
	"input.subjects",
	"the request names no subject",
	"name at least one subject with a sha256 or sha512 digest",
	[],
) if {
	not has_subjects
}

results contains lib.global_result(
	"input.subjects",
	concat("", ["subject ", format_int(i, 10), " has no valid sha256 or sha512 hex digest"]),
	"give every subject a digest of 64 (sha256) or 128 (sha512) hex characters",
	[],
) if {
	some i, _ in input.subjects
	not lib.subject_keys[i]
}

results contains lib.global_result(
	"input.attestations",
	"the request's attestations are not a list",
	"pass the verified attestations as a list",
	[],
) if {
	not is_array(object.get(input, "attestations", null))
}

results contains lib.global_result(
	"input.attestations",
	concat("", ["attestation ", format_int(i, 10), " is malformed: it needs ", lib.list_text(missing, 6)]),
	"pass every verified attestation with id, predicateType, predicate, signer.kind and subject.digest",
	[x | x := a.id; is_string(x)],
) if {
	some i, a in input.attestations
	not well_formed(a)

	# sorted: the order of an object's keys is opa's (sorted) but not WebAssembly's
	missing := sort([field | some field, ok in attestation_shape(a); not ok])
	count(missing) > 0
}

# the common case, checked without building attestation_shape
well_formed(a) if {
	is_string(a.id)
	is_string(a.predicateType)
	is_object(a.predicate)
	is_string(a.signer.kind)
	is_object(a.subject.digest)
}

attestation_shape(a) := {
	"a string id": is_string(object.get(a, "id", null)),
	"a string predicateType": is_string(object.get(a, "predicateType", null)),
	"an object predicate": is_object(object.get(a, "predicate", null)),
	"a signer with a kind": is_string(object.get(a, ["signer", "kind"], null)),
	"a subject with a digest": is_object(object.get(a, ["subject", "digest"], null)),
} if {
	is_object(a)
} else := {"an object": false}

has_subjects if {
	is_array(input.subjects)
	count(input.subjects) > 0
}

# config.invalid: a configuration that cannot mean what it says -------------------------------

config_problems contains concat("", ["environment ", input.environment, " requires unknown rule ", id]) if {
	some id in lib.unknown_configured_rules
}

config_problems contains concat("", ["rule_effective_on for ", id, " is not an rfc 3339 date-time: ", lib.quote(t)]) if {
	some id, t in lib.effective_on
	not lib.effective_on_ns[id]
}

config_problems contains concat("", ["environment ", input.environment, " has no list of required_rules"]) if {
	lib.known_environment
	not is_array(lib.env_setting(["required_rules"], null))
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires vulnerabilities.severity but vulnerabilities.severity_threshold is not one of low, medium, high, critical",
]) if {
	"vulnerabilities.severity" in lib.required
	not severity_name(lib.env_setting(["vulnerabilities", "severity_threshold"], null))
}

severity_name(s) if {
	is_string(s)
	lower(s) in {"low", "medium", "high", "critical"}
}

config_problems contains concat("", ["environment ", input.environment, "'s tests.required_suites is not a list of names"]) if {
	suites := lib.env_setting(["tests", "required_suites"], [])
	not string_list(suites)
}

config_problems contains concat("", [
	"environment ", input.environment, "'s tests.match is ", lib.quote(m), ", not \"passed_tests\" or \"configuration\"",
]) if {
	m := lib.env_setting(["tests", "match"], "passed_tests")
	not m in {"passed_tests", "configuration"}
}

string_list(l) if {
	is_array(l)
	every x in l {
		is_string(x)
	}
}

config_problems contains concat("", ["attestors.", name, " is not a list of signer matchers"]) if {
	some name, matchers in object.get(lib.config, "attestors", {})
	not is_array(matchers)
}

config_problems contains "attestors is not an object" if {
	not is_object(object.get(lib.config, "attestors", {}))
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires vulnerabilities.fresh but vulnerabilities.max_scan_age_hours is not a positive number",
]) if {
	"vulnerabilities.fresh" in lib.required
	not positive(lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null))
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires review.approvals but review.min_approvals is not a number",
]) if {
	"review.approvals" in lib.required
	not is_number(lib.env_setting(["review", "min_approvals"], null))
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires promotion.vsa but promotion.requires_vsa_from names no environment",
]) if {
	"promotion.vsa" in lib.required
	not non_empty_string_list(lib.env_setting(["promotion", "requires_vsa_from"], []))
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires promotion.vsa but promotion.max_age_hours is not a positive number",
]) if {
	"promotion.vsa" in lib.required
	not positive(lib.env_setting(["promotion", "max_age_hours"], null))
}

non_empty_string_list(l) if {
	string_list(l)
	count(l) > 0
}

config_problems contains concat("", [
	"environment ", input.environment,
	" requires promotion.vsa but vsa.verifier_id is not set",
]) if {
	"promotion.vsa" in lib.required
	not is_string(object.get(lib.config, ["vsa", "verifier_id"], null))
}

config_problems contains concat("", ["release constraint ", format_int(i, 10), " is malformed: ", lib.quote(c)]) if {
	"release.constraints" in lib.required
	some i, c in object.get(lib.config, ["release", "constraints"], [])
	not valid_constraint(c)
}

valid_constraint(c) if {
	is_string(c.component)
	is_string(c.requires)
	versions.valid_range(c.range)
}

positive(n) if {
	is_number(n)
	n > 0
}

results contains lib.global_result(
	"config.invalid",
	concat("", ["the gate configuration is invalid: ", problem]),
	"fix data.gate.config (see docs/policies.md); until then nothing is allowed",
	[],
) if {
	some problem in config_problems
}

violations := lib.violations_of(results)

warnings := lib.warnings_of(results) | rejected

# Evidence that failed verification: reported so a reader sees what was not counted.
rejected contains lib.global_result(
	"evidence.rejected",
	concat("", [
		"evidence ", lib.short(object.get(r, "id", "")), " from ", object.get(r, "source", "an unknown source"),
		" failed verification and was not counted: ", object.get(r, "code", "UNKNOWN"), ": ", object.get(r, "message", ""),
	]),
	"re-create or re-sign the evidence so that it verifies, or remove it",
	[x | x := r.id; is_string(x)],
) if {
	some r in input.rejected
}
