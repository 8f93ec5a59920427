package gate_test.vulnerabilities

import data.gate_test.fixtures as fx

decide(inp) := d if {
	d := data.gate.decision with input as inp with data.gate.config as fx.config
}

decide_with_config(inp, cfg) := d if {
	d := data.gate.decision with input as inp with data.gate.config as cfg
}

with_scan(results) := fx.replace("v1", fx.scan_with_results(results, "2026-11-20T09:00:00Z"))

waiver := {
	"vulnerability": "CVE-2026-0009",
	"subject": fx.key_app,
	"environments": ["production"],
	"owner": "alice@acme.example",
	"expires": "2026-12-31T00:00:00Z",
}

with_waiver(w) := object.union(fx.config, {"waivers": [w]})

high_finding := with_scan([fx.finding("CVE-2026-0009", "HIGH")])

test_findings_below_threshold_pass if {
	fx.ids(decide(with_scan([fx.finding("CVE-2026-0001", "MEDIUM"), fx.finding("CVE-2026-0002", "low")])).violations) == []
}

test_finding_at_threshold_is_denied if {
	d := decide(high_finding)
	fx.ids(d.violations) == ["vulnerabilities.severity"]
	d.violations[0].message == "vulnerability CVE-2026-0009 (high) affects app; production allows no finding at or above high"
	d.violations[0].attestations == ["v1"]
	contains(d.violations[0].remediation, "waiver")
}

test_highest_score_of_a_finding_counts if {
	f := {"id": "CVE-2026-0010", "severity": [{"method": "nvd", "score": "MEDIUM"}, {"method": "cvss_score", "score": "9.8"}]}
	fx.ids(decide(with_scan([f])).violations) == ["vulnerabilities.severity"]
}

test_cvss_score_below_threshold_passes if {
	f := {"id": "CVE-2026-0011", "severity": [{"method": "cvss_score", "score": "6.9"}]}
	fx.ids(decide(with_scan([f])).violations) == []
}

test_unknown_severity_uses_configured_rank if {
	f := {"id": "CVE-2026-0012", "severity": [{"method": "nvd", "score": "UNKNOWN"}]}
	fx.ids(decide(with_scan([f])).violations) == ["vulnerabilities.severity"]
	cfg := object.union(fx.config, {"vulnerabilities": {"unknown_severity": "low"}})
	fx.ids(decide_with_config(with_scan([f]), cfg).violations) == []
}

test_threshold_is_per_environment if {
	inp := object.union(high_finding, {"environment": "staging"})
	decide(inp).allow == true
}

cosign_scan(result) := fx.att(
	"v1", "https://cosign.sigstore.dev/attestation/vuln/v1", {
		"scanner": {"uri": "pkg:github/aquasecurity/trivy@0.57.1", "result": result},
		"metadata": {"scanStartedOn": "2026-11-20T08:59:00Z", "scanFinishedOn": "2026-11-20T09:00:00Z"},
	},
	fx.signer(fx.ci_workflow),
)

test_cosign_trivy_report_is_read if {
	bad := cosign_scan({"Results": [{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": "CVE-2026-0013", "Severity": "CRITICAL"}]}, {"Target": "y", "Vulnerabilities": null}]})
	fx.ids(decide(fx.replace("v1", bad)).violations) == ["vulnerabilities.severity"]
	ok := cosign_scan({"Results": [{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": "CVE-2026-0014", "Severity": "LOW"}]}]})
	fx.ids(decide(fx.replace("v1", ok)).violations) == []
}

test_cosign_grype_report_is_read if {
	bad := cosign_scan({"matches": [{"vulnerability": {"id": "GHSA-aaaa-bbbb-cccc", "severity": "High"}}]})
	fx.ids(decide(fx.replace("v1", bad)).violations) == ["vulnerabilities.severity"]
}

test_valid_waiver_allows_and_warns if {
	d := decide_with_config(high_finding, with_waiver(waiver))
	d.allow == true
	fx.ids(d.warnings) == ["vulnerabilities.waived"]
	contains(d.warnings[0].message, "alice@acme.example")
}

test_expired_waiver_is_denied if {
	d := decide_with_config(high_finding, with_waiver(object.union(waiver, {"expires": "2026-11-20T12:00:00Z"})))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
	contains(d.violations[0].message, "its waiver expired")
}

test_waiver_for_another_environment_is_denied if {
	d := decide_with_config(high_finding, with_waiver(object.union(waiver, {"environments": ["staging"]})))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
}

test_waiver_for_another_digest_is_denied if {
	d := decide_with_config(high_finding, with_waiver(object.union(waiver, {"subject": fx.key_db})))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
}

test_waiver_without_owner_is_denied if {
	d := decide_with_config(high_finding, with_waiver(object.remove(waiver, ["owner"])))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
}

test_stale_scan_is_denied if {
	stale := fx.scan_with_results([], "2026-11-19T11:59:59Z")
	d := decide(fx.replace("v1", stale))
	fx.ids(d.violations) == ["vulnerabilities.fresh"]
	contains(d.violations[0].message, "more than 24 hours before 2026-11-20T12:00:00Z")
}

test_scan_exactly_at_max_age_is_fresh if {
	fx.ids(decide(fx.replace("v1", fx.scan_with_results([], "2026-11-19T12:00:00Z"))).violations) == []
}

test_scan_without_finish_time_is_not_fresh if {
	fx.ids(decide(fx.replace("v1", fx.scan_with_results([], "yesterday"))).violations) == ["vulnerabilities.fresh"]
}

test_findings_of_a_fresh_scan_win_over_a_stale_one if {
	stale := object.union(fx.scan_with_results([fx.finding("CVE-2026-0009", "CRITICAL")], "2026-11-01T00:00:00Z"), {"id": "v0"})
	d := decide(fx.input_with({"attestations": array.concat(fx.attestations, [stale])}))
	d.allow == true
}

test_missing_scan_is_denied if {
	fx.ids(decide(fx.without("v1")).violations) == ["vulnerabilities.present"]
}

test_cvss_text_needs_digits_around_the_point if {
	# "4." and ".5" are not cvss scores: they rank as unknown (high)
	fx.ids(decide(with_scan([{"id": "CVE-2026-0020", "severity": [{"score": "4."}]}])).violations) == ["vulnerabilities.severity"]
	fx.ids(decide(with_scan([{"id": "CVE-2026-0021", "severity": [{"score": ".5"}]}])).violations) == ["vulnerabilities.severity"]
	fx.ids(decide(with_scan([{"id": "CVE-2026-0022", "severity": [{"score": "123"}]}])).violations) == ["vulnerabilities.severity"]
	fx.ids(decide(with_scan([{"id": "CVE-2026-0023", "severity": [{"score": " 6.5 "}]}])).violations) == []
	fx.ids(decide(with_scan([{"id": "CVE-2026-0024", "severity": [{"score": "10.0"}]}])).violations) == ["vulnerabilities.severity"]
}

test_waiver_expiry_beyond_2262_cannot_be_read if {
	# time.parse_rfc3339_ns covers 1677..2262: a later expiry is unreadable, so the waiver is not valid
	d := decide_with_config(high_finding, with_waiver(object.union(waiver, {"expires": "9999-12-31T00:00:00Z"})))
	fx.ids(d.violations) == ["vulnerabilities.severity"]
	contains(d.violations[0].message, "its waiver expired at \"9999-12-31T00:00:00Z\"")
}
