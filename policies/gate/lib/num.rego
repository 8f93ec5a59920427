# METADATA
# title: number helpers
# description: |
#   Decimal digit strings to integers with native WebAssembly builtins only
#   (to_number's parsing of leading zeros differs between engines, so it is avoided).
package gate.lib.num

pow10 := [
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
]

# int("0042") == 42; at most 15 digits (exact in a double); undefined for anything else.
int(s) := n if {
	regex.match(`^[0-9]{1,15}$`, s)
	last := count(s) - 1
	n := sum([(indexof("0123456789", substring(s, i, 1)) * pow10[last - i]) | some i in numbers.range(0, last)])
}
