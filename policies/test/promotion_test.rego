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

hotfix_input(context) := fx.input_with({"environment": "hotfix", "attestations": [fx.provenance], "context": context})

test_hotfix_lane_needs_no_vsa_but_a_ticket if {
	d := decide(hotfix_input({"ticket": "INC-4711"}))
	d.allow == true
	not "promotion.vsa" in d.rules
	"change.ticket" in d.rules
}

test_hotfix_without_ticket_is_denied if {
	d := decide(hotfix_input({}))
	fx.ids(d.violations) == ["change.ticket"]
	not d.violations[0].subject
}

test_hotfix_ticket_must_match_the_pattern if {
	d := decide(hotfix_input({"ticket": "see slack"}))
	fx.ids(d.violations) == ["change.ticket"]
	contains(d.violations[0].message, "^(?:INC-[0-9]+)$")
}
