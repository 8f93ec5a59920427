# METADATA
# title: verified change statements
# description: |
#   Change kinds select an environment's routine_required_rules and a ticket opens the hotfix
#   lane: both relax requirements, so both count only from a change statement (in-toto
#   predicate https://gate.dev/attestation/change/v1, schemas/change-predicate.schema.json)
#   about the subject, signed by an identity in config.attestors.change. input.context is
#   unsigned and chosen by whoever calls the gate: it is information, never a relaxation.
package gate.lib.changes

import data.gate.lib

predicate_type := "https://gate.dev/attestation/change/v1"

# Unlike the other attestor families, an absent or empty attestors.change trusts nobody: a
# relaxation must never follow from a missing setting.
trusted(a) if {
	some m in lib.config.attestors.change
	is_object(m)
	lib.signer_matches(a.signer, m)
}

# Per subject, computed once: every change statement about it, and the trusted ones.
all_statements_of[s] := lib.attestations_about(s, {predicate_type}) if {
	some s in lib.subjects
}

statements_of[s] := [a | some a in atts; trusted(a)] if {
	some s, atts in all_statements_of
}

ignored(s) := lib.ids(all_statements_of[s]) - lib.ids(statements_of[s])

# (a list only: iterating an object would count its values)
kinds_of(a) := {k | is_array(a.predicate.changeKinds); some k in a.predicate.changeKinds; is_string(k)}

# Subjects no trusted statement gives a change kind.
unstated contains s if {
	some s, atts in statements_of
	not states_kinds(atts)
}

states_kinds(atts) if {
	some a in atts
	count(kinds_of(a)) > 0
}

# The change kinds the trusted statements state, over every subject: a change is what all of
# its statements say it touches.
verified_kinds := {k | some atts in statements_of; some a in atts; some k in kinds_of(a)}

# Verified kinds exist only when every subject has a statement stating some.
every_subject_stated if {
	count(lib.subjects) > 0
	count(unstated) == 0
}

# What the caller declared in the unsigned context (information; it can only add kinds).
default declared_kinds := set()

declared_kinds := {k | some k in input.context.changeKinds; is_string(k)} if {
	is_array(input.context.changeKinds)
}
