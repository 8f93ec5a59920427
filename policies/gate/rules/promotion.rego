# METADATA
# title: promotion
# description: |
#   An environment that lists promotion.requires_vsa_from (production: ["staging"]) requires,
#   for every subject and every listed environment, a SLSA verification summary
#   (https://slsa.dev/verification_summary/v1) issued by the gate itself: verifier.id equal to
#   config.vsa.verifier_id, signed by one of config.vsa.signers, verificationResult PASSED, a
#   resourceUri ending with the subject's "sha256:<hex>" and a policy.uri ending with
#   "/environments/<environment>". Its age is bounded: every time it carries (the verified
#   transparency-log and timestamp-authority times, and its timeVerified) must lie within the
#   environment's promotion.max_age_hours before input.effectiveTime, and at least one must.
package gate.rules.promotion

import data.gate.lib

predicate_type := "https://slsa.dev/verification_summary/v1"

from_environments := [e | some e in lib.env_setting(["promotion", "requires_vsa_from"], []); is_string(e)]

verifier_id := object.get(lib.config, ["vsa", "verifier_id"], null)

default vsa_signers := []

vsa_signers := s if {
	s := lib.config.vsa.signers
	is_array(s)
}

# Per subject, computed once: the verification summaries about it.
summaries_of[s] := lib.attestations_about(s, {predicate_type}) if {
	some s in lib.subjects
}

summaries(s) := summaries_of[s]

environment_suffix(e) := concat("", ["/environments/", e])

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some a in summaries(s)
	not from_verifier(a)
	message := concat("", [
		"verification summary ", lib.short(a.id), " is from verifier ",
		lib.quote(object.get(a, ["predicate", "verifier", "id"], null)), ", not ", lib.quote(verifier_id),
	])
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some a in summaries(s)
	not signed_by_gate(a)
	message := concat("", [
		"verification summary ", lib.short(a.id), " is signed by ", lib.describe_signer(object.get(a, "signer", {})),
		", which is not a configured gate identity",
	])
}

from_verifier(a) if {
	is_string(verifier_id)
	a.predicate.verifier.id == verifier_id
}

signed_by_gate(a) if {
	some m in vsa_signers
	lib.signer_matches(a.signer, m)
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some a in summaries(s)
	not passed(a)
	message := concat("", [
		"verification summary ", lib.short(a.id), " records verificationResult ",
		lib.quote(object.get(a, ["predicate", "verificationResult"], null)),
	])
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some a in summaries(s)
	not names_digest(a, s)
	message := concat("", [
		"verification summary ", lib.short(a.id), " has resourceUri ",
		lib.quote(object.get(a, ["predicate", "resourceUri"], null)), ", which does not end with ", s.key,
	])
}

passed(a) if a.predicate.verificationResult == "PASSED"

# Age ------------------------------------------------------------------------------------------

max_age_hours := lib.env_setting(["promotion", "max_age_hours"], null)

oldest_allowed_ns := lib.now_ns - (max_age_hours * 3600000000000) if is_number(max_age_hours)

# Clocks of the gate that issued a summary, of the log and of the gate deciding now differ by
# seconds; a summary from further in the future did not exist at the decision time (a decision
# replayed as of an earlier time must not count it).
latest_allowed_ns := lib.now_ns + 300000000000

# [ns, text] of every time a summary carries: the verified log and timestamp-authority times
# (from verification, not from the statement) and the gate's own signed timeVerified.
summary_times(a) := {[ns, x.time] |
	some x in a.timestamps
	is_string(x.time)
	ns := time.parse_rfc3339_ns(x.time)
} | {[ns, t] |
	t := a.predicate.timeVerified
	is_string(t)
	ns := time.parse_rfc3339_ns(t)
}

# Per subject, computed once: the times of each of its summaries, by position.
times_of[s] := [summary_times(a) | some a in summaries(s)] if {
	some s in lib.subjects
}

not_stale(times) if min(times)[0] >= oldest_allowed_ns

not_future(times) if max(times)[0] <= latest_allowed_ns

max_age_text := lib.plural(max_age_hours, "hour") if {
	is_number(max_age_hours)
} else := "promotion.max_age_hours"

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some j, a in summaries(s)
	count(times_of[s][j]) == 0
	message := concat("", [
		"verification summary ", lib.short(a.id),
		" has no verified time and no readable timeVerified to measure its age",
	])
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some j, a in summaries(s)
	times := times_of[s][j]
	count(times) > 0
	not not_stale(times)
	message := concat("", [
		"verification summary ", lib.short(a.id), " was verified at ", min(times)[1],
		", more than ", max_age_text, " before ", lib.text(input.effectiveTime),
	])
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some j, a in summaries(s)
	times := times_of[s][j]
	not_stale(times)
	not not_future(times)
	message := concat("", [
		"verification summary ", lib.short(a.id), " was verified at ", max(times)[1],
		", after the decision time ", input.effectiveTime,
	])
}

names_digest(a, s) if {
	is_string(a.predicate.resourceUri)
	endswith(lower(a.predicate.resourceUri), s.key)
}

problems contains [s.key, e, a.id, message] if {
	some s in lib.subjects
	some e in from_environments
	some a in summaries(s)
	not for_environment(a, e)
	message := concat("", [
		"verification summary ", lib.short(a.id), " is for policy ",
		lib.quote(object.get(a, ["predicate", "policy", "uri"], null)), ", not for environment ", e,
	])
}

for_environment(a, e) if {
	is_string(a.predicate.policy.uri)
	endswith(a.predicate.policy.uri, environment_suffix(e))
}

promoted(s, e) if {
	some a in summaries(s)
	not has_problem(s, e, a)
}

has_problem(s, e, a) if {
	some p in problems
	p[0] == s.key
	p[1] == e
	p[2] == a.id
}

remediation(s, e) := concat("", [
	"decide ", s.key, " for ", e, " first: the gate's allow for ", e,
	" issues the verification summary that promotion requires",
])

results contains lib.subject_result("promotion.vsa", s.key, message, remediation(s, e), []) if {
	"promotion.vsa" in lib.required
	some s in lib.subjects
	some e in from_environments
	count(summaries(s)) == 0
	message := concat("", ["no verification summary shows that ", s.label, " was allowed for ", e])
}

results contains lib.subject_result("promotion.vsa", s.key, message, remediation(s, e), [p[2]]) if {
	"promotion.vsa" in lib.required
	some s in lib.subjects
	some e in from_environments
	count(summaries(s)) > 0
	not promoted(s, e)
	some p in problems
	p[0] == s.key
	p[1] == e
	message := p[3]
}

violations := lib.violations_of(results)

warnings := lib.warnings_of(results)
