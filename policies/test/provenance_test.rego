package gate_test.provenance

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

# provenance violations only (an untrusted provenance also fails review.revision)
violation_ids(inp) := [id | some id in fx.ids(decide(inp).violations); startswith(id, "provenance.")]

test_trusted_provenance_passes if {
	violation_ids(fx.input_ok) == []
}

test_untrusted_builder_is_denied if {
	d := decide(fx.replace("p1", fx.provenance_with({"runDetails": {"builder": {"id": "https://evil.example/builder"}}})))
	fx.ids(d.violations) == ["provenance.trusted_builder", "review.revision"]
	d.violations[0].attestations == ["p1"]
	contains(d.violations[0].message, "https://evil.example/builder")
}

test_builder_id_regexp_and_key_signer_pass if {
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"runDetails": {"builder": {"id": "https://builder.example/keyed/v2"}}}), fx.key_signer("builder-key"))
	violation_ids(fx.replace("p1", p)) == []
}

test_builder_id_regexp_is_anchored if {
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"runDetails": {"builder": {"id": "https://builder.example/keyed/v2/evil"}}}), fx.key_signer("builder-key"))
	violation_ids(fx.replace("p1", p)) == ["provenance.trusted_builder"]
}

test_signer_of_another_workflow_is_denied if {
	d := decide(fx.replace("p1", fx.provenance_signed_by(fx.signer("https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main"))))
	fx.ids(d.violations) == ["provenance.signer", "review.revision"]
	contains(d.violations[0].remediation, "release")
}

test_signer_regexp_is_anchored if {
	by := fx.signer(concat("", ["https://evil.example/?u=", fx.release_workflow]))
	violation_ids(fx.replace("p1", fx.provenance_signed_by(by))) == ["provenance.signer"]
}

test_signer_must_belong_to_the_named_builder if {
	# the key is trusted for the keyed builder, not for the github builder the provenance names
	violation_ids(fx.replace("p1", fx.provenance_signed_by(fx.key_signer("builder-key")))) == ["provenance.signer"]
}

test_signer_issuer_must_match if {
	by := object.union(fx.signer(fx.release_workflow), {"issuer": "https://accounts.example"})
	violation_ids(fx.replace("p1", fx.provenance_signed_by(by))) == ["provenance.signer"]
}

test_repository_not_allowed_is_denied if {
	p := fx.provenance_with({"buildDefinition": {"externalParameters": {"workflow": {"repository": "https://github.com/evil/app"}}}})
	d := decide(fx.replace("p1", p))
	fx.ids(d.violations) == ["provenance.source_repository"]
	contains(d.violations[0].message, "https://github.com/evil/app")
}

test_certificate_repository_must_also_be_allowed if {
	by := object.union(fx.signer(fx.release_workflow), {"extensions": {"sourceRepositoryURI": "https://github.com/evil/app"}})
	violation_ids(fx.replace("p1", fx.provenance_signed_by(by))) == ["provenance.source_repository"]
}

test_repository_spelling_is_normalized if {
	p := fx.provenance_with({"buildDefinition": {"externalParameters": {"workflow": {"repository": "git+https://github.com/Acme/App.git"}}}})
	violation_ids(fx.replace("p1", p)) == []
}

test_no_repository_claim_is_denied if {
	p := fx.att(
		"p1", "https://slsa.dev/provenance/v1", {
			"buildDefinition": {"buildType": "https://build.example/workflow/v1", "externalParameters": {}},
			"runDetails": {"builder": {"id": "https://builder.example/keyed/v1"}},
		},
		fx.key_signer("builder-key"),
	)
	ids := violation_ids(fx.replace("p1", p))
	"provenance.source_repository" in ids
	"provenance.source_ref" in ids
}

test_ref_not_allowed_is_denied if {
	by := object.union(fx.signer(fx.release_workflow), {"extensions": {"sourceRepositoryRef": "refs/heads/feature/x"}})
	d := decide(fx.replace("p1", fx.provenance_signed_by(by)))
	fx.ids(d.violations) == ["provenance.source_ref"]
	contains(d.violations[0].message, "refs/heads/feature/x")
}

test_release_tag_ref_is_allowed if {
	by := object.union(fx.signer("https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v2.3.1"), {"extensions": {"sourceRepositoryRef": "refs/tags/v2.3.1"}})
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"buildDefinition": {"externalParameters": {"workflow": {"ref": "refs/tags/v2.3.1"}}}}), by)
	violation_ids(fx.replace("p1", p)) == []
}

