# METADATA
# title: change context
# description: |
#   change.ticket: the caller names a change ticket in input.context.ticket, matching the
#   environment's ticket_pattern (an anchored regular expression) when one is configured. The
#   hotfix lane requires it.
package gate.rules.change

import data.gate.lib

ticket_pattern := lib.env_setting(["ticket_pattern"], null)

ticket := t if {
	t := input.context.ticket
	is_string(t)
	trim_space(t) != ""
}

results contains lib.global_result(
	"change.ticket",
	concat("", ["the ", input.environment, " environment requires a change ticket in the request context and none was given"]),
	ticket_remediation,
	[],
) if {
	"change.ticket" in lib.required
	not ticket
}

results contains lib.global_result(
	"change.ticket",
	concat("", ["change ticket ", lib.quote(ticket), " does not match ", lib.anchored(ticket_pattern)]),
	ticket_remediation,
	[],
) if {
	"change.ticket" in lib.required
	is_string(ticket_pattern)
	ticket
	not ticket_matches
}

ticket_matches if regex.match(lib.anchored(ticket_pattern), ticket)

ticket_remediation := concat("", ["pass the change ticket as context.ticket, matching ", lib.anchored(ticket_pattern)]) if {
	is_string(ticket_pattern)
} else := "pass the change ticket as context.ticket"

violations := lib.violations_of(results)

warnings := lib.warnings_of(results)
