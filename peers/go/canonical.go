// The X-Signature-V2 message: Didit's
// json.dumps(shorten_floats(P), sort_keys=True, separators=(",", ":"), ensure_ascii=False),
// reproduced byte for byte from a body that something may have re-encoded.
//
// encoding/json parses (UseNumber keeps each number's text; a repeated key keeps its last value,
// as in Python); the writer below prints as Python does: keys sorted by code point (Go's byte
// order of UTF-8), strings with Python's escapes, whole floats as the exact integer of the
// double, other floats as Python's repr.

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CanonicalV2 returns the V2 message of a body that is a JSON object in UTF-8, or false.
func CanonicalV2(body []byte) ([]byte, bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, false
	}
	return appendCanonical(make([]byte, 0, len(body)), v), true
}

func appendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPyString(b, k)
			b = append(b, ':')
			b = appendCanonical(b, x[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, e)
		}
		return append(b, ']')
	case string:
		return appendPyString(b, x)
	case json.Number:
		return appendPyNumber(b, string(x))
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	default: // nil
		return append(b, "null"...)
	}
}

const hexDigits = "0123456789abcdef"

// appendPyString writes s as json.dumps does with ensure_ascii=False: `"` and `\` escaped,
// \b \f \n \r \t by name, other control characters as \u00XX, everything else as is.
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// pyInt is Python's str(int(token)) for a JSON integer token: its digits, "-0" being 0.
func pyInt(token string) string {
	if token == "-0" {
		return "0"
	}
	return token
}

// appendPyNumber writes a JSON number token as Python's json.loads, shorten_floats and
// json.dumps leave it: integers keep their digits (any size); a float with an integral value
// becomes that double's exact integer (1e16 -> 10000000000000000, 1.1812083616449413e+38 ->
// 118120836164494129544568202238038638592); any other float is written as repr writes it.
func appendPyNumber(b []byte, token string) []byte {
	if !strings.ContainsAny(token, ".eE") {
		return append(b, pyInt(token)...)
	}
	f, _ := strconv.ParseFloat(token, 64) // the syntax is valid JSON; out of range is ±Inf
	switch {
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == math.Trunc(f):
		if math.Abs(f) < 1<<63 {
			return strconv.AppendInt(b, int64(f), 10)
		}
		i, _ := new(big.Float).SetFloat64(f).Int(nil)
		return i.Append(b, 10)
	}
	// repr: the shortest digits that round-trip (Go's -1 precision), in scientific notation
	// when the decimal exponent is below -4 (Go's 'e' format writes Python's signed, two-digit
	// or longer exponent), fixed otherwise. A non-integral double is below 2^52, so repr's
	// large end (1e16 and over) never applies.
	n := len(b)
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	if exp, _ := strconv.Atoi(string(b[bytes.LastIndexByte(b[n:], 'e')+n+1:])); exp < -4 {
		return b
	}
	return strconv.AppendFloat(b[:n], f, 'f', -1, 64)
}
