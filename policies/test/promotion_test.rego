package gate_test.promotion

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

violation_ids(inp) := fx.ids(decide(inp).violations)

test_staging_vsa_allows_production if {
	violation_ids(fx.input_ok) == []
}

test_missing_vsa_is_denied if {
	d := decide(fx.without("s1"))
	fx.ids(d.violations) == ["promotion.vsa"]
	d.violations[0].message == "no verification summary shows that app was allowed for staging"
}

test_vsa_for_another_environment_is_denied if {
	d := decide(fx.replace("s1", fx.vsa_with({"policy": {"uri": "https://gate.example/policies/environments/dev"}})))
	fx.ids(d.violations) == ["promotion.vsa"]
	contains(d.violations[0].message, "not for environment staging")
	d.violations[0].attestations == ["s1"]
}

test_failed_vsa_is_denied if {
	violation_ids(fx.replace("s1", fx.vsa_with({"verificationResult": "FAILED"}))) == ["promotion.vsa"]
}

test_vsa_from_another_verifier_is_denied if {
	violation_ids(fx.replace("s1", fx.vsa_with({"verifier": {"id": "https://other.example/verifier"}}))) == ["promotion.vsa"]
}

test_vsa_signed_by_another_key_is_denied if {
	v := fx.att("s1", "https://slsa.dev/verification_summary/v1", fx.vsa_predicate, fx.key_signer("someone-else"))
	violation_ids(fx.replace("s1", v)) == ["promotion.vsa"]
}

test_vsa_naming_another_digest_is_denied if {
	v := fx.vsa_with({"resourceUri": concat("", ["oci://registry.example/app@", fx.key_db])})
	violation_ids(fx.replace("s1", v)) == ["promotion.vsa"]
}

test_one_good_vsa_among_bad_ones_passes if {
	dev := object.union(fx.vsa_with({"policy": {"uri": "https://gate.example/policies/environments/dev"}}), {"id": "s0"})
	violation_ids(fx.input_with({"attestations": array.concat(fx.attestations, [dev])})) == []
}

# A verification summary's age (issue 8, item 10): measured from its verified log and
# timestamp-authority times and its timeVerified, all within promotion.max_age_hours (72 here).

vsa_at(time_verified, timestamps) := object.union(fx.vsa_with({"timeVerified": time_verified}), {"timestamps": timestamps})

logged(t) := [{"source": "transparency-log", "time": t}]

test_a_fresh_vsa_passes if {
	violation_ids(fx.replace("s1", vsa_at("2026-11-18T12:00:00Z", logged("2026-11-18T12:00:02Z")))) == []
}

# The attack: a staging summary never expired.
test_a_stale_vsa_is_denied if {
	d := decide(fx.replace("s1", vsa_at("2026-10-01T10:00:00Z", logged("2026-10-01T10:00:02Z"))))
	fx.ids(d.violations) == ["promotion.vsa"]
	d.violations[0].message == "verification summary s1 was verified at 2026-10-01T10:00:00Z, more than 72 hours before 2026-11-20T12:00:00Z"
	d.violations[0].attestations == ["s1"]
}

test_a_stale_time_verified_is_denied_even_when_logged_recently if {
	violation_ids(fx.replace("s1", vsa_at("2026-10-01T10:00:00Z", logged("2026-11-20T10:00:00Z")))) == ["promotion.vsa"]
}

test_a_stale_log_time_is_denied_even_with_a_recent_time_verified if {
	d := decide(fx.replace("s1", vsa_at("2026-11-20T10:00:00Z", [{"source": "timestamp-authority", "time": "2026-10-01T10:00:00Z"}])))
	fx.ids(d.violations) == ["promotion.vsa"]
	contains(d.violations[0].message, "was verified at 2026-10-01T10:00:00Z")
}

test_time_verified_alone_is_enough_for_an_unlogged_vsa if {
	violation_ids(fx.replace("s1", vsa_at("2026-11-20T10:00:00Z", []))) == []
	violation_ids(fx.replace("s1", vsa_at("2026-11-01T10:00:00Z", []))) == ["promotion.vsa"]
}

