# METADATA
# title: vulnerability scans
# description: |
#   in-toto vulns v0.2 and cosign vuln v1 attestations signed by config.attestors
#   .vulnerabilities. A scan must have finished within the environment's maximum age, and no
#   finding may be at or above the environment's severity threshold unless a waiver in
#   config.waivers names the vulnerability, the subject digest, the environment, an owner and
#   an expiry after input.effectiveTime.
package gate.rules.vulnerabilities

import data.gate.lib
import data.gate.lib.timestamps

vulns_v02 := "https://in-toto.io/attestation/vulns/v0.2"

cosign_vuln_v1 := "https://cosign.sigstore.dev/attestation/vuln/v1"

predicate_types := {vulns_v02, cosign_vuln_v1}

all_scans(s) := lib.attestations_about(s, predicate_types)

scans(s) := [a | some a in all_scans(s); lib.attestor_trusted("vulnerabilities", a)]

ignored(s) := lib.ids(all_scans(s)) - lib.ids(scans(s))

# Severities -------------------------------------------------------------------------------

levels := {
	"none": 0, "negligible": 0, "info": 0, "informational": 0,
	"low": 1,
	"medium": 2, "moderate": 2,
	"high": 3, "important": 3,
	"critical": 4,
}

level_names := ["none", "low", "medium", "high", "critical"]

# config.vulnerabilities.unknown_severity: how to rank a finding whose severity is missing or
# unrecognised ("unknown" in Trivy); default high.
unknown_level := l if {
	l := levels[lower(object.get(lib.config, ["vulnerabilities", "unknown_severity"], "high"))]
} else := 3

threshold_name := lower(lib.env_setting(["vulnerabilities", "severity_threshold"], "low"))

# An invalid threshold is a config.invalid violation; meanwhile the strictest one applies.
threshold := l if {
	l := levels[threshold_name]
	l > 0
} else := 1

# A severity score: a name ("HIGH", "moderate"), a CVSS score ("7.5" or 7.5) or anything else.
score_level(score) := levels[lower(trim_space(score))] if {
	is_string(score)
} else := cvss_level(to_number(trim_space(score))) if {
	is_string(score)
	regex.match(`^[0-9]{1,2}(\.[0-9]+)?$`, trim_space(score))
} else := cvss_level(score) if {
	is_number(score)
} else := unknown_level

cvss_level(n) := 4 if n >= 9

else := 3 if n >= 7

else := 2 if n >= 4

else := 1 if n > 0

else := 0

# Findings: {"id", "level"} ---------------------------------------------------------------------

findings(a) := (list_findings(a) | trivy_findings(a)) | grype_findings(a)

# vulns v0.2 scanner.result[]{id, severity[{method, score}]}; also the v0.1 shape
# scanner.result[]{vulnerability{id, severity}} and cosign vuln v1 with such a list.
list_findings(a) := {{"id": id, "level": item_level(item)} |
	is_array(a.predicate.scanner.result)
	some item in a.predicate.scanner.result
	id := item_id(item)
}

item_id(item) := item.id if is_string(item.id)

else := item.vulnerability.id if is_string(item.vulnerability.id)

item_severities(item) := s if {
	s := object.get(item, "severity", object.get(item, ["vulnerability", "severity"], []))
	is_array(s)
} else := [s] if {
	s := object.get(item, "severity", object.get(item, ["vulnerability", "severity"], []))
	not is_array(s)
}

item_level(item) := max(ls) if {
	ls := [score_level(object.get(e, "score", e)) | some e in item_severities(item)]
	count(ls) > 0
} else := unknown_level

# cosign vuln v1 with a Trivy report: scanner.result.Results[].Vulnerabilities[]{VulnerabilityID, Severity}
trivy_findings(a) := {{"id": v.VulnerabilityID, "level": score_level(object.get(v, "Severity", null))} |
	some r in a.predicate.scanner.result.Results
	some v in r.Vulnerabilities
	is_string(v.VulnerabilityID)
}

# cosign vuln v1 with a Grype report: scanner.result.matches[].vulnerability{id, severity}
grype_findings(a) := {{"id": m.vulnerability.id, "level": score_level(object.get(m.vulnerability, "severity", null))} |
	some m in a.predicate.scanner.result.matches
	is_string(m.vulnerability.id)
}

# A scan whose result is in none of these shapes cannot show the absence of findings: it fails
# vulnerabilities.severity. (An empty list is a scan that found nothing.)
readable(a) if is_array(a.predicate.scanner.result)

readable(a) if {
	result := a.predicate.scanner.result
	is_object(result)
	some marker in ["Results", "SchemaVersion", "matches"]
	marker in object.keys(result)
}

# Freshness ------------------------------------------------------------------------------------

finished_ms(a) := timestamps.parse_ms(a.predicate.metadata.scanFinishedOn)

max_age_ms := lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null) * 3600000

fresh(a) if {
	is_number(lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null))
	lib.now_ms - finished_ms(a) <= max_age_ms
}

fresh_scans(s) := [a | some a in scans(s); fresh(a)]

# Findings are taken from the fresh scans; when none is fresh (a vulnerabilities.fresh
# violation), from every trusted scan.
considered(s) := fresh_scans(s) if count(fresh_scans(s)) > 0

