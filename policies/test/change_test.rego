package gate_test.change

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

provenance_only(kinds) := fx.input_with({"attestations": [fx.provenance], "context": {"changeKinds": kinds}})

test_routine_change_needs_fewer_rules if {
	d := decide(provenance_only(["metadata", "docs"]))
	d.allow == true
	d.rules == ["config.invalid", "environment.unknown", "input.attestations", "input.effective_time", "input.subjects", "provenance.present", "provenance.signer", "provenance.trusted_builder"]
}

test_routine_rules_still_apply if {
	rogue := fx.provenance_signed_by(fx.signer("https://github.com/mallory/x/.github/workflows/release.yml@refs/heads/main"))
	d := decide(fx.input_with({"attestations": [rogue], "context": {"changeKinds": ["metadata"]}}))
	fx.ids(d.violations) == ["provenance.signer"]
}

test_a_key_change_among_routine_ones_needs_every_rule if {
	d := decide(provenance_only(["metadata", "keys"]))
	d.allow == false
	"promotion.vsa" in fx.ids(d.violations)
	"tests.present" in fx.ids(d.violations)
}

test_undeclared_change_kinds_need_every_rule if {
	d := decide(fx.input_with({"attestations": [fx.provenance], "context": {}}))
	d.allow == false
	"review.present" in fx.ids(d.violations)
}