test_a_verified_time_is_enough_without_time_verified if {
	fresh := fx.att("s1", "https://slsa.dev/verification_summary/v1", json.remove(fx.vsa_predicate, ["timeVerified"]), fx.key_signer("gate-key"))
	violation_ids(fx.replace("s1", fresh)) == []
}

test_a_vsa_without_any_time_is_denied if {
	untimed := object.union(fx.att("s1", "https://slsa.dev/verification_summary/v1", json.remove(fx.vsa_predicate, ["timeVerified"]), fx.key_signer("gate-key")), {"timestamps": []})
	d := decide(fx.replace("s1", untimed))
	fx.ids(d.violations) == ["promotion.vsa"]
	d.violations[0].message == "verification summary s1 has no verified time and no readable timeVerified to measure its age"
	violation_ids(fx.replace("s1", vsa_at("yesterday", []))) == ["promotion.vsa"]
}

test_a_vsa_verified_after_the_decision_time_is_denied if {
	d := decide(fx.replace("s1", vsa_at("2026-11-21T12:00:00Z", [])))
	fx.ids(d.violations) == ["promotion.vsa"]
	contains(d.violations[0].message, "after the decision time")
	violation_ids(fx.replace("s1", vsa_at("2026-11-20T12:04:00Z", []))) == []
}

test_a_missing_max_age_is_config_invalid if {
	cfg := json.remove(fx.config, ["environments/production/promotion/max_age_hours"])
	d := data.gate.decision with input as fx.input_ok with data.gate.config as cfg
	d.allow == false
	d.violations[0].id == "config.invalid"
	contains(d.violations[0].message, "promotion.max_age_hours")
}

hotfix_input(statements, context) := fx.input_with({
	"environment": "hotfix",
	"attestations": array.concat([fx.provenance], statements),
	"context": context,
})

ticket_statement(ticket) := fx.change_statement({"changeKinds": ["content"], "ticket": ticket})

test_hotfix_lane_needs_no_vsa_but_a_ticket if {
	d := decide(hotfix_input([ticket_statement("INC-4711")], {}))
	d.allow == true
	not "promotion.vsa" in d.rules
	"change.ticket" in d.rules
}

test_hotfix_without_ticket_is_denied if {
	d := decide(hotfix_input([], {}))
	fx.ids(d.violations) == ["change.ticket"]
	d.violations[0].subject == fx.key_app
	d.violations[0].message == "the hotfix environment requires a change ticket from a verified change statement about app and none was found"
}

# The attack of issue 8 (item 4): the unsigned context names a ticket to waive the staging summary.
test_a_context_ticket_alone_does_not_satisfy_change_ticket if {
	d := decide(hotfix_input([], {"ticket": "INC-4711"}))
	d.allow == false
	fx.ids(d.violations) == ["change.ticket"]
	contains(d.violations[0].message, `the unsigned context.ticket "INC-4711" does not count`)
}

test_a_ticket_from_an_untrusted_signer_does_not_count if {
	rogue := fx.att("c1", fx.change_type, {"changeKinds": ["content"], "ticket": "INC-4711"}, fx.signer("https://github.com/mallory/x/.github/workflows/change.yml@refs/heads/main"))
	d := decide(hotfix_input([rogue], {"ticket": "INC-4711"}))
	fx.ids(d.violations) == ["change.ticket"]
	contains(d.violations[0].message, "1 change statement ignored")
	d.violations[0].attestations == ["c1"]
}

test_hotfix_ticket_must_match_the_pattern if {
	d := decide(hotfix_input([ticket_statement("see slack")], {}))
	fx.ids(d.violations) == ["change.ticket"]
	contains(d.violations[0].message, `change ticket "see slack"`)
	contains(d.violations[0].message, "^(?:INC-[0-9]+)$")
	d.violations[0].attestations == ["c1"]
}

test_hotfix_release_set_needs_a_ticket_for_every_subject if {
	inp := object.union(hotfix_input([ticket_statement("INC-4711")], {}), {"subjects": [fx.subject_app, fx.subject_db]})
	d := decide(inp)
	d.allow == false
	[v.subject | some v in d.violations; v.id == "change.ticket"] == [fx.key_db]
}
