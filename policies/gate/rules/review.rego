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
import data.gate.rules.provenance

predicate_type := "https://gate.dev/attestation/code-review/v1"

# Nothing here is computed unless the environment requires a review rule.
required if "review" in lib.required_families

# Per subject, computed once: the positions in input.attestations of every code-review
# attestation about it, and of the trusted ones.
all_review_indices_of[s] := lib.indices_about(s, {predicate_type}) if {
	required
	some s in lib.subjects
}

review_indices_of[s] := [i | some i in indices; lib.attestor_trusted("review", input.attestations[i])] if {
	some s, indices in all_review_indices_of
}

all_reviews(s) := [input.attestations[i] | some i in all_review_indices_of[s]]

reviews(s) := [input.attestations[i] | some i in review_indices_of[s]]

ignored(s) := lib.ids(all_reviews(s)) - lib.ids(reviews(s))

min_approvals := lib.env_setting(["review", "min_approvals"], 1)

authorized_identities := {lower(x) | some x in object.get(lib.config, ["review", "authorized_reviewers"], []); is_string(x)}

authorized_patterns := [p | some p in object.get(lib.config, ["review", "authorized_reviewer_patterns"], []); is_string(p)]

# Identities compare case-insensitively. The patterns are matched only for identities that are
# not listed (each pattern is a regular expression compiled anew in every evaluation).
authorized(identity) if {
	lower(identity) in authorized_identities
} else if {
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

# The time of every approval and request for changes of the trusted review at position i, in
# nanoseconds (parsed once; absent when it cannot be read): reviewer position -> time.
reviewer_times[i] := {j: t |
	some j, r in input.attestations[i].predicate.reviewers
	r.decision in {"APPROVED", "CHANGES_REQUESTED"}
	t := time.parse_rfc3339_ns(r.time)
} if {
	some _, indices in review_indices_of
	some i in indices
}

# An approval stands unless the same reviewer requested changes at the same time or later (or
# at a time that cannot be read). An approval whose time cannot be read does not count.
approvers(i) := {lower(r.identity) |
	a := input.attestations[i]
	times := reviewer_times[i]
	some j, r in a.predicate.reviewers
	r.decision == "APPROVED"
	eligible(a, r)
	t := times[j]
	not revoked(a, times, r, t)
}

revoked(a, times, approval, t) if {
	some j, r in a.predicate.reviewers
	r.decision == "CHANGES_REQUESTED"
	same_reviewer(r, approval)
	not before(times, j, t)
}

before(times, j, t) if times[j] < t

# A request for changes stands until the same reviewer approves strictly later.
requesting_changes(i) := {r.identity |
	a := input.attestations[i]
	times := reviewer_times[i]
	some j, r in a.predicate.reviewers
	r.decision == "CHANGES_REQUESTED"
	eligible(a, r)
	not superseded(a, times, j, r)
}

superseded(a, times, j, request) if {
	t := times[j]
	some k, r in a.predicate.reviewers
	r.decision == "APPROVED"
	same_reviewer(r, request)
	times[k] > t
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
	"review.approvals" in lib.required
	some s in lib.subjects
	some i in review_indices_of[s]
	a := input.attestations[i]
	n := count(approvers(i))
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
	"review.changes_requested" in lib.required
	some s in lib.subjects
	some i in review_indices_of[s]
	a := input.attestations[i]
	requesters := requesting_changes(i)
	count(requesters) > 0
	message := concat("", [
		"reviewer ", lib.list_text(sort(requesters), 3), " requested changes in code review ", lib.short(a.id), " of ",
		change_text(a), " and did not approve since",
	])
	remediation := "address the requested changes and get the reviewer's approval"
}

failures contains failure(s, a, "review.revision", message, remediation) if {
	"review.revision" in lib.required
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
	"review.present" in lib.required
	some s in lib.subjects
	count(review_indices_of[s]) == 0
	message := missing_message(s)
	remediation := "attach a code-review attestation (https://gate.dev/attestation/code-review/v1) signed by a trusted review attestor"
}

missing_message(s) := concat("", ["no code-review attestation for ", s.label]) if {
	count(all_review_indices_of[s]) == 0
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
