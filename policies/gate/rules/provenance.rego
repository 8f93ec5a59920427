# METADATA
# title: build provenance
# description: |
#   SLSA provenance v1 and v0.2. Some provenance attestation about the subject must pass every
#   required provenance check at once: trusted builder id, a signer that is an identity of
#   that builder, allowed source repository and ref, allowed build type. Provenance from other
#   signers is reported but cannot make a subject pass.
package gate.rules.provenance

import data.gate.lib

slsa_v1 := "https://slsa.dev/provenance/v1"

slsa_v02 := "https://slsa.dev/provenance/v0.2"

predicate_types := {slsa_v1, slsa_v02}

default trusted_builders := []

trusted_builders := b if {
	b := lib.config.trusted_builders
	is_array(b)
}

allowed_repositories := {lib.normalize_repo(r) | some r in object.get(lib.config, "source_repositories", []); is_string(r)}

allowed_build_types := {t | some t in object.get(lib.config, "build_types", []); is_string(t)}

allowed_refs := [r | some r in lib.env_setting(["source_refs"], []); is_string(r)]

# Refs without glob metacharacters compare as strings: glob.match compiles a regular
# expression in every WebAssembly evaluation, so it is kept for the patterns that need it.
literal_refs := {r | some r in allowed_refs; not glob_pattern(r)}

glob_refs := [r | some r in allowed_refs; glob_pattern(r)]

glob_pattern(r) if {
	some c in ["*", "?", "[", "]", "{", "}", "\\"]
	contains(r, c)
}

required if "provenance" in lib.required_families

# Positions in input.attestations of the provenance about each subject (computed once; also
# used by review.revision, so not conditional on the provenance rules).
candidate_indices[s] := lib.indices_about(s, predicate_types) if {
	some s in lib.subjects
}

candidates(s) := [input.attestations[i] | some i in candidate_indices[s]]

# Every provenance attestation about a subject, by position; what the checks need of each is
# computed once per evaluation below.
provenance_indices contains i if {
	some s in lib.subjects
	some i in candidate_indices[s]
}

repositories_at[i] := repositories(input.attestations[i]) if some i in provenance_indices

refs_at[i] := refs(input.attestations[i]) if some i in provenance_indices

trusted_builder_at contains i if {
	some i in provenance_indices
	builder_trusted(input.attestations[i])
}

trusted_signer_at contains i if {
	some i in provenance_indices
	signer_trusted(input.attestations[i])
}

# What the provenance says ----------------------------------------------------------------

builder_id(a) := a.predicate.runDetails.builder.id if a.predicateType == slsa_v1

builder_id(a) := a.predicate.builder.id if a.predicateType == slsa_v02

build_type(a) := a.predicate.buildDefinition.buildType if a.predicateType == slsa_v1

build_type(a) := a.predicate.buildType if a.predicateType == slsa_v02

# Source repository claims: the Fulcio certificate's sourceRepositoryURI (set by the CI's OIDC
# token, not by the builder), the GitHub Actions build type's externalParameters.workflow
# .repository, a top-level externalParameters.repository (the SLSA spec's example build type)
# and v0.2's invocation.configSource.uri. resolvedDependencies/materials are not claims: they
# list every input, not only the source. Every claim must be allowed and there must be one.
repository_paths := [
	["signer", "extensions", "sourceRepositoryURI"],
	["predicate", "buildDefinition", "externalParameters", "workflow", "repository"],
	["predicate", "buildDefinition", "externalParameters", "repository"],
	["predicate", "invocation", "configSource", "uri"],
]

ref_paths := [
	["signer", "extensions", "sourceRepositoryRef"],
	["predicate", "buildDefinition", "externalParameters", "workflow", "ref"],
	["predicate", "buildDefinition", "externalParameters", "ref"],
]

repositories(a) := {lib.normalize_repo(u) |
	some path in repository_paths
	u := object.get(a, path, null)
	is_string(u)
	u != ""
}

