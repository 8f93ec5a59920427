# METADATA
# title: test results
# description: |
#   in-toto test-result v0.1. Attestations from signers outside config.attestors.tests are
#   ignored. Every trusted run must pass (result PASSED, or WARNED where the environment allows
#   it, and no failedTests), and every required suite must have a passing run. A suite is
#   identified by the name of one of the run's configuration resource descriptors.
package gate.rules.tests

import data.gate.lib

predicate_type := "https://in-toto.io/attestation/test-result/v0.1"

# Nothing here is computed unless the environment requires a tests rule.
required if "tests" in lib.required_families

# Per subject, computed once: every test-result attestation about it, and the trusted ones.
all_runs_of[s] := lib.attestations_about(s, {predicate_type}) if {
	required
	some s in lib.subjects
}

runs_of[s] := [a | some a in atts; lib.attestor_trusted("tests", a)] if {
	some s, atts in all_runs_of
}

all_runs(s) := all_runs_of[s]

runs(s) := runs_of[s]

ignored(s) := lib.ids(all_runs(s)) - lib.ids(runs(s))

required_suites := [x | some x in lib.env_setting(["tests", "required_suites"], []); is_string(x)]

accepted_results := {"PASSED", "WARNED"} if {
	lib.env_setting(["tests", "allow_warned"], false) == true
} else := {"PASSED"}

failed_tests(a) := [t | some t in object.get(a, ["predicate", "failedTests"], []); is_string(t)]

run_passed(a) if {
	a.predicate.result in accepted_results
	count(object.get(a, ["predicate", "failedTests"], [])) == 0
}

covers(a, suite) if {
	some c in a.predicate.configuration
	c.name == suite
}

results contains lib.subject_result("tests.present", s.key, message, remediation, ignored(s)) if {
	"tests.present" in lib.required
	some s in lib.subjects
	count(runs(s)) == 0
	message := missing_message(s)
	remediation := "attach an in-toto test-result attestation (https://in-toto.io/attestation/test-result/v0.1) signed by a trusted test attestor"
}

missing_message(s) := concat("", ["no test-result attestation for ", s.label]) if {
	count(all_runs(s)) == 0
} else := concat("", [
	"no test-result attestation for ", s.label, " is signed by a trusted test attestor (",
	lib.plural(count(ignored(s)), "attestation"), " ignored)",
])

results contains lib.subject_result("tests.passed", s.key, message, remediation, [a.id]) if {
	"tests.passed" in lib.required
	some s in lib.subjects
	some a in runs(s)
	not run_passed(a)
	message := concat("", ["test run ", lib.short(a.id), " for ", s.label, " reported ", outcome(a)])
	remediation := concat("", [
		"fix the failing tests and attest a run whose result is ",
		concat(" or ", sort(accepted_results)), " and whose failedTests is empty",
	])
}

outcome(a) := concat("", [lib.quote(object.get(a, ["predicate", "result"], null)), " with failed tests: ", lib.list_text(failed_tests(a), 5)]) if {
	count(failed_tests(a)) > 0
} else := lib.quote(object.get(a, ["predicate", "result"], null))

results contains lib.subject_result("tests.required_suites", s.key, message, remediation, lib.ids(runs(s))) if {
	"tests.required_suites" in lib.required
	some s in lib.subjects
	count(runs(s)) > 0
	some suite in required_suites
	not suite_passed(s, suite)
	message := concat("", ["required test suite ", suite, " has no passing test-result attestation for ", s.label])
	remediation := concat("", [
		"run the ", suite, " suite and attest a passing run whose predicate.configuration has a resource descriptor named ",
		lib.quote(suite),
	])
}

suite_passed(s, suite) if {
	some a in runs(s)
	run_passed(a)
	covers(a, suite)
}

violations := lib.violations_of(results)

warnings := lib.warnings_of(results)
