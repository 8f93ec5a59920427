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

vulns_v02 := "https://in-toto.io/attestation/vulns/v0.2"

cosign_vuln_v1 := "https://cosign.sigstore.dev/attestation/vuln/v1"

predicate_types := {vulns_v02, cosign_vuln_v1}

# Nothing here is computed unless the environment requires a vulnerabilities rule.
required if "vulnerabilities" in lib.required_families

# Per subject, computed once: every scan about it, and the trusted ones.
all_scans_of[s] := lib.attestations_about(s, predicate_types) if {
	required
	some s in lib.subjects
}

scans_of[s] := [a | some a in atts; lib.attestor_trusted("vulnerabilities", a)] if {
	some s, atts in all_scans_of
}

all_scans(s) := all_scans_of[s]

scans(s) := scans_of[s]

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
	cvss_text(trim_space(score))
} else := cvss_level(score) if {
	is_number(score)
} else := unknown_level

# "7", "7.5", "10.0": one or two digits, optionally a point and at least one digit (the regular
# expression ^[0-9]{1,2}(\.[0-9]+)?$ without compiling one in every evaluation)
cvss_text(t) if {
	parts := split(t, ".")
	count(parts) <= 2
	count(parts[0]) >= 1
	count(parts[0]) <= 2
	every p in parts {
		p != ""
		trim(p, "0123456789") == ""
	}
}

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

finished_ns(a) := time.parse_rfc3339_ns(a.predicate.metadata.scanFinishedOn)

max_age_hours := lib.env_setting(["vulnerabilities", "max_scan_age_hours"], null)

max_age_ns := max_age_hours * 3600000000000

# the oldest scanFinishedOn that is fresh
fresh_from_ns := lib.now_ns - max_age_ns if is_number(max_age_hours)

fresh(a) if finished_ns(a) >= fresh_from_ns

fresh_scans_of[s] := [a | some a in atts; fresh(a)] if {
	some s, atts in scans_of
}

fresh_scans(s) := fresh_scans_of[s]

# Findings are taken from the fresh scans; when none is fresh (a vulnerabilities.fresh
# violation), from every trusted scan.
considered(s) := fresh_scans(s) if count(fresh_scans(s)) > 0

else := scans(s)

# [[attestation id (none when it has none)], finding] for every finding of a considered scan
considered_findings_of[s] := [[[x | x := a.id], f] | some a in considered(s); some f in findings(a)] if {
	some s, _ in scans_of
}

# Per subject, computed once: vulnerability id -> {"level": the highest level any considered
# scan gives it, "reported_by": the ids of the scans that report it}.
vulnerabilities_of[s] := {id: {"level": max(levels), "reported_by": reported} |
	some id in {x[1].id | some x in found}
	levels := {x[1].level | some x in found; x[1].id == id}
	reported := {att | some x in found; x[1].id == id; some att in x[0]}
} if {
	some s, found in considered_findings_of
}

vulnerability_ids(s) := {id | some id, _ in vulnerabilities_of[s]}

level_of(s, id) := vulnerabilities_of[s][id].level

reported_by(s, id) := vulnerabilities_of[s][id].reported_by

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

waiver_valid(w) if lib.now_ns < time.parse_rfc3339_ns(w.expires)

# the valid waiver that lasts longest (several may name the same finding)
waived_by(s, id) := max({[time.parse_rfc3339_ns(w.expires), w] |
	some w in waivers
	waiver_names(w, id, s)
	waiver_valid(w)
})[1]

waived(s, id) if waived_by(s, id)

# Results ------------------------------------------------------------------------------------

results contains lib.subject_result("vulnerabilities.present", s.key, message, remediation, ignored(s)) if {
	"vulnerabilities.present" in lib.required
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
	"vulnerabilities.fresh" in lib.required
	some s in lib.subjects
	count(scans(s)) > 0
	count(fresh_scans(s)) == 0
	message := stale_message(s)
	remediation := concat("", [
		"rescan the artifact and attest the scan; ", input.environment, " accepts scans finished at most ",
		max_age_text, " before the decision time",
	])
}

max_age_text := lib.plural(max_age_hours, "hour") if {
	is_number(max_age_hours)
} else := "(unconfigured) hours"

newest_finish(s) := max({[finished_ns(a), a.predicate.metadata.scanFinishedOn] | some a in scans(s)})[1]

stale_message(s) := concat("", [
	"the newest vulnerability scan of ", s.label, " finished at ", newest_finish(s),
	", more than ", max_age_text, " before ", input.effectiveTime,
]) if {
	lib.now_ns
	newest_finish(s)
} else := concat("", ["no vulnerability scan of ", s.label, " can be shown to be recent: scanFinishedOn or effectiveTime is missing or invalid"])

results contains lib.subject_result("vulnerabilities.severity", s.key, message, remediation, reported_by(s, id)) if {
	"vulnerabilities.severity" in lib.required
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
	"vulnerabilities.severity" in lib.required
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
