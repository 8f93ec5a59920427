# METADATA
# title: test results
# description: |
#   in-toto test-result v0.1. Attestations from signers outside config.attestors.tests are
#   ignored. Every trusted run must pass (result PASSED, or WARNED where the environment allows
#   it, and no failedTests), and every required suite must have a passing run. A suite is
#   identified as the predicate names it (tests.match "passed_tests", the default): an entry of
#   passedTests (or warnedTests where WARNED is accepted) equal to the suite or starting with
#   "<suite>/"; a suite so named in any trusted run's failedTests has failed. With tests.match
#   "configuration", a suite is the name of one of a passing run's configuration descriptors.
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

# "passed_tests" (the default) or "configuration"; anything else is config.invalid (core.rego)
match := lib.env_setting(["tests", "match"], "passed_tests")

by_configuration if match == "configuration"

# The names a passing run gives the suites or tests it passed.
passed_names(a) := {c.name | some c in a.predicate.configuration; is_string(c.name)} if by_configuration

passed_names(a) := {n | some field in passed_fields; is_array(a.predicate[field]); some n in a.predicate[field]; is_string(n)} if {
	match == "passed_tests"
}

passed_fields := ["passedTests", "warnedTests"] if {
	"WARNED" in accepted_results
} else := ["passedTests"]

# A test name names the suite itself or a test inside it ("integration/db_test.ts > migrates").
in_suite(name, suite) if name == suite

in_suite(name, suite) if startswith(name, concat("", [suite, "/"]))

# Per subject, computed once: the required suites some passing trusted run covers.
# (names first: passed_names is a function, computed once per run this way)
suites_passed_of[s] := {suite |
	some a in atts
	run_passed(a)
	some n in passed_names(a)
	some suite in required_suites
	in_suite(n, suite)
} if {
	"tests.required_suites" in lib.required
	some s, atts in runs_of
}

# Per subject: [suite, run id, test] for each required suite a trusted run lists as failed.
suites_failed_of[s] := [[suite, a.id, t] |
	some a in atts
	some t in failed_tests(a)
	some suite in required_suites
	in_suite(t, suite)
] if {
	"tests.required_suites" in lib.required
	match == "passed_tests"
	some s, atts in runs_of
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

results contains lib.subject_result("tests.required_suites", s.key, message, suite_remediation(suite), lib.ids(runs(s))) if {
	"tests.required_suites" in lib.required
	some s in lib.subjects
	count(runs(s)) > 0
	some suite in required_suites
	not suite in suites_passed_of[s]
	not failed_suite(s, suite)
	message := concat("", ["required test suite ", suite, " ", not_passed_text, " for ", s.label])
}

results contains lib.subject_result("tests.required_suites", s.key, message, suite_remediation(suite), [f[1]]) if {
	"tests.required_suites" in lib.required
	some s, failures in suites_failed_of
	some suite in required_suites
	f := min({x | some x in failures; x[0] == suite})
	message := concat("", [
		"required test suite ", suite, " failed for ", s.label, ": test run ", lib.short(f[1]),
		" lists ", f[2], " in failedTests",
	])
}

failed_suite(s, suite) if {
	some f in suites_failed_of[s]
	f[0] == suite
}

not_passed_text := "has no passing test-result attestation whose configuration names it" if {
	by_configuration
} else := "is not among the passed tests of a passing test-result attestation"

suite_remediation(suite) := concat("", [
	"run the ", suite, " suite and attest a passing run whose predicate.configuration has a resource descriptor named ",
	lib.quote(suite),
]) if {
	by_configuration
} else := concat("", [
	"run the ", suite, " suite and attest a passing run whose passedTests lists ", lib.quote(suite),
	" or its tests as ", suite, "/<test>",
])

violations := lib.violations_of(results)

warnings := lib.warnings_of(results)
