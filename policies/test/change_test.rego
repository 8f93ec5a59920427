package gate_test.change

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

signed_change(kinds) := fx.change_statement({"changeKinds": kinds, "ticket": "CHG-1"})

# provenance alone, with the given signed change statements and the caller's context
provenance_with_changes(statements, context) := fx.input_with({
	"attestations": array.concat([fx.provenance], statements),
	"context": context,
})

routine_rules := ["config.invalid", "environment.unknown", "input.attestations", "input.effective_time", "input.subjects", "provenance.present", "provenance.signer", "provenance.trusted_builder"]

# The attack of issue 8 (item 4): the caller declares a routine change in the unsigned context.
test_declared_but_unsigned_metadata_change_gets_every_rule if {
	d := decide(provenance_with_changes([], {"changeKinds": ["metadata"]}))
	d.allow == false
	"tests.present" in fx.ids(d.violations)
	"vulnerabilities.present" in fx.ids(d.violations)
	"promotion.vsa" in d.rules
}

test_declared_metadata_change_does_not_waive_failed_tests_and_a_critical_finding if {
	failed := fx.tests_run_with({"result": "FAILED", "failedTests": ["unit/checkout > total"]})
	critical := fx.scan_with_results([fx.finding("CVE-2026-9999", "CRITICAL")], "2026-11-20T09:00:00Z")
	inp := fx.input_with({
		"attestations": array.concat([a | some a in fx.attestations; not a.id in {"t1", "v1"}], [failed, critical]),
		"context": {"changeKinds": ["metadata"]},
	})
	d := decide(inp)
	d.allow == false
	"tests.passed" in fx.ids(d.violations)
	"vulnerabilities.severity" in fx.ids(d.violations)
}

test_unsigned_declaration_is_reported_as_a_warning if {
	d := decide(provenance_with_changes([], {"changeKinds": ["metadata"]}))
	w := [x | some x in d.warnings; x.id == "change.unverified_context"]
	count(w) == 1
	contains(w[0].message, "metadata")
	contains(w[0].message, "unsigned")
}

test_change_statement_from_an_untrusted_signer_does_not_count if {
	rogue := fx.att("c1", fx.change_type, {"changeKinds": ["metadata"]}, fx.signer("https://github.com/mallory/x/.github/workflows/change.yml@refs/heads/main"))
	d := decide(provenance_with_changes([rogue], {}))
	d.allow == false
	"tests.present" in fx.ids(d.violations)
}

test_change_statement_signed_by_a_trusted_builder_does_not_count if {
	# only attestors.change may state change kinds, not whoever may sign something else
	by_builder := fx.att("c1", fx.change_type, {"changeKinds": ["metadata"]}, fx.signer(fx.release_workflow))
	decide(provenance_with_changes([by_builder], {})).allow == false
}

test_trusted_change_statement_selects_the_routine_rules if {
	d := decide(provenance_with_changes([signed_change(["metadata", "docs"])], {}))
	d.allow == true
	d.rules == routine_rules
	d.warnings == []
}

test_routine_rules_still_apply if {
	rogue := fx.provenance_signed_by(fx.signer("https://github.com/mallory/x/.github/workflows/release.yml@refs/heads/main"))
	d := decide(fx.input_with({"attestations": [rogue, signed_change(["metadata"])], "context": {}}))
	fx.ids(d.violations) == ["provenance.signer"]
}

test_a_key_change_among_routine_ones_needs_every_rule if {
	d := decide(provenance_with_changes([signed_change(["metadata", "keys"])], {}))
	d.allow == false
	"promotion.vsa" in fx.ids(d.violations)
	"tests.present" in fx.ids(d.violations)
}

test_two_statements_count_every_kind_they_state if {
	other := object.union(fx.change_statement({"changeKinds": ["content"]}), {"id": "c2"})
	d := decide(provenance_with_changes([signed_change(["metadata"]), other], {}))
	"tests.present" in fx.ids(d.violations)
}

test_unsigned_context_can_tighten_but_not_relax if {
	d := decide(provenance_with_changes([signed_change(["metadata"])], {"changeKinds": ["keys"]}))
	d.allow == false
	"tests.present" in fx.ids(d.violations)
}

test_a_statement_about_another_digest_does_not_count if {
	about_db := fx.change_statement_for(fx.subject_db, "c1", {"changeKinds": ["metadata"]})
	decide(provenance_with_changes([about_db], {})).allow == false
}

test_a_statement_without_change_kinds_is_not_routine if {
	decide(provenance_with_changes([fx.change_statement({"ticket": "CHG-1"})], {})).allow == false
	decide(provenance_with_changes([fx.change_statement({"changeKinds": []})], {})).allow == false
	decide(provenance_with_changes([fx.change_statement({"changeKinds": "metadata"})], {})).allow == false
	decide(provenance_with_changes([fx.change_statement({"changeKinds": {"kind": "metadata"}})], {})).allow == false
}

test_no_change_attestors_trusts_nobody if {
	inp := provenance_with_changes([signed_change(["metadata"])], {})
	without := json.remove(fx.config, ["attestors/change"])
	decide_with_config(inp, without).allow == false
	decide_with_config(inp, object.union(fx.config, {"attestors": {"change": []}})).allow == false
}

test_undeclared_change_kinds_need_every_rule if {
	d := decide(fx.input_with({"attestations": [fx.provenance], "context": {}}))
	d.allow == false
	"review.present" in fx.ids(d.violations)
}

# A release set is routine only when every subject has a trusted change statement.
release_input(statements) := fx.input_with({
	"subjects": [fx.subject_app, fx.subject_db],
	"attestations": array.concat(
		[fx.provenance, fx.att_for(fx.subject_db, "p2", "https://slsa.dev/provenance/v1", fx.provenance_predicate, fx.signer(fx.release_workflow))],
		statements,
	),
	"context": {},
})

test_release_set_is_routine_when_every_subject_has_a_statement if {
	app := fx.change_statement_for(fx.subject_app, "c1", {"changeKinds": ["metadata"]})
	db := fx.change_statement_for(fx.subject_db, "c2", {"changeKinds": ["docs"]})
	decide(release_input([app, db])).allow == true
}

test_release_set_with_one_subject_unstated_needs_every_rule if {
	app := fx.change_statement_for(fx.subject_app, "c1", {"changeKinds": ["metadata"]})
	d := decide(release_input([app]))
	d.allow == false
	"tests.present" in fx.ids(d.violations)
}
