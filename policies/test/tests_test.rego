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
	unit := fx.att("t1", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {"passedTests": ["unit"]}), fx.signer(fx.ci_workflow))
	integration := fx.att("t2", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {"passedTests": ["integration"]}), fx.signer(fx.ci_workflow))
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
	d := decide(fx.replace("t1", fx.tests_run_with({"passedTests": ["unit/cart_test.ts > adds"]})))
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

# Suites as the test-result predicate names them: in passedTests and failedTests (the default).

workflow_run(patch) := fx.tests_run_with(object.union({"configuration": [{"name": ".github/workflows/ci.yml"}]}, patch))

by_configuration := fx.config_env("production", {"tests": {"match": "configuration"}})

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

# The attack of issue 8 (item 8), one way: configured by suite names, a complete run whose
# configuration names its workflow was denied.
test_suites_listed_in_passed_tests_pass if {
	d := decide(fx.replace("t1", workflow_run({"passedTests": ["unit", "integration"]})))
	fx.ids(d.violations) == []
}

test_tests_inside_a_suite_name_it_as_a_path_prefix if {
	d := decide(fx.replace("t1", workflow_run({"passedTests": ["unit/cart_test.ts > adds", "integration/db_test.ts > migrates"]})))
	fx.ids(d.violations) == []
}

# ... and the other way: a run whose configuration names every suite, where one suite never ran.
test_a_required_suite_that_never_ran_is_denied if {
	d := decide(fx.replace("t1", fx.tests_run_with({"passedTests": ["unit/cart_test.ts > adds"]})))
	d.allow == false
	fx.ids(d.violations) == ["tests.required_suites"]
	d.violations[0].message == "required test suite integration is not among the passed tests of a passing test-result attestation for app"
	d.violations[0].attestations == ["t1"]
}

test_a_suite_name_is_not_a_prefix_of_another if {
	d := decide(fx.replace("t1", workflow_run({"passedTests": ["unit", "integration-smoke", "integrationtests/x"]})))
	fx.ids(d.violations) == ["tests.required_suites"]
	contains(d.violations[0].message, "integration")
}

test_a_required_suite_in_failed_tests_is_named if {
	failed := fx.att(
		"t2", "https://in-toto.io/attestation/test-result/v0.1", object.union(fx.tests_predicate, {
			"result": "FAILED",
			"configuration": [{"name": "nightly"}],
			"passedTests": [],
			"failedTests": ["integration/db_test.ts > migrates"],
		}),
		fx.signer(fx.ci_workflow),
	)
	d := decide(fx.input_with({"attestations": array.concat(fx.replace("t1", workflow_run({"passedTests": ["unit", "integration"]})).attestations, [failed])}))
	fx.ids(d.violations) == ["tests.passed", "tests.required_suites"]
	d.violations[1].message == "required test suite integration failed for app: test run t2 lists integration/db_test.ts > migrates in failedTests"
	d.violations[1].attestations == ["t2"]
}

test_a_suite_in_warned_tests_counts_where_warned_runs_pass if {
	warned := workflow_run({"result": "WARNED", "passedTests": [], "warnedTests": ["unit/slow_test.ts > sorts"]})
	decide_in("staging", fx.replace("t1", warned)).allow == true
	d := decide(fx.replace("t1", object.union(warned, {"predicate": {"result": "PASSED"}})))
	fx.ids(d.violations) == ["tests.required_suites", "tests.required_suites"]
}

test_matching_by_configuration_name_is_an_option if {
	decide_with_config(fx.input_ok, by_configuration).allow == true
	d := decide_with_config(fx.replace("t1", workflow_run({"passedTests": ["unit", "integration"]})), by_configuration)
	fx.ids(d.violations) == ["tests.required_suites", "tests.required_suites"]
	contains(d.violations[0].remediation, "predicate.configuration")
}

test_an_unknown_match_setting_is_config_invalid if {
	d := decide_with_config(fx.input_ok, fx.config_env("production", {"tests": {"match": "names"}}))
	d.allow == false
	d.violations[0].id == "config.invalid"
	contains(d.violations[0].message, `tests.match is "names"`)
}

test_passed_tests_must_be_a_list if {
	d := decide(fx.replace("t1", workflow_run({"passedTests": {"unit": "unit", "integration": "integration"}})))
	fx.ids(d.violations) == ["tests.required_suites", "tests.required_suites"]
}
