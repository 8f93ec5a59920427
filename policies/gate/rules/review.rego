# METADATA
# title: code review
# description: |
#   Code-review attestations (https://gate.dev/attestation/code-review/v1, see
#   schemas/code-review-predicate.schema.json) signed by config.attestors.review. One review
#   attestation must pass every required review check at once: enough approvals from authorized
#   reviewers who are not the author (each reviewer counted once), no outstanding request for
#   changes, and a reviewed revision that trusted provenance of the subject was built from.
package gate.rules.review

import data.gate.lib
import data.gate.lib.timestamps
import data.gate.rules.provenance

predicate_type := "https://gate.dev/attestation/code-review/v1"

all_reviews(s) := lib.attestations_about(s, {predicate_type})

reviews(s) := [a | some a in all_reviews(s); lib.attestor_trusted("review", a)]

ignored(s) := lib.ids(all_reviews(s)) - lib.ids(reviews(s))

min_approvals := lib.env_setting(["review", "min_approvals"], 1)

authorized_identities := {lower(x) | some x in object.get(lib.config, ["review", "authorized_reviewers"], []); is_string(x)}

authorized_patterns := [p | some p in object.get(lib.config, ["review", "authorized_reviewer_patterns"], []); is_string(p)]

# Identities compare case-insensitively.
authorized(identity) if lower(identity) in authorized_identities

authorized(identity) if {
	some p in authorized_patterns
	regex.match(lib.anchored(p), identity)
}

# A review counts only from an authorized reviewer who is not the author; without an author
# nobody can be shown not to be the author, so nothing counts.
eligible(a, r) if {
	is_string(a.predicate.author)
	is_string(r.identity)
	authorized(r.identity)
	lower(r.identity) != lower(a.predicate.author)
}

same_reviewer(r1, r2) if lower(r1.identity) == lower(r2.identity)

# An approval stands unless the same reviewer requested changes at the same time or later (or
# at a time that cannot be read).
approvers(a) := {lower(r.identity) |
	some r in a.predicate.reviewers
	r.decision == "APPROVED"
	eligible(a, r)
	t := timestamps.parse_ms(r.time)
	not revoked(a, r, t)
}

revoked(a, approval, t) if {
	some r in a.predicate.reviewers
	r.decision == "CHANGES_REQUESTED"
	same_reviewer(r, approval)
	not before(r, t)
}

before(r, t) if timestamps.parse_ms(r.time) < t

# A request for changes stands until the same reviewer approves strictly later.
requesting_changes(a) := {r.identity |
	some r in a.predicate.reviewers
	r.decision == "CHANGES_REQUESTED"
	eligible(a, r)
	not superseded(a, r)
}

superseded(a, request) if {
	t := timestamps.parse_ms(request.time)
	some r in a.predicate.reviewers
	r.decision == "APPROVED"
	same_reviewer(r, request)
	timestamps.parse_ms(r.time) > t
}

# "acme/api#42", "https://github.com/acme/api#42" or "change <id12>"
change_text(a) := concat("", [a.predicate.change.repository, "#", number_text(a.predicate.change)]) if {
	is_string(a.predicate.change.repository)
	number_text(a.predicate.change)
} else := concat("", ["the change in review ", lib.short(a.id)])

number_text(c) := format_int(c.number, 10) if is_number(c.number)

else := c.id if is_string(c.id)

revision(a) := lower(a.predicate.change.revision) if is_string(a.predicate.change.revision)

# Failures per candidate --------------------------------------------------------------------

failures contains failure(s, a, "review.approvals", message, remediation) if {
	some s in lib.subjects
	some a in reviews(s)
	n := count(approvers(a))
	n < min_approvals
	message := concat("", [
		"code review ", lib.short(a.id), " of ", change_text(a), " has ", lib.plural(n, "approval"),
		" from authorized reviewers other than the author; ", input.environment, " requires ",
		format_int(min_approvals, 10),
	])
	remediation := concat("", [
		"get approvals from ", format_int(min_approvals, 10),
		" distinct authorized reviewers (data.gate.config.review) who did not author the change",
	])
}

failures contains failure(s, a, "review.changes_requested", message, remediation) if {
	some s in lib.subjects
	some a in reviews(s)
	requesters := requesting_changes(a)
	count(requesters) > 0
	message := concat("", [
		"reviewer ", lib.list_text(sort(requesters), 3), " requested changes in code review ", lib.short(a.id), " of ",
		change_text(a), " and did not approve since",
	])
	remediation := "address the requested changes and get the reviewer's approval"
}

failures contains failure(s, a, "review.revision", message, remediation) if {
	some s in lib.subjects
	some a in reviews(s)
	not revision_built(a, s)
	message := revision_message(s, a)
	remediation := "review the exact commit that was built: the review's change.revision must equal the source revision in the provenance"
}

revision_built(a, s) if revision(a) in provenance.trusted_revisions(s)

revision_message(s, a) := concat("", [
	"code review ", lib.short(a.id), " names no reviewed revision",
]) if {
	not revision(a)
} else := concat("", [
	"code review ", lib.short(a.id), " covers revision ", revision(a), ", but no trusted provenance of ", s.label,
	" names a source revision",
]) if {
	count(provenance.trusted_revisions(s)) == 0
} else := concat("", [
	"code review ", lib.short(a.id), " covers revision ", revision(a), ", but ", s.label, " was built from ",
	lib.list_text(sort(provenance.trusted_revisions(s)), 3),
])

failure(s, a, id, message, remediation) := {
	"att": a.id,
	"key": s.key,
	"result": lib.subject_result(id, s.key, message, remediation, [a.id]),
}

# Results ------------------------------------------------------------------------------------

present contains lib.subject_result("review.present", s.key, message, remediation, ignored(s)) if {
	some s in lib.subjects
	count(reviews(s)) == 0
	message := missing_message(s)
	remediation := "attach a code-review attestation (https://gate.dev/attestation/code-review/v1) signed by a trusted review attestor"
}

missing_message(s) := concat("", ["no code-review attestation for ", s.label]) if {
	count(all_reviews(s)) == 0
} else := concat("", [
	"no code-review attestation for ", s.label, " is signed by a trusted review attestor (",
	lib.plural(count(ignored(s)), "attestation"), " ignored)",
])

subject_failures(s) := {f | some f in failures; f.key == s.key}

violations := lib.violations_of(present) | {r |
	some s in lib.subjects
	some r in lib.conformance_violations(lib.ids(reviews(s)), subject_failures(s))
}

warnings := lib.warnings_of(present) | {r |
	some s in lib.subjects
	some r in lib.conformance_warnings(lib.ids(reviews(s)), subject_failures(s))
}
