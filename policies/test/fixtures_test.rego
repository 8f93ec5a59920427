# METADATA
# title: test fixtures
# description: |
#   A self-contained test configuration and a production input that passes every rule.
#   Tests change one thing at a time. Not part of the policy bundle (*_test.rego is ignored
#   by opa build).
package gate_test.fixtures

gh := "https://token.actions.githubusercontent.com"

now := "2026-11-20T12:00:00Z"

digest_app := "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"

digest_db := "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"

key_app := concat(":", ["sha256", digest_app])

key_db := concat(":", ["sha256", digest_db])

commit := "1111111111111111111111111111111111111111"

subject_app := {"name": "app", "version": "2.3.1", "digest": {"sha256": digest_app}}

subject_db := {"name": "db", "version": "2.4.0", "digest": {"sha256": digest_db}}

release_workflow := "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"

ci_workflow := "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main"

review_bot := "https://github.com/acme/review-bot/.github/workflows/review.yml@refs/heads/main"

change_bot := "https://github.com/acme/release-manager/.github/workflows/change.yml@refs/heads/main"

config := {
	"trusted_builders": [
		{
			"id": "https://builder.example/github",
			"identities": [{
				"san_regexp": `https://github\.com/acme/[a-z]+/\.github/workflows/release\.yml@refs/(heads|tags)/.+`,
				"issuer": gh,
			}],
		},
		{"id_regexp": `https://builder\.example/keyed/v[0-9]+`, "identities": [{"key_id": "builder-key"}]},
	],
	"build_types": ["https://build.example/workflow/v1", "https://build.example/legacy@v1"],
	"source_repositories": ["https://github.com/acme/app", "https://github.com/acme/db"],
	"attestors": {
		"tests": [{"san_regexp": `https://github\.com/acme/[a-z]+/\.github/workflows/ci\.yml@refs/heads/main`, "issuer": gh}],
		"vulnerabilities": [{"san_regexp": `https://github\.com/acme/[a-z]+/\.github/workflows/ci\.yml@refs/heads/main`, "issuer": gh}],
		"review": [{"san": review_bot, "issuer": gh}],
		"change": [{"san": change_bot, "issuer": gh}],
	},
	"review": {
		"authorized_reviewers": ["alice@acme.example", "Bob@acme.example", "carol@acme.example", "erin@acme.example"],
		"authorized_reviewer_patterns": [`[a-z]+@sre\.acme\.example`],
	},
	"vulnerabilities": {"unknown_severity": "high"},
	"vsa": {"verifier_id": "https://gate.example/gate", "signers": [{"key_id": "gate-key"}]},
	"release": {"constraints": [{"component": "app", "requires": "db", "range": ">=2.0.0 <3.0.0", "optional": true}]},
	"waivers": [],
	"rule_effective_on": {},
	"environments": {
		"production": {
			"required_rules": [
				"provenance.present", "provenance.trusted_builder", "provenance.signer",
				"provenance.source_repository", "provenance.source_ref", "provenance.build_type",
				"tests.present", "tests.passed", "tests.required_suites",
				"vulnerabilities.present", "vulnerabilities.fresh", "vulnerabilities.severity",
				"review.present", "review.approvals", "review.changes_requested", "review.revision",
				"promotion.vsa", "release.constraints",
			],
			"source_refs": ["refs/heads/main", "refs/tags/v*"],
			"tests": {"required_suites": ["unit", "integration"]},
			"vulnerabilities": {"severity_threshold": "high", "max_scan_age_hours": 24},
			"review": {"min_approvals": 2},
			"promotion": {"requires_vsa_from": ["staging"], "max_age_hours": 72},
			"change_kinds": {
				"routine": ["metadata", "docs"],
				"routine_required_rules": ["provenance.trusted_builder", "provenance.signer"],
			},
		},
		"staging": {
			"required_rules": ["provenance.trusted_builder", "tests.passed", "tests.required_suites", "vulnerabilities.severity", "release.constraints"],
			"source_refs": ["refs/**"],
			"tests": {"required_suites": ["unit"], "allow_warned": true},
			"vulnerabilities": {"severity_threshold": "critical", "max_scan_age_hours": 72},
		},
		"hotfix": {
			"required_rules": ["provenance.trusted_builder", "provenance.signer", "change.ticket"],
			"ticket_pattern": "INC-[0-9]+",
		},
	},
}

signer(identity) := {
	"kind": "keyless",
	"identity": identity,
	"issuer": gh,
	"extensions": {
		"sourceRepositoryURI": "https://github.com/acme/app",
		"sourceRepositoryRef": "refs/heads/main",
		"sourceRepositoryDigest": commit,
	},
}

key_signer(key_id) := {"kind": "key", "keyId": key_id}

# An attestation about subject_app.
att(id, predicate_type, predicate, by) := att_for(subject_app, id, predicate_type, predicate, by)

