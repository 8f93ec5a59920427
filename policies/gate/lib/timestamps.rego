# METADATA
# title: RFC 3339 time without time.* builtins
# description: |
#   The time.* builtins are not compiled to WebAssembly and opa-wasm does not provide them,
#   so date-times are parsed here with regex and arithmetic. Times are compared as Unix epoch
#   milliseconds (fractions beyond milliseconds are truncated). The only notion of "now" is
#   input.effectiveTime: decisions must replay.
package gate.lib.timestamps

import data.gate.lib.num

rfc3339 := `^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$`

# parse_ms("2026-11-20T12:00:00Z") == 1795176000000; undefined when s is not an RFC 3339 date-time.
parse_ms(s) := ms if {
	is_string(s)
	matches := regex.find_all_string_submatch_n(rfc3339, s, 1)
	count(matches) == 1
	g := matches[0]
	year := num.int(g[1])
	month := num.int(g[2])
	day := num.int(g[3])
	hour := num.int(g[4])
	minute := num.int(g[5])
	second := num.int(g[6])
	month >= 1
	month <= 12
	day >= 1
	day <= days_in_month(year, month)
	hour <= 23
	minute <= 59
	second <= 60
	offset := offset_minutes(g[8])
	days := days_from_civil(year, month, day)
	minutes := ((((days * 24) + hour) * 60) + minute) - offset
	ms := (((minutes * 60) + second) * 1000) + fraction_ms(g[7])
}

valid(s) if parse_ms(s)

# ".5" -> 500, ".123456" -> 123, "" -> 0
fraction_ms(f) := 0 if f == ""

fraction_ms(f) := num.int(substring(concat("", [substring(f, 1, -1), "000"]), 0, 3)) if f != ""

offset_minutes(z) := 0 if lower(z) == "z"

offset_minutes(z) := m if {
	lower(z) != "z"
	h := num.int(substring(z, 1, 2))
	mm := num.int(substring(z, 4, 2))
	h <= 23
	mm <= 59
	m := sign(substring(z, 0, 1)) * ((h * 60) + mm)
}

sign("+") := 1

sign("-") := -1

leap(y) if {
	y % 4 == 0
	y % 100 != 0
}

leap(y) if y % 400 == 0

days_in_month(y, 2) := 29 if leap(y)

days_in_month(y, 2) := 28 if not leap(y)

days_in_month(_, m) := 30 if m in {4, 6, 9, 11}

days_in_month(_, m) := 31 if m in {1, 3, 5, 7, 8, 10, 12}

# Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
days_from_civil(year, month, day) := days if {
	y := year - march_based(month)
	era := floor(y / 400)
	yoe := y - (era * 400)
	mp := (month + 9) % 12
	doy := (floor(((153 * mp) + 2) / 5) + day) - 1
	doe := (((yoe * 365) + floor(yoe / 4)) - floor(yoe / 100)) + doy
	days := ((era * 146097) + doe) - 719468
}

march_based(month) := 1 if month <= 2

march_based(month) := 0 if month > 2
