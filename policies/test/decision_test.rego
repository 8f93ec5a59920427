package gate_test.decision

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

test_full_production_evidence_is_allowed if {
	d := decide(fx.input_ok)
	d.allow == true
	d.violations == []
	d.warnings == []
}

test_decision_is_an_object_even_for_empty_input if {
	d := decide({})
	d.allow == false
	fx.ids(d.violations) == ["environment.unknown", "input.attestations", "input.effective_time", "input.subjects"]
	d.warnings == []
	d.rules == ["config.invalid", "environment.unknown", "input.attestations", "input.effective_time", "input.subjects"]
}

test_unknown_environment_is_denied if {
	d := decide(fx.input_with({"environment": "qa"}))
	d.allow == false
	fx.ids(d.violations) == ["environment.unknown"]
	d.violations[0].message == `environment "qa" is not configured`
	contains(d.violations[0].remediation, "hotfix, production, staging")
}

test_unknown_environment_is_denied_with_default_config if {
	d := data.gate.decision with input as fx.input_with({"environment": "qa"})
	fx.ids(d.violations) == ["environment.unknown"]
}

test_rules_lists_every_rule_evaluated if {
	d := decide(fx.input_ok)
	"promotion.vsa" in d.rules
	"review.revision" in d.rules
	"environment.unknown" in d.rules
	not "change.ticket" in d.rules
	d.rules == sort(d.rules)
}

test_invalid_effective_time_is_denied if {
	d := decide(fx.input_with({"effectiveTime": "2026-11-20 12:00"}))
	d.allow == false
	"input.effective_time" in fx.ids(d.violations)
}

test_effective_time_with_offset_is_accepted if {
	d := decide(fx.input_with({"effectiveTime": "2026-11-20T14:00:00.250+02:00"}))
	d.allow == true
}

test_no_subject_is_denied if {
	d := decide(fx.input_with({"subjects": []}))
	fx.ids(d.violations) == ["input.subjects"]
}

test_subject_without_valid_digest_is_denied if {
	d := decide(fx.input_with({"subjects": [fx.subject_app, {"name": "x", "digest": {"sha256": "abc"}}]}))
	"input.subjects" in fx.ids(d.violations)
}

test_no_attestations_says_what_is_missing if {
	d := decide(fx.input_with({"attestations": []}))
	d.allow == false
	fx.ids(d.violations) == ["promotion.vsa", "provenance.present", "review.present", "tests.present", "vulnerabilities.present"]
	every v in d.violations {
		v.subject == fx.key_app
		v.remediation != ""
	}
}

test_violations_are_sorted_by_id_then_subject if {
	two := fx.input_with({"subjects": [fx.subject_db, fx.subject_app], "attestations": []})
	d := decide(two)
	keys := [[v.id, v.subject] | some v in d.violations]
	keys == sort(keys)
	count(d.violations) == 10
}

test_rejected_evidence_is_a_warning if {
	d := decide(fx.input_with({"rejected": [{"id": "ff00ff00ff00ff00", "source": "rekor:https://rekor.example", "code": "SIGNATURE_INVALID", "message": "bad signature"}]}))
	d.allow == true
	fx.ids(d.warnings) == ["evidence.rejected"]
	d.warnings[0].attestations == ["ff00ff00ff00ff00"]
	contains(d.warnings[0].message, "SIGNATURE_INVALID")
}

test_config_unknown_rule_is_denied if {
	cfg := fx.config_env("production", {"required_rules": ["provenance.trusted_builder", "provenance.typo"]})
	d := data.gate.decision with input as fx.input_ok with data.gate.config as cfg
	fx.ids(d.violations) == ["config.invalid"]
	contains(d.violations[0].message, "provenance.typo")
}

test_config_invalid_threshold_is_denied if {
	cfg := fx.config_env("production", {"vulnerabilities": {"severity_threshold": "severe"}})
	d := data.gate.decision with input as fx.input_ok with data.gate.config as cfg
	"config.invalid" in fx.ids(d.violations)
}

test_missing_config_denies if {
	d := data.gate.decision with input as fx.input_ok with data.gate.config as {}
	fx.ids(d.violations) == ["environment.unknown"]
}

# The shipped data.json: four environments, all of whose rules exist.
test_default_config_environments_are_consistent if {
	every env in ["dev", "staging", "production", "hotfix"] {
		d := data.gate.decision with input as fx.input_with({"environment": env})
		not "config.invalid" in fx.ids(d.violations)
		not "environment.unknown" in fx.ids(d.violations)
		count(d.rules) > 8
	}
}

test_missing_settings_of_required_rules_are_config_errors if {
	cfg := object.union(fx.config, {
		"vsa": {"verifier_id": null},
		"environments": {"production": {
			"vulnerabilities": {"max_scan_age_hours": 0},
			"review": {"min_approvals": "two"},
			"promotion": {"requires_vsa_from": []},
		}},
	})
	d := data.gate.decision with input as fx.input_ok with data.gate.config as cfg
	problems := [v.message | some v in d.violations; v.id == "config.invalid"]
	count(problems) == 4
}
