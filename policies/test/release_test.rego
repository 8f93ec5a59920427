package gate_test.release

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

# staging requires provenance.trusted_builder, tests.*, vulnerabilities.severity, release.constraints
evidence_for(subject, suffix) := [
	fx.att_for(subject, concat("", ["p-", suffix]), "https://slsa.dev/provenance/v1", fx.provenance_predicate, fx.signer(fx.release_workflow)),
	fx.att_for(subject, concat("", ["t-", suffix]), "https://in-toto.io/attestation/test-result/v0.1", fx.tests_predicate, fx.signer(fx.ci_workflow)),
	fx.att_for(subject, concat("", ["v-", suffix]), "https://in-toto.io/attestation/vulns/v0.2", fx.scan.predicate, fx.signer(fx.ci_workflow)),
]

release(app_version, db_version) := {
	"subjects": [object.union(fx.subject_app, {"version": app_version}), object.union(fx.subject_db, {"version": db_version})],
	"environment": "staging",
	"effectiveTime": fx.now,
	"attestations": array.concat(evidence_for(fx.subject_app, "app"), evidence_for(fx.subject_db, "db")),
	"rejected": [],
	"context": {},
	"breakGlass": [],
}

test_release_set_passes_when_every_subject_passes if {
	decide(release("2.3.1", "2.4.0")).allow == true
}

test_every_subject_must_pass_every_rule if {
	inp := release("2.3.1", "2.4.0")
	missing_db_tests := object.union(inp, {"attestations": [a | some a in inp.attestations; a.id != "t-db"]})
	d := decide(missing_db_tests)
	fx.ids(d.violations) == ["tests.present"]
	d.violations[0].subject == fx.key_db
}

test_version_constraint_violated_is_denied if {
	d := decide(release("2.3.1", "3.0.0"))
	fx.ids(d.violations) == ["release.constraints"]
	d.violations[0].subject == fx.key_app
	d.violations[0].message == "version 3.0.0 of db does not satisfy app requires db >=2.0.0 <3.0.0"
}

test_prerelease_below_range_is_denied if {
	fx.ids(decide(release("2.3.1", "2.0.0-rc.1")).violations) == ["release.constraints"]
}

test_invalid_version_is_denied if {
	d := decide(release("2.3.1", "two"))
	fx.ids(d.violations) == ["release.constraints"]
	contains(d.violations[0].message, "no semantic version")
}

test_optional_requirement_may_be_absent if {
	inp := release("2.3.1", "2.4.0")
	app_only := object.union(inp, {"subjects": [inp.subjects[0]], "attestations": evidence_for(fx.subject_app, "app")})
	decide(app_only).allow == true
}

test_required_component_must_be_present if {
	inp := release("2.3.1", "2.4.0")
	app_only := object.union(inp, {"subjects": [inp.subjects[0]], "attestations": evidence_for(fx.subject_app, "app")})
	cfg := object.union(fx.config, {"release": {"constraints": [{"component": "app", "requires": "db", "range": ">=2.0.0 <3.0.0"}]}})
	d := decide_with_config(app_only, cfg)
	fx.ids(d.violations) == ["release.constraints"]
	contains(d.violations[0].message, "contains app but not db")
}

test_invalid_range_is_denied if {
	cfg := object.union(fx.config, {"release": {"constraints": [{"component": "app", "requires": "db", "range": "~2"}]}})
	ids := fx.ids(decide_with_config(release("2.3.1", "2.4.0"), cfg).violations)
	ids == ["config.invalid", "release.constraints"]
}
