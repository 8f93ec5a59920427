package gate_test.lib

import data.gate.lib
import data.gate.lib.versions

now(t) := ns if {
	ns := lib.now_ns with input as {"effectiveTime": t}
}

test_now_is_the_effective_time_in_nanoseconds if {
	now("1970-01-01T00:00:00Z") == 0
	now("2026-11-20T12:00:00Z") == 1795176000000000000
}

test_now_applies_offsets_and_fractions if {
	now("2026-11-20T14:00:00.5+02:00") == 1795176000500000000
	now("2026-11-20T06:30:00.123456789-05:30") == 1795176000123456789
}

test_now_knows_leap_years if {
	now("2024-02-29T00:00:00Z") == 1709164800000000000
	not now("2023-02-29T00:00:00Z")
	now("2000-02-29T00:00:00Z")
	not now("1900-02-29T00:00:00Z")
}

test_now_rejects_malformed if {
	not now("2026-11-20")
	not now("2026-13-01T00:00:00Z")
	not now("2026-11-20T24:00:00Z")
	not now("2026-11-20T12:00:00")
	not now("2026-11-20T12:00:60Z")
	not now("2026-11-20t12:00:00Z")
	not now(1795176000)
	not lib.now_ns with input as {}
}

test_effective_on_dates_are_parsed_once_per_rule if {
	dates := {"a": "2027-01-01T00:00:00Z", "b": "next year"}
	lib.effective_on_ns == {"a": 1798761600000000000} with data.gate.config as {"rule_effective_on": dates}
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
	not versions.valid("1.2.3-01")
	not versions.valid("1.2.3+")
	not versions.valid(123)
	not versions.compare("1.2", "1.2.0")
}

test_semver_ranges if {
	versions.satisfies("2.3.1", ">=2.0.0 <3.0.0")
	not versions.satisfies("3.0.0", ">=2.0.0 <3.0.0")
	versions.satisfies("3.0.0", ">=2 <3 || =3.0.0")
	versions.satisfies("3.0.0", "3.0.0")
	versions.satisfies("0.1.0", "*")
	versions.satisfies("2.0.0", ">1.9 <=2.0.0")
	not versions.satisfies("1.9.0", ">1.9")
	versions.satisfies("v2.1.0", ">=v2.1 <2.2.0-0")
	versions.satisfies("2.0.0-rc.2", ">=2.0.0-rc.1 <2.0.0")
	not versions.satisfies("2.0.0-rc.1", ">=2.0.0")
	versions.satisfies("2.0.0+build.5", "=2.0.0")
	not versions.satisfies("two", "*")
}

test_semver_rejects_invalid_ranges if {
	not versions.valid_range(">= 2")
	not versions.valid_range("~2")
	not versions.valid_range("")
	not versions.valid_range(">=2.0.0 ||")
	not versions.valid_range(">=2-rc")
	not versions.valid_range(">=2.0.0.0")
	not versions.valid_range("=>2.0.0")
	not versions.valid_range(2)
	versions.valid_range(">=2 <3 || *")
}
