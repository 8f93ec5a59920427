# METADATA
# title: release sets
# description: |
#   Several subjects decided together must satisfy config.release.constraints: when the set
#   contains a subject named `component`, it must contain a subject named `requires` whose
#   version satisfies `range` (unless `optional` is true, which skips the constraint when
#   `requires` is absent). Versions are Semantic Versioning 2.0.0, compared by
#   data.gate.lib.versions (OPA's semver.* builtins, which the gate provides to WebAssembly).
package gate.rules.release

import data.gate.lib
import data.gate.lib.versions

default constraints := []

constraints := c if {
	c := lib.config.release.constraints
	is_array(c)
}

# subject name -> the subjects of that name (computed once)
subjects_named[name] := [s | some s in lib.subjects; s.name == name] if {
	some x in lib.subjects
	name := x.name
}

named(name) := object.get(subjects_named, name, [])

requirement(c) := concat("", [lib.text(c.component), " requires ", lib.text(c.requires), " ", lib.text(object.get(c, "range", null))])

optional(c) if c.optional == true

range_valid(c) if versions.valid_range(c.range)

results contains lib.subject_result("release.constraints", d.key, message, remediation, []) if {
	"release.constraints" in lib.required
	some c in constraints
	some d in named(c.component)
	count(named(c.requires)) == 0
	not optional(c)
	message := concat("", ["the release set contains ", c.component, " but not ", c.requires, " (", requirement(c), ")"])
	remediation := concat("", ["decide ", c.component, " together with a ", c.requires, " whose version satisfies ", lib.text(object.get(c, "range", null))])
}

results contains lib.subject_result("release.constraints", d.key, message, remediation, []) if {
	"release.constraints" in lib.required
	some c in constraints
	some d in named(c.component)
	not range_valid(c)
	message := concat("", ["the release constraint ", lib.quote(c), " has no valid semver range"])
	remediation := "write the range as space-separated comparators such as >=2.0.0 <3.0.0, alternatives joined by ||"
}

results contains lib.subject_result("release.constraints", d.key, message, remediation, []) if {
	"release.constraints" in lib.required
	some c in constraints
	some d in named(c.component)
	range_valid(c)
	some p in named(c.requires)
	not versions.valid(p.version)
	message := concat("", ["component ", c.requires, " has no semantic version (", lib.quote(p.version), ") to check ", requirement(c)])
	remediation := concat("", ["give the ", c.requires, " subject a version such as 2.4.0"])
}

results contains lib.subject_result("release.constraints", d.key, message, remediation, []) if {
	"release.constraints" in lib.required
	some c in constraints
	some d in named(c.component)
	some p in named(c.requires)
	versions.valid(p.version)
	range_valid(c)
	not versions.satisfies(p.version, c.range)
	message := concat("", ["version ", p.version, " of ", c.requires, " does not satisfy ", requirement(c)])
	remediation := concat("", ["release ", c.component, " with a ", c.requires, " whose version satisfies ", c.range])
}

violations := lib.violations_of(results)

warnings := lib.warnings_of(results)
