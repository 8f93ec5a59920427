package gate_test.review

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

with_reviewers(list) := fx.replace("r1", fx.reviewers(list))

violation_ids(inp) := fx.ids(decide(inp).violations)

test_two_authorized_approvals_pass if {
	violation_ids(fx.input_ok) == []
}

test_one_approval_is_denied if {
	d := decide(with_reviewers([["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"]]))
	fx.ids(d.violations) == ["review.approvals"]
	d.violations[0].message == "code review r1 of https://github.com/acme/app#42 has 1 approval from authorized reviewers other than the author; production requires 2"
	d.violations[0].attestations == ["r1"]
}

test_author_cannot_approve_their_own_change if {
	author := fx.review_with({
		"author": "Alice@acme.example",
		"reviewers": [
			{"identity": "alice@acme.example", "decision": "APPROVED", "time": "2026-11-20T07:00:00Z"},
			{"identity": "bob@acme.example", "decision": "APPROVED", "time": "2026-11-20T07:05:00Z"},
		],
	})
	violation_ids(fx.replace("r1", author)) == ["review.approvals"]
}

test_a_reviewer_is_counted_once if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["ALICE@acme.example", "APPROVED", "2026-11-20T07:30:00Z"],
	])) == ["review.approvals"]
}

test_unauthorized_reviewers_do_not_count if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["mallory@evil.example", "APPROVED", "2026-11-20T07:05:00Z"],
	])) == ["review.approvals"]
}

test_reviewer_patterns_authorize if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["frank@sre.acme.example", "APPROVED", "2026-11-20T07:05:00Z"],
	])) == []
}

test_reviewer_patterns_are_anchored if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["frank@sre.acme.example.evil.example", "APPROVED", "2026-11-20T07:05:00Z"],
	])) == ["review.approvals"]
}

test_comments_do_not_count if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["bob@acme.example", "COMMENTED", "2026-11-20T07:05:00Z"],
	])) == ["review.approvals"]
}

test_outstanding_request_for_changes_is_denied if {
	d := decide(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["bob@acme.example", "APPROVED", "2026-11-20T07:05:00Z"],
		["carol@acme.example", "CHANGES_REQUESTED", "2026-11-20T07:10:00Z"],
	]))
	fx.ids(d.violations) == ["review.changes_requested"]
	startswith(d.violations[0].message, "reviewer carol@acme.example requested changes")
}

test_request_for_changes_then_approval_passes if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["bob@acme.example", "CHANGES_REQUESTED", "2026-11-20T07:05:00Z"],
		["bob@acme.example", "APPROVED", "2026-11-20T07:15:00Z"],
	])) == []
}

test_approval_then_request_for_changes_revokes_it if {
	violation_ids(with_reviewers([
		["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"],
		["bob@acme.example", "APPROVED", "2026-11-20T07:05:00Z"],
		["bob@acme.example", "CHANGES_REQUESTED", "2026-11-20T07:15:00Z"],
	])) == ["review.approvals", "review.changes_requested"]
}

test_reviewed_revision_must_be_the_built_one if {
	d := decide(fx.replace("r1", fx.review_with({"change": {"revision": "2222222222222222222222222222222222222222"}})))
	fx.ids(d.violations) == ["review.revision"]
	contains(d.violations[0].message, "was built from 1111111111111111111111111111111111111111")
}

test_revision_needs_trusted_provenance if {
	rogue := fx.provenance_signed_by(fx.signer("https://github.com/mallory/x/.github/workflows/release.yml@refs/heads/main"))
	"review.revision" in violation_ids(fx.replace("p1", rogue))
}

test_one_review_must_pass_every_check if {
	# r1 has the approvals but the wrong revision; r2 the right revision but one approval
	wrong := fx.review_with({"change": {"revision": "2222222222222222222222222222222222222222"}})
	one := object.union(fx.reviewers([["alice@acme.example", "APPROVED", "2026-11-20T07:00:00Z"]]), {"id": "r2"})
	ids := violation_ids(fx.input_with({"attestations": array.concat([a | some a in fx.attestations; a.id != "r1"], [wrong, one])}))
	ids == ["review.approvals", "review.revision"]
}

test_review_from_untrusted_signer_is_ignored if {
	rogue := fx.att("r1", "https://gate.dev/attestation/code-review/v1", fx.review_predicate, fx.signer("https://github.com/mallory/x/.github/workflows/review.yml@refs/heads/main"))
	violation_ids(fx.replace("r1", rogue)) == ["review.present"]
}