else := scans(s)

vulnerability_ids(s) := {f.id | some a in considered(s); some f in findings(a)}

level_of(s, id) := max({f.level | some a in considered(s); some f in findings(a); f.id == id})

reported_by(s, id) := {a.id | some a in considered(s); some f in findings(a); f.id == id}

# Waivers ----------------------------------------------------------------------------------

default waivers := []

waivers := w if {
	w := lib.config.waivers
	is_array(w)
}

waiver_names(w, id, s) if {
	is_string(w.vulnerability)
	upper(w.vulnerability) == upper(id)
	is_string(w.subject)
	lower(w.subject) == s.key
	input.environment in w.environments
	is_string(w.owner)
	trim_space(w.owner) != ""
}

waiver_valid(w) if lib.now_ms < timestamps.parse_ms(w.expires)

# the valid waiver that lasts longest (several may name the same finding)
waived_by(s, id) := max({[timestamps.parse_ms(w.expires), w] |
	some w in waivers
	waiver_names(w, id, s)
	waiver_valid(w)
})[1]

waived(s, id) if waived_by(s, id)

# Results ------------------------------------------------------------------------------------

results contains lib.subject_result("vulnerabilities.present", s.key, message, remediation, ignored(s)) if {
	some s in lib.subjects
	count(scans(s)) == 0
	message := missing_message(s)
	remediation := "attach a vulnerability scan (https://in-toto.io/attestation/vulns/v0.2 or https://cosign.sigstore.dev/attestation/vuln/v1) signed by a trusted scanner"
}

missing_message(s) := concat("", ["no vulnerability scan attestation for ", s.label]) if {
	count(all_scans(s)) == 0
} else := concat("", [
	"no vulnerability scan attestation for ", s.label, " is signed by a trusted scanner (",
	lib.plural(count(ignored(s)), "attestation"), " ignored)",
])

results contains lib.subject_result("vulnerabilities.fresh", s.key, message, remediation, lib.ids(scans(s))) if {
	some s in lib.subjects
	count(scans(s)) > 0
	count(fresh_scans(s)) == 0
	message := stale_message(s)
	remediation := concat("", [
		"rescan the artifact and attest the scan; ", input.environment, " accepts scans finished at most ",
		max_age_text, " before the decision time",
	])
}

max_age_text := lib.plural(lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null), "hour") if {
	is_number(lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null))
} else := "(unconfigured) hours"

newest_finish(s) := max({[finished_ms(a), a.predicate.metadata.scanFinishedOn] | some a in scans(s)})[1]

stale_message(s) := concat("", [
	"the newest vulnerability scan of ", s.label, " finished at ", newest_finish(s),
	", more than ", max_age_text, " before ", input.effectiveTime,
]) if {
	lib.now_ms
	newest_finish(s)
} else := concat("", ["no vulnerability scan of ", s.label, " can be shown to be recent: scanFinishedOn or effectiveTime is missing or invalid"])

results contains lib.subject_result("vulnerabilities.severity", s.key, message, remediation, reported_by(s, id)) if {
	some s in lib.subjects
	some id in vulnerability_ids(s)
	level_of(s, id) >= threshold
	not waived(s, id)
	message := concat("", [
		"vulnerability ", id, " (", level_names[level_of(s, id)], ") affects ", s.label, "; ", input.environment,
		" allows no finding at or above ", level_names[threshold], expired_note(s, id),
	])
	remediation := concat("", [
		"upgrade the affected component and rescan, or add a waiver to data.gate.config.waivers naming ",
		id, ", ", s.key, ", ", input.environment, ", an owner and an expiry",
	])
}

results contains lib.subject_result("vulnerabilities.severity", s.key, message, remediation, [a.id]) if {
	some s in lib.subjects
	some a in considered(s)
	not readable(a)
	message := concat("", ["vulnerability scan ", lib.short(a.id), " of ", s.label, " has no scanner.result the gate can read"])
	remediation := "attest the scan with predicate.scanner.result as a vulns v0.2 list, a Trivy json report or a Grype json report"
}

expired_note(s, id) := concat("", ["; its waiver expired at ", lib.list_text(expired, 3)]) if {
	expired := sort({lib.quote(w.expires) |
		some w in waivers
		waiver_names(w, id, s)
		not waiver_valid(w)
	})
	count(expired) > 0
} else := ""

violations := lib.violations_of(results)

# A waived finding is shown as a warning so the exception stays visible.
waived_warnings contains lib.subject_result("vulnerabilities.waived", s.key, message, remediation, reported_by(s, id)) if {
	"vulnerabilities.severity" in lib.enforced
	some s in lib.subjects
	some id in vulnerability_ids(s)
	level_of(s, id) >= threshold
	w := waived_by(s, id)
	message := concat("", [
		"vulnerability ", id, " (", level_names[level_of(s, id)], ") in ", s.label, " is waived for ", input.environment,
		" by ", w.owner, " until ", w.expires,
	])
	remediation := concat("", ["fix ", id, " before the waiver expires at ", w.expires])
}

warnings := lib.warnings_of(results) | waived_warnings
