package gate_test.fail_closed

# Missing or malformed fields never pass. In Rego `not f(x.missing)` is undefined, not true,
# so every check is written as "not passes(...)" over a defined argument; these tests hold it.

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

test_provenance_without_build_type_is_denied if {
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"buildDefinition": "refs/heads/main"}), fx.signer(fx.release_workflow))
	"provenance.build_type" in fx.ids(decide(fx.replace("p1", p)).violations)
}

test_review_without_revision_is_denied if {
	r := fx.att("r1", "https://gate.dev/attestation/code-review/v1", object.remove(fx.review_predicate, ["change"]), fx.signer(fx.review_bot))
	"review.revision" in fx.ids(decide(fx.replace("r1", r)).violations)
}

test_vsa_without_fields_is_denied if {
	v := fx.att("s1", "https://slsa.dev/verification_summary/v1", {}, fx.key_signer("gate-key"))
	fx.ids(decide(fx.replace("s1", v)).violations) == ["promotion.vsa", "promotion.vsa", "promotion.vsa", "promotion.vsa"]
}

test_vsa_check_without_configured_verifier_is_denied if {
	cfg := object.remove(fx.config, ["vsa"])
	ids := fx.ids(decide_with_config(fx.input_ok, cfg).violations)
	"config.invalid" in ids
	"promotion.vsa" in ids
}

test_malformed_attestation_is_denied if {
	broken := object.remove(fx.provenance, ["signer"])
	d := decide(fx.input_with({"attestations": array.concat(fx.attestations, [object.union(broken, {"id": 7})])}))
	"input.attestations" in fx.ids(d.violations)
}

test_constraint_without_range_is_denied if {
	cfg := object.union(fx.config, {"release": {"constraints": [{"component": "app", "requires": "db"}]}})
	inp := fx.input_with({"subjects": [fx.subject_app, fx.subject_db]})
	ids := fx.ids(decide_with_config(inp, cfg).violations)
	"config.invalid" in ids
	"release.constraints" in ids
}

test_non_list_attestors_trust_nobody if {
	cfg := object.union(fx.config, {"attestors": {"tests": "anyone"}})
	ids := fx.ids(decide_with_config(fx.input_ok, cfg).violations)
	"tests.present" in ids
	"config.invalid" in ids
}

test_non_list_required_rules_are_a_config_error if {
	cfg := object.union(fx.config, {"environments": {"production": {"required_rules": "all"}}})
	d := decide_with_config(fx.input_ok, cfg)
	d.allow == false
	"config.invalid" in fx.ids(d.violations)
}

test_non_list_required_suites_are_a_config_error if {
	cfg := fx.config_env("production", {"tests": {"required_suites": "unit"}})
	"config.invalid" in fx.ids(decide_with_config(fx.input_ok, cfg).violations)
}

test_non_string_threshold_is_a_config_error if {
	cfg := fx.config_env("production", {"vulnerabilities": {"severity_threshold": 3}})
	"config.invalid" in fx.ids(decide_with_config(fx.input_ok, cfg).violations)
}

test_scan_without_a_readable_result_is_denied if {
	unreadable := fx.att("v1", "https://in-toto.io/attestation/vulns/v0.2", object.remove(fx.scan.predicate, ["scanner"]), fx.signer(fx.ci_workflow))
	d := decide(fx.replace("v1", unreadable))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
	contains(d.violations[0].message, "no scanner.result the gate can read")
}

test_scan_with_an_empty_result_passes if {
	fx.ids(decide(fx.replace("v1", fx.scan_with_results([], "2026-11-20T09:00:00Z"))).violations) == []
}

test_malformed_attestation_names_what_it_lacks_in_order if {
	broken := object.remove(fx.provenance, ["signer", "predicateType"])
	d := decide(fx.input_with({"attestations": array.concat(fx.attestations, [object.union(broken, {"id": 7})])}))
	some v in d.violations
	v.id == "input.attestations"
	v.message == "attestation 5 is malformed: it needs a signer with a kind, a string id, a string predicateType"
}
