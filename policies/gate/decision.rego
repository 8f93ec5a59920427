# METADATA
# title: the gate's decision
# description: |
#   Entrypoint data.gate.decision (build with -e gate/decision). Always an object:
#   allow (true iff there is no violation), violations and warnings (sorted by id, subject,
#   message) and rules (every rule evaluated for the environment). See docs/policies.md.
package gate

import data.gate.lib
import data.gate.rules.change
import data.gate.rules.core
import data.gate.rules.promotion
import data.gate.rules.provenance
import data.gate.rules.release
import data.gate.rules.review
import data.gate.rules.tests
import data.gate.rules.vulnerabilities

# (a comprehension over a list of the sets: union() of a set of sets would hash every result
# once more to build that set)
violations := {r |
	some family in [
		core.violations,
		provenance.violations,
		tests.violations,
		vulnerabilities.violations,
		review.violations,
		promotion.violations,
		change.violations,
		release.violations,
	]
	some r in family
}

warnings := {r |
	some family in [
		core.warnings,
		provenance.warnings,
		tests.warnings,
		vulnerabilities.warnings,
		review.warnings,
		promotion.warnings,
		change.warnings,
		release.warnings,
	]
	some r in family
}

decision := {
	"allow": count(violations) == 0,
	"violations": ordered(violations),
	"warnings": ordered(warnings),
	"rules": sort(lib.evaluated),
}

ordered(results) := [x[3] | some x in sort([[r.id, object.get(r, "subject", ""), r.message, r] | some r in results])]
