package gate_test.effective_on

import data.gate_test.fixtures as fx

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

effective(dates) := object.union(fx.config, {"rule_effective_on": dates})

missing_suite := fx.replace("t1", fx.tests_run_with({"passedTests": ["unit/cart_test.ts > adds"]}))

test_future_rule_only_warns if {
	d := decide_with_config(missing_suite, effective({"tests.required_suites": "2027-01-01T00:00:00Z"}))
	d.allow == true
	fx.ids(d.warnings) == ["tests.required_suites"]
	d.warnings[0].effectiveOn == "2027-01-01T00:00:00Z"
	"tests.required_suites" in d.rules
}

test_rule_is_enforced_from_its_date if {
	d := decide_with_config(missing_suite, effective({"tests.required_suites": "2026-11-20T12:00:00Z"}))
	d.allow == false
	fx.ids(d.violations) == ["tests.required_suites"]
	d.warnings == []
}

test_pending_conformance_rule_warns_without_denying if {
	inp := fx.replace("r1", fx.review_with({"change": {"revision": "2222222222222222222222222222222222222222"}}))
	d := decide_with_config(inp, effective({"review.revision": "2027-01-01T00:00:00Z"}))
	d.allow == true
	fx.ids(d.warnings) == ["review.revision"]
}

test_implied_presence_waits_for_its_family if {
	dates := {"tests.passed": "2027-02-01T00:00:00Z", "tests.required_suites": "2027-01-01T00:00:00Z"}
	rules := [id | some id in fx.config.environments.production.required_rules; id != "tests.present"]
	cfg := object.union(effective(dates), {"environments": {"production": {"required_rules": rules}}})
	d := decide_with_config(fx.without("t1"), cfg)
	"tests.present" in d.rules
	d.allow == true
	fx.ids(d.warnings) == ["tests.present"]
	d.warnings[0].effectiveOn == "2027-01-01T00:00:00Z"
}

test_explicit_presence_is_enforced_at_once if {
	dates := {"tests.passed": "2027-02-01T00:00:00Z", "tests.required_suites": "2027-01-01T00:00:00Z"}
	d := decide_with_config(fx.without("t1"), effective(dates))
	fx.ids(d.violations) == ["tests.present"]
}

test_invalid_effective_time_enforces_every_rule if {
	inp := object.union(missing_suite, {"effectiveTime": "soon"})
	d := decide_with_config(inp, effective({"tests.required_suites": "2027-01-01T00:00:00Z"}))
	"tests.required_suites" in fx.ids(d.violations)
}

test_invalid_effective_on_date_is_a_config_error if {
	d := decide_with_config(fx.input_ok, effective({"tests.passed": "next year"}))
	fx.ids(d.violations) == ["config.invalid"]
}