test_build_type_not_allowed_is_denied if {
	p := fx.provenance_with({"buildDefinition": {"buildType": "https://build.example/laptop"}})
	violation_ids(fx.replace("p1", p)) == ["provenance.build_type"]
}

test_slsa_v02_provenance_passes if {
	p := fx.att(
		"p1", "https://slsa.dev/provenance/v0.2", {
			"builder": {"id": "https://builder.example/github"},
			"buildType": "https://build.example/legacy@v1",
			"invocation": {"configSource": {
				"uri": "git+https://github.com/acme/app@refs/heads/main",
				"digest": {"sha1": fx.commit},
				"entryPoint": ".github/workflows/release.yml",
			}},
		},
		fx.signer(fx.release_workflow),
	)
	violation_ids(fx.replace("p1", p)) == []
}

test_slsa_v02_config_source_ref_is_checked if {
	p := fx.att(
		"p1", "https://slsa.dev/provenance/v0.2", {
			"builder": {"id": "https://builder.example/keyed/v1"},
			"buildType": "https://build.example/legacy@v1",
			"invocation": {"configSource": {"uri": "git+https://github.com/acme/app@refs/heads/dev", "digest": {"sha1": fx.commit}}},
		},
		fx.key_signer("builder-key"),
	)
	violation_ids(fx.replace("p1", p)) == ["provenance.source_ref"]
}

test_one_conforming_provenance_suffices if {
	rogue := fx.att("p9", "https://slsa.dev/provenance/v1", fx.provenance_predicate, fx.signer("https://github.com/mallory/x/.github/workflows/release.yml@refs/heads/main"))
	violation_ids(fx.input_with({"attestations": array.concat(fx.attestations, [rogue])})) == []
}

test_failures_of_every_candidate_are_reported if {
	rogue := fx.att("p9", "https://slsa.dev/provenance/v1", fx.provenance_predicate, fx.signer("https://github.com/mallory/x/.github/workflows/release.yml@refs/heads/main"))
	bad_type := fx.provenance_with({"buildDefinition": {"buildType": "https://build.example/laptop"}})
	d := decide(fx.input_with({"attestations": array.concat([bad_type, rogue], array.slice(fx.attestations, 1, 5))}))
	fx.ids(d.violations) == ["provenance.build_type", "provenance.signer"]
	d.violations[0].attestations == ["p1"]
	d.violations[1].attestations == ["p9"]
}

test_provenance_about_another_digest_is_not_counted if {
	other := fx.att_for(fx.subject_db, "p1", "https://slsa.dev/provenance/v1", fx.provenance_predicate, fx.signer(fx.release_workflow))
	"provenance.present" in violation_ids(fx.replace("p1", other))
}

test_identity_of_an_id_regexp_builder_also_counts_for_an_exactly_named_one if {
	# the provenance names the github builder exactly, and an id_regexp builder matches it too:
	# the identities of both count (the exact entry is checked first, the regexp one after)
	builders := array.concat(fx.config.trusted_builders, [{"id_regexp": `https://builder\.example/.*`, "identities": [{"key_id": "other-key"}]}])
	cfg := object.union(fx.config, {"trusted_builders": builders})
	inp := fx.replace("p1", fx.provenance_signed_by(fx.key_signer("other-key")))
	d := data.gate.decision with input as inp with data.gate.config as cfg
	not "provenance.signer" in fx.ids(d.violations)
	"provenance.signer" in violation_ids(inp)
}

test_literal_ref_patterns_compare_exactly if {
	by := object.union(fx.signer(fx.release_workflow), {"extensions": {"sourceRepositoryRef": "refs/heads/mainline"}})
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"buildDefinition": {"externalParameters": {"workflow": {"ref": "refs/heads/mainline"}}}}), by)
	violation_ids(fx.replace("p1", p)) == ["provenance.source_ref"]
}

test_glob_ref_patterns_stay_within_a_segment if {
	by := object.union(fx.signer(fx.release_workflow), {"extensions": {"sourceRepositoryRef": "refs/tags/v2/x"}})
	p := fx.att("p1", "https://slsa.dev/provenance/v1", object.union(fx.provenance_predicate, {"buildDefinition": {"externalParameters": {"workflow": {"ref": "refs/tags/v2/x"}}}}), by)
	violation_ids(fx.replace("p1", p)) == ["provenance.source_ref"]
}
