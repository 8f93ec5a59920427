# METADATA
# title: change context
# description: |
#   change.ticket: every subject has a trusted change statement (data.gate.lib.changes) whose
#   ticket matches the environment's ticket_pattern (anchored) when one is configured. The
#   hotfix lane requires it in place of a staging summary, so the unsigned input.context.ticket
#   never counts. change.unverified_context warns when the context declares routine change
#   kinds that no verified statement backs.
package gate.rules.change

import data.gate.lib
import data.gate.lib.changes

ticket_pattern := lib.env_setting(["ticket_pattern"], null)

required if "change.ticket" in lib.required

# Per subject, computed once: [attestation id, ticket] of its trusted change statements.
tickets_of[s] := [[a.id, t] |
	some a in atts
	t := a.predicate.ticket
	is_string(t)
	trim_space(t) != ""
] if {
	required
	some s, atts in changes.statements_of
}

ticket_matches(_) if not is_string(ticket_pattern)

ticket_matches(t) if regex.match(lib.anchored(ticket_pattern), t)

ticketed(s) if {
	some x in tickets_of[s]
	ticket_matches(x[1])
}

results contains lib.subject_result("change.ticket", s.key, message, ticket_remediation, changes.ignored(s)) if {
	required
	some s, tickets in tickets_of
	count(tickets) == 0
	message := concat("", [
		"the ", input.environment, " environment requires a change ticket from a verified change statement about ",
		s.label, " and none was found", unverified_note(s),
	])
}

results contains lib.subject_result("change.ticket", s.key, message, ticket_remediation, [x[0] | some x in tickets]) if {
	required
	some s, tickets in tickets_of
	count(tickets) > 0
	not ticketed(s)
	message := concat("", [
		"change ticket ", concat(", ", sort({lib.quote(x[1]) | some x in tickets})), " of ", s.label,
		" does not match ", lib.anchored(ticket_pattern),
	])
}

# Why what the caller may have offered did not count.
unverified_note(s) := concat("", [" (", concat("; ", notes), ")"]) if {
	notes := [n | some n in [context_ticket_note, ignored_note(s)]; n != ""]
	count(notes) > 0
} else := ""

context_ticket_note := concat("", ["the unsigned context.ticket ", lib.quote(input.context.ticket), " does not count"]) if {
	is_string(input.context.ticket)
} else := ""

ignored_note(s) := concat("", [
	lib.plural(count(changes.ignored(s)), "change statement"),
	" ignored: not signed by a trusted change attestor",
]) if {
	count(changes.ignored(s)) > 0
} else := ""

ticket_remediation := concat("", [
	"attach a change statement (", changes.predicate_type, ") about each subject whose ticket matches ",
	lib.anchored(ticket_pattern), ", signed by an identity in attestors.change",
]) if {
	is_string(ticket_pattern)
} else := concat("", [
	"attach a change statement (", changes.predicate_type,
	") about each subject with its ticket, signed by an identity in attestors.change",
])

violations := lib.violations_of(results)

# The caller declared kinds that would select the routine rules here, and no verified change
# statement backs them: said, so that a reader knows why the full rule set applied.
unverified_context contains lib.global_result(
	"change.unverified_context",
	concat("", [
		"the change kinds declared in the request context (", concat(", ", sort(changes.declared_kinds)),
		") are unsigned and did not select the routine rules: no trusted change statement states them for every subject",
	]),
	concat("", [
		"attach a change statement (", changes.predicate_type,
		") about every subject, signed by an identity in attestors.change",
	]),
	[],
) if {
	count(changes.declared_kinds) > 0
	is_array(lib.env.change_kinds.routine_required_rules)
	routine := lib.env_setting(["change_kinds", "routine"], [])
	every k in changes.declared_kinds {
		k in routine
	}
	not lib.routine_change
}

warnings := lib.warnings_of(results) | unverified_context