refs(a) := {r | some path in ref_paths; r := object.get(a, path, null); is_string(r); r != ""} | {r |
	u := object.get(a, ["predicate", "invocation", "configSource", "uri"], null)
	is_string(u)
	r := lib.ref_of_uri(u)
}

# Source revisions (lowercase): the certificate's sourceRepositoryDigest, the gitCommit of a
# resolvedDependencies entry naming a claimed repository, v0.2 configSource's sha1/gitCommit.
revisions(a) := (certificate_revisions(a) | dependency_revisions(a)) | config_source_revisions(a)

certificate_revisions(a) := {lower(r) | r := a.signer.extensions.sourceRepositoryDigest; is_string(r)}

dependency_revisions(a) := {lower(d.digest.gitCommit) |
	repos := repositories(a)
	some d in a.predicate.buildDefinition.resolvedDependencies
	is_string(d.uri)
	lib.normalize_repo(d.uri) in repos
	is_string(d.digest.gitCommit)
}

config_source_revisions(a) := {lower(r) |
	some alg in ["sha1", "gitCommit"]
	r := a.predicate.invocation.configSource.digest[alg]
	is_string(r)
}

# Checks ------------------------------------------------------------------------------------

builder_entries(a) := [b | id := builder_id(a); some b in trusted_builders; builder_matches(b, id)]

# the trusted builders whose id is exactly the provenance's (no regular expression involved)
exact_builder_entries(a) := [b | id := builder_id(a); is_string(id); some b in trusted_builders; b.id == id]

builder_matches(b, id) if {
	is_string(id)
	b.id == id
} else if {
	is_string(id)
	is_string(b.id_regexp)
	regex.match(lib.anchored(b.id_regexp), id)
}

# An exact id settles it; the id_regexp entries are matched only otherwise.
builder_trusted(a) if {
	count(exact_builder_entries(a)) > 0
} else if {
	count(builder_entries(a)) > 0
}

# The signer must be an identity of the builder the provenance names (when that builder is not
# trusted, of any trusted builder: the builder failure is reported on its own). An identity of
# an exactly named builder settles it without matching the id_regexp entries.
signer_trusted(a) if {
	some b in exact_builder_entries(a)
	identity_of(a, b)
} else if {
	some b in builder_entries(a)
	identity_of(a, b)
} else if {
	count(builder_entries(a)) == 0
	some b in trusted_builders
	identity_of(a, b)
}

identity_of(a, b) if {
	some m in object.get(b, "identities", [])
	lib.signer_matches(a.signer, m)
}

build_type_allowed(a) if build_type(a) in allowed_build_types

ref_allowed(ref) if {
	ref in literal_refs
} else if {
	some pattern in glob_refs
	glob.match(pattern, ["/"], ref)
}

# Provenance from a trusted builder and signer: the revisions it names (used by review.revision).
trusted_revisions_of[s] := {r |
	some i in candidate_indices[s]
	i in trusted_builder_at
	i in trusted_signer_at
	some r in revisions(input.attestations[i])
} if {
	some s in lib.subjects
}

trusted_revisions(s) := trusted_revisions_of[s]

# Failures per candidate --------------------------------------------------------------------

failures contains failure(s, a, "provenance.trusted_builder", message, remediation) if {
	"provenance.trusted_builder" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	not i in trusted_builder_at
	a := input.attestations[i]
	message := builder_message(a)
	remediation := concat("", ["build with a trusted builder: ", lib.list_text(builder_names, 5)])
}

builder_message(a) := concat("", ["provenance ", lib.short(a.id), " names builder ", builder_id(a), ", which is not a trusted builder"]) if {
	is_string(builder_id(a))
} else := concat("", ["provenance ", lib.short(a.id), " names no builder id"])

builder_names := [n | some b in trusted_builders; n := builder_name(b)]

builder_name(b) := b.id if {
	is_string(b.id)
} else := lib.anchored(b.id_regexp) if {
	is_string(b.id_regexp)
}