att_for(subject, id, predicate_type, predicate, by) := {
	"id": id,
	"source": concat("", ["file:", id, ".sigstore.json"]),
	"subject": {"name": subject.name, "digest": subject.digest},
	"predicateType": predicate_type,
	"predicate": predicate,
	"statement": {
		"_type": "https://in-toto.io/Statement/v1",
		"subject": [{"name": subject.name, "digest": subject.digest}],
		"predicateType": predicate_type,
		"predicate": predicate,
	},
	"signer": by,
	"logEntries": [{"logIndex": "1", "logId": "bG9n", "integratedTime": "2026-11-20T08:00:00Z", "kind": "dsse", "version": "0.0.1"}],
	"timestamps": [{"source": "transparency-log", "time": "2026-11-20T08:00:00Z"}],
}

provenance_predicate := {
	"buildDefinition": {
		"buildType": "https://build.example/workflow/v1",
		"externalParameters": {"workflow": {"repository": "https://github.com/acme/app", "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
		"resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": commit}}],
	},
	"runDetails": {"builder": {"id": "https://builder.example/github"}},
}

provenance := att("p1", "https://slsa.dev/provenance/v1", provenance_predicate, signer(release_workflow))

# provenance with part of its predicate (deep-merged) or its signer replaced
provenance_with(patch) := att("p1", "https://slsa.dev/provenance/v1", object.union(provenance_predicate, patch), signer(release_workflow))

provenance_signed_by(by) := att("p1", "https://slsa.dev/provenance/v1", provenance_predicate, by)

tests_predicate := {
	"result": "PASSED",
	"configuration": [{"name": "unit"}, {"name": "integration"}],
	"passedTests": ["unit/cart_test.ts > adds", "integration/db_test.ts > migrates"],
	"warnedTests": [],
	"failedTests": [],
}

tests_run := att("t1", "https://in-toto.io/attestation/test-result/v0.1", tests_predicate, signer(ci_workflow))

tests_run_with(patch) := att("t1", "https://in-toto.io/attestation/test-result/v0.1", object.union(tests_predicate, patch), signer(ci_workflow))

scan_with_results(results, finished) := att(
	"v1", "https://in-toto.io/attestation/vulns/v0.2", {
		"scanner": {"uri": "pkg:github/aquasecurity/trivy@0.57.1", "db": {"lastUpdate": "2026-11-20T06:00:00Z"}, "result": results},
		"metadata": {"scanStartedOn": "2026-11-20T09:00:00Z", "scanFinishedOn": finished},
	},
	signer(ci_workflow),
)

finding(id, severity) := {"id": id, "severity": [{"method": "nvd", "score": severity}]}

scan := scan_with_results([finding("CVE-2026-0001", "LOW"), finding("CVE-2026-0002", "MEDIUM")], "2026-11-20T09:00:00Z")

review_predicate := {
	"change": {"repository": "https://github.com/acme/app", "number": 42, "revision": commit},
	"author": "dave@acme.example",
	"reviewers": [
		{"identity": "alice@acme.example", "decision": "APPROVED", "time": "2026-11-20T07:00:00Z"},
		{"identity": "bob@acme.example", "decision": "APPROVED", "time": "2026-11-20T07:05:00Z"},
	],
}

review := att("r1", "https://gate.dev/attestation/code-review/v1", review_predicate, signer(review_bot))

review_with(patch) := att("r1", "https://gate.dev/attestation/code-review/v1", object.union(review_predicate, patch), signer(review_bot))

reviewers(list) := review_with({"reviewers": [{"identity": r[0], "decision": r[1], "time": r[2]} | some r in list]})

vsa_predicate := {
	"verifier": {"id": "https://gate.example/gate"},
	"timeVerified": "2026-11-20T10:00:00Z",
	"resourceUri": concat("", ["oci://registry.example/app@", key_app]),
	"policy": {"uri": "https://gate.example/policies/environments/staging"},
	"verificationResult": "PASSED",
	"verifiedLevels": ["SLSA_BUILD_LEVEL_2"],
}

vsa := att("s1", "https://slsa.dev/verification_summary/v1", vsa_predicate, key_signer("gate-key"))

vsa_with(patch) := att("s1", "https://slsa.dev/verification_summary/v1", object.union(vsa_predicate, patch), key_signer("gate-key"))

change_type := "https://gate.dev/attestation/change/v1"

# A change statement about subject_app, signed by the trusted change attestor.
change_statement(predicate) := att("c1", change_type, predicate, signer(change_bot))

change_statement_for(subject, id, predicate) := att_for(subject, id, change_type, predicate, signer(change_bot))

attestations := [provenance, tests_run, scan, review, vsa]

# A production input that passes every rule of the test configuration.
input_ok := {
	"subjects": [subject_app],
	"environment": "production",
	"effectiveTime": now,
	"attestations": attestations,
	"rejected": [],
	"context": {},
	"breakGlass": [],
}

# input_ok with fields replaced (top level; arrays are replaced whole)
input_with(patch) := object.union(input_ok, patch)

# input_ok with the attestation of the given id replaced (or removed when replacement is null)
replace(id, replacement) := input_with({"attestations": array.concat(
	[a | some a in attestations; a.id != id],
	[replacement | replacement != null],
)})

without(id) := replace(id, null)

# config with environments[env] deep-merged with patch
config_env(env, patch) := object.union(config, {"environments": {env: patch}})

ids(results) := [r.id | some r in results]
