package gate_test.lib

import data.gate.lib.timestamps
import data.gate.lib.versions

test_time_parses_utc if {
	timestamps.parse_ms("1970-01-01T00:00:00Z") == 0
	timestamps.parse_ms("2026-11-20T12:00:00Z") == 1795176000000
}

test_time_applies_offsets_and_fractions if {
	timestamps.parse_ms("2026-11-20T14:00:00.5+02:00") == 1795176000500
	timestamps.parse_ms("2026-11-20T06:30:00.123456789-05:30") == 1795176000123
}

test_time_knows_leap_years if {
	timestamps.parse_ms("2024-02-29T00:00:00Z") == 1709164800000
	not timestamps.parse_ms("2023-02-29T00:00:00Z")
	timestamps.parse_ms("2000-02-29T00:00:00Z")
	not timestamps.parse_ms("1900-02-29T00:00:00Z")
}

test_time_rejects_malformed if {
	not timestamps.parse_ms("2026-11-20")
	not timestamps.parse_ms("2026-13-01T00:00:00Z")
	not timestamps.parse_ms("2026-11-20T24:00:00Z")
	not timestamps.parse_ms("2026-11-20T12:00:00")
	not timestamps.parse_ms(1795176000)
}

test_semver_precedence if {
	versions.compare("1.2.3", "1.10.0") == -1
	versions.compare("v2.0.0", "2.0.0+build.7") == 0
	versions.compare("1.0.0-alpha", "1.0.0") == -1
	versions.compare("1.0.0-alpha", "1.0.0-alpha.1") == -1
	versions.compare("1.0.0-alpha.1", "1.0.0-alpha.beta") == -1
	versions.compare("1.0.0-beta.11", "1.0.0-beta.2") == 1
	versions.compare("1.0.0-rc.1", "1.0.0") == -1
	versions.compare("10.0.0", "9.99.99") == 1
}

test_semver_rejects_invalid if {
	not versions.valid("1.2")
	not versions.valid("01.2.3")
	not versions.valid("1.2.3.4")
	not versions.valid(123)
}

test_semver_ranges if {
	versions.satisfies("2.3.1", ">=2.0.0 <3.0.0")
	not versions.satisfies("3.0.0", ">=2.0.0 <3.0.0")
	versions.satisfies("3.0.0", ">=2 <3 || =3.0.0")
	versions.satisfies("3.0.0", "3.0.0")
	versions.satisfies("0.1.0", "*")
	versions.satisfies("2.0.0", ">1.9 <=2.0.0")
	not versions.satisfies("1.9.0", ">1.9")
}

test_semver_rejects_invalid_ranges if {
	not versions.valid_range(">= 2")
	not versions.valid_range("~2")
	not versions.valid_range("")
	not versions.valid_range(">=2.0.0 ||")
}