failures contains failure(s, a, "provenance.signer", message, remediation) if {
	"provenance.signer" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	not i in trusted_signer_at
	a := input.attestations[i]
	message := concat("", [
		"provenance ", lib.short(a.id), " is signed by ", lib.describe_signer(object.get(a, "signer", {})),
		", which is not an identity of its builder",
	])
	remediation := concat("", ["sign the provenance as the builder: ", lib.list_text(signer_names(a), 5)])
}

signer_names(a) := [lib.describe_matcher(m) | some b in builder_entries(a); some m in object.get(b, "identities", [])] if {
	count(builder_entries(a)) > 0
} else := [lib.describe_matcher(m) | some b in trusted_builders; some m in object.get(b, "identities", [])]

failures contains failure(s, a, "provenance.source_repository", message, remediation) if {
	"provenance.source_repository" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	count(repositories_at[i]) == 0
	a := input.attestations[i]
	message := concat("", ["provenance ", lib.short(a.id), " names no source repository"])
	remediation := repository_remediation
}

failures contains failure(s, a, "provenance.source_repository", message, remediation) if {
	"provenance.source_repository" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	some repo in repositories_at[i]
	not repo in allowed_repositories
	a := input.attestations[i]
	message := concat("", ["provenance ", lib.short(a.id), " names source repository ", repo, ", which is not allowed"])
	remediation := repository_remediation
}

repository_remediation := concat("", ["build from an allowed repository: ", lib.list_text(sort(allowed_repositories), 5)])

failures contains failure(s, a, "provenance.source_ref", message, remediation) if {
	"provenance.source_ref" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	count(refs_at[i]) == 0
	a := input.attestations[i]
	message := concat("", ["provenance ", lib.short(a.id), " names no source ref"])
	remediation := ref_remediation
}

failures contains failure(s, a, "provenance.source_ref", message, remediation) if {
	"provenance.source_ref" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	some ref in refs_at[i]
	not ref_allowed(ref)
	a := input.attestations[i]
	message := concat("", ["provenance ", lib.short(a.id), " was built from ref ", ref, ", which ", input.environment, " does not allow"])
	remediation := ref_remediation
}

ref_remediation := concat("", ["build from a ref matching one of: ", lib.list_text(allowed_refs, 5)])

failures contains failure(s, a, "provenance.build_type", message, remediation) if {
	"provenance.build_type" in lib.required
	some s in lib.subjects
	some i in candidate_indices[s]
	a := input.attestations[i]
	not build_type_allowed(a)
	message := build_type_message(a)
	remediation := concat("", ["build with an allowed build type: ", lib.list_text(sort(allowed_build_types), 5)])
}

build_type_message(a) := concat("", ["provenance ", lib.short(a.id), " has build type ", build_type(a), ", which is not allowed"]) if {
	is_string(build_type(a))
} else := concat("", ["provenance ", lib.short(a.id), " names no build type"])

failure(s, a, id, message, remediation) := {
	"att": a.id,
	"key": s.key,
	"result": lib.subject_result(id, s.key, message, remediation, [a.id]),
}

# Results ------------------------------------------------------------------------------------

present contains lib.subject_result(
	"provenance.present",
	s.key,
	concat("", ["no slsa provenance attestation for ", s.label]),
	"attach slsa provenance (https://slsa.dev/provenance/v1 or v0.2) from a trusted builder for this digest",
	[],
) if {
	"provenance.present" in lib.required
	some s in lib.subjects
	count(candidate_indices[s]) == 0
}

subject_failures(s) := {f | some f in failures; f.key == s.key}

violations := lib.violations_of(present) | {r |
	required
	some s in lib.subjects
	some r in lib.conformance_violations(lib.ids(candidates(s)), subject_failures(s))
}

warnings := lib.warnings_of(present) | {r |
	required
	some s in lib.subjects
	some r in lib.conformance_warnings(lib.ids(candidates(s)), subject_failures(s))
}
