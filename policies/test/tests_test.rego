package gate_test.tests

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

decide_in(env, inp) := decide(object.union(inp, {"environment": env}))

test_passing_runs_covering_every_suite_pass if {
	fx.ids(decide(fx.input_ok).violations) == []
}

test_suites_may_come_from_separate_runs if {
	unit := fx.att("t1", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {"configuration": [{"name": "unit"}]}), fx.signer(fx.ci_workflow))
	integration := fx.att("t2", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {"configuration": [{"name": "integration"}]}), fx.signer(fx.ci_workflow))
	inp := fx.input_with({"attestations": array.concat([unit, integration], [a | some a in fx.attestations; a.id != "t1"])})
	fx.ids(decide(inp).violations) == []
}

test_failed_run_is_denied if {
	d := decide(fx.replace("t1", fx.tests_run_with({"result": "FAILED", "failedTests": ["checkout total"]})))
	fx.ids(d.violations) == ["tests.passed", "tests.required_suites", "tests.required_suites"]
	d.violations[0].message == `test run t1 for app reported "FAILED" with failed tests: checkout total`
	d.violations[0].attestations == ["t1"]
}

test_passed_run_with_failed_tests_is_denied if {
	d := decide(fx.replace("t1", fx.tests_run_with({"failedTests": ["flaky"]})))
	"tests.passed" in fx.ids(d.violations)
}

test_a_failed_run_is_not_outweighed_by_a_passing_one if {
	failed := fx.att("t9", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {"result": "FAILED"}), fx.signer(fx.ci_workflow))
	d := decide(fx.input_with({"attestations": array.concat(fx.attestations, [failed])}))
	fx.ids(d.violations) == ["tests.passed"]
}

test_warned_run_passes_where_allowed if {
	d := decide_in("staging", fx.replace("t1", fx.tests_run_with({"result": "WARNED", "warnedTests": ["slow"]})))
	d.allow == true
}

test_warned_run_is_denied_in_production if {
	d := decide(fx.replace("t1", fx.tests_run_with({"result": "WARNED"})))
	"tests.passed" in fx.ids(d.violations)
}

test_green_run_missing_a_required_suite_is_denied if {
	d := decide(fx.replace("t1", fx.tests_run_with({"configuration": [{"name": "unit"}]})))
	d.allow == false
	fx.ids(d.violations) == ["tests.required_suites"]
	contains(d.violations[0].message, "integration")
	d.violations[0].attestations == ["t1"]
}

test_missing_runs_report_presence_only if {
	d := decide(fx.without("t1"))
	fx.ids(d.violations) == ["tests.present"]
	d.violations[0].message == "no test-result attestation for app"
}

test_runs_from_untrusted_signers_are_ignored if {
	rogue := fx.att("t1", "https://in-toto.io/attestation/test-result/v0.1", fx.tests_predicate, fx.signer("https://github.com/mallory/x/.github/workflows/ci.yml@refs/heads/main"))
	d := decide(fx.replace("t1", rogue))
	fx.ids(d.violations) == ["tests.present"]
	contains(d.violations[0].message, "1 attestation ignored")
	d.violations[0].attestations == ["t1"]
}
