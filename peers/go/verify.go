// Verifies Didit webhook deliveries: raw body bytes and headers in, a verified event or a
// rejection (HTTP status and reason) out. No I/O, so go test can drive it with the vectors.
//
// Order, as the Rust references do it: header syntax and X-Timestamp freshness first (no
// cryptography), then the signatures in constant time, and only then the body is trusted: its
// signed `timestamp` must be fresh and equal the unsigned X-Timestamp header.

package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ToleranceSecs is how far a delivery's timestamp may be from now, in either direction.
const ToleranceSecs = 300

// A Rejection is an HTTP status and the reason word of its `{"error":"<reason>"}` body, built
// once so that answering one allocates nothing.
type Rejection struct {
	Status int
	Reason string
	body   []byte
	length []string
}

func newRejection(status int, reason string) *Rejection {
	b := []byte(`{"error":"` + reason + `"}`)
	return &Rejection{Status: status, Reason: reason, body: b, length: []string{strconv.Itoa(len(b))}}
}

var (
	errMalformedTimestampHeader = newRejection(400, "malformed_timestamp_header")
	errStale                    = newRejection(401, "stale")
	errFromFuture               = newRejection(401, "from_future")
	errMissingSignature         = newRejection(401, "missing_signature")
	errMalformedSignature       = newRejection(401, "malformed_signature")
	errInvalidSignature         = newRejection(401, "invalid_signature")
	errMalformedPayload         = newRejection(400, "malformed_payload")
	errMissingTimestamp         = newRejection(400, "missing_timestamp")
	errInvalidTimestamp         = newRejection(400, "invalid_timestamp")
	errMissingWebhookType       = newRejection(400, "missing_webhook_type")
	errTimestampMismatch        = newRejection(401, "timestamp_mismatch")
)

// Scheme names the signature that verified a delivery.
type Scheme string

const (
	SchemeRaw    Scheme = "raw"
	SchemeV2     Scheme = "v2"
	SchemeSimple Scheme = "simple"
)

// Verified is what the store needs of an authenticated delivery.
type Verified struct {
	Scheme Scheme
	// Key is the de-duplication key: "e:<event_id>", or "s:<signature>" without one.
	Key string
	// SessionID and Status are set (HasSession) when the body carries both as strings.
	SessionID  string
	Status     string
	HasSession bool
	Timestamp  int64
	VerifiedAt int64
}

// Verifier checks deliveries signed with one secret. Safe for concurrent use.
type Verifier struct {
	tolerance    int64
	acceptSimple bool
	now          func() int64
	macs         sync.Pool // of hash.Hash: hmac.New keyed once, Reset between uses
}

// NewVerifier keys the HMACs with the secret's UTF-8 bytes, used verbatim (not base64-decoded).
func NewVerifier(secret string, acceptSimple bool, now func() int64) (*Verifier, error) {
	if secret == "" {
		return nil, errors.New("a secret is required")
	}
	if now == nil {
		now = func() int64 { return time.Now().Unix() }
	}
	key := []byte(secret)
	v := &Verifier{tolerance: ToleranceSecs, acceptSimple: acceptSimple, now: now}
	v.macs.New = func() any { return hmac.New(sha256.New, key) }
	return v, nil
}

// matches computes HMAC-SHA256(message) and compares it with hexSig (64 lowercase hex
// characters, checked by the caller) in constant time.
func (v *Verifier) matches(message []byte, hexSig string) bool {
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return false
	}
	m := v.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(message)
	var sum [sha256.Size]byte
	ok := hmac.Equal(m.Sum(sum[:0]), want[:])
	v.macs.Put(m)
	return ok
}

func (v *Verifier) freshness(ts, now int64) *Rejection {
	// Written so that no subtraction can overflow: ts may be anything a body carries.
	if ts < now-v.tolerance {
		return errStale
	}
	if ts > now+v.tolerance {
		return errFromFuture
	}
	return nil
}

// header returns a header's value and whether it is present; repeated headers are joined
// with ", " as HTTP allows (which no timestamp or signature syntax accepts).
func header(h http.Header, canonicalName string) (string, bool) {
	vs, ok := h[canonicalName]
	switch {
	case !ok || len(vs) == 0:
		return "", false
	case len(vs) == 1:
		return vs[0], true
	default:
		return strings.Join(vs, ", "), true
	}
}

func isDigits(s string) bool {
	if len(s) == 0 || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// The top-level fields the receiver reads, and envelope, which holds them as raw JSON (nil when
// absent): slices of the bytes parsed, valid until those are reused.
const (
	fieldTimestamp = iota
	fieldWebhookType
	fieldEventID
	fieldSessionID
	fieldStatus
	fieldVendorData
	fieldCount
)

type envelope [fieldCount]json.RawMessage

func fieldIndex(key []byte) int {
	switch string(key) { // no allocation: the compiler compares the bytes
	case "timestamp":
		return fieldTimestamp
	case "webhook_type":
		return fieldWebhookType
	case "event_id":
		return fieldEventID
	case "session_id":
		return fieldSessionID
	case "status":
		return fieldStatus
	case "vendor_data":
		return fieldVendorData
	}
	return -1
}

// parseEnvelope reads a JSON object's top-level fields that the receiver needs; false when the
// bytes are not one JSON object in UTF-8. json.Valid checks the whole document first, so the
// walk below only finds where each value ends: nothing nested is decoded, nothing is allocated,
// and no reflection runs (what json.Unmarshal into a map would spend most of its time on). A
// repeated key keeps its last value, as in Python. Invalid UTF-8 is refused (encoding/json
// would let it through, or replace it).
func parseEnvelope(body []byte) (envelope, bool) {
	var env envelope
	if !utf8.Valid(body) || !json.Valid(body) {
		return env, false
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return env, false // null, an array, a string or a number
	}
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return env, true
	}
	for {
		end := valueEnd(body, i) // the key, a string
		key := body[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 { // an escaped key: "timestam\u0070" is "timestamp"
			unescaped, _ := stringValue(body[i:end])
			key = []byte(unescaped)
		}
		field := fieldIndex(key)
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		end = valueEnd(body, i)
		if field >= 0 {
			env[field] = body[i:end]
		}
		i = skipSpace(body, end)
		if body[i] == '}' {
			return env, true
		}
		i = skipSpace(body, i+1) // past the comma
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd is the index just past the value starting at b[i], in a valid JSON document.
func valueEnd(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a number or a literal
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i // the end of a number or a literal
			}
		}
	}
	return i
}

// isNull reports a JSON null (or an absent value).
func isNull(raw json.RawMessage) bool {
	return raw == nil || string(raw) == "null"
}

// stringValue is the Go string of a JSON string value (from a valid document).
func stringValue(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// isIntegerToken reports a JSON number written without a fraction or an exponent.
func isIntegerToken(raw json.RawMessage) bool {
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return false
	}
	for _, c := range raw[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// pyStr is Python's str() of a body field, as Didit builds the X-Signature-Simple message:
// "" when absent, "None" for null; false for a float or a container (not reproduced here).
func pyStr(raw json.RawMessage, present bool) (string, bool) {
	switch {
	case !present:
		return "", true
	case string(raw) == "null":
		return "None", true
	case string(raw) == "true":
		return "True", true
	case string(raw) == "false":
		return "False", true
	case isIntegerToken(raw):
		return pyInt(string(raw)), true
	}
	return stringValue(raw)
}

func simpleMessage(env *envelope) ([]byte, bool) {
	var b []byte
	for i, k := range [...]int{fieldTimestamp, fieldSessionID, fieldStatus, fieldWebhookType} {
		s, ok := pyStr(env[k], env[k] != nil)
		if !ok {
			return nil, false
		}
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, s...)
	}
	return b, true
}

// Verify checks one delivery. h is the request's header map (canonical names); body holds the
// exact bytes received and is not kept.
func (v *Verifier) Verify(h http.Header, body []byte) (Verified, *Rejection) {
	t := v.now()
	headerSeconds, hasHeaderTs := int64(0), false
	if ts, ok := header(h, "X-Timestamp"); ok {
		if !isDigits(ts) {
			return Verified{}, errMalformedTimestampHeader
		}
		headerSeconds, _ = strconv.ParseInt(ts, 10, 64) // 18 digits fit in an int64
		hasHeaderTs = true
		// The header is unsigned, but a stale one is refused before any HMAC is computed.
		if r := v.freshness(headerSeconds, t); r != nil {
			return Verified{}, r
		}
	}

	raw, hasRaw := header(h, "X-Signature")
	v2, hasV2 := header(h, "X-Signature-V2")
	simple, hasSimple := "", false
	if v.acceptSimple {
		simple, hasSimple = header(h, "X-Signature-Simple")
	}
	if !hasRaw && !hasV2 && !hasSimple {
		return Verified{}, errMissingSignature
	}
	if hasRaw && !isHex64(raw) || hasV2 && !isHex64(v2) || hasSimple && !isHex64(simple) {
		return Verified{}, errMalformedSignature
	}

	// X-Signature first: one HMAC over the bytes as received, no parsing. V2 is the fallback
	// for a body that something re-encoded on the way.
	// What was signed is what gets parsed: the body for X-Signature, the canonical message for
	// V2 (a re-encoded body may spell `95` as `95.0`; the signed text says `95`).
	var scheme Scheme
	var tag string
	signed := body
	if hasRaw && v.matches(body, raw) {
		scheme, tag = SchemeRaw, raw
	}
	if scheme == "" && hasV2 {
		if msg, ok := CanonicalV2(body); ok && v.matches(msg, v2) {
			scheme, tag, signed = SchemeV2, v2, msg
		}
	}
	var env envelope
	parsed := false
	if scheme == "" && hasSimple {
		var ok bool
		if env, ok = parseEnvelope(body); !ok {
			return Verified{}, errInvalidSignature
		}
		msg, ok := simpleMessage(&env)
		if !ok || !v.matches(msg, simple) {
			return Verified{}, errInvalidSignature
		}
		// Simple signs only four fields: nothing else in the body is authenticated.
		env[fieldEventID], env[fieldVendorData] = nil, nil
		scheme, tag, parsed = SchemeSimple, simple, true
	}
	if scheme == "" {
		return Verified{}, errInvalidSignature
	}

	// Authenticated: now the body may be parsed and believed.
	if !parsed {
		var ok bool
		if env, ok = parseEnvelope(signed); !ok {
			return Verified{}, errMalformedPayload
		}
	}
	tsRaw := env[fieldTimestamp]
	if tsRaw == nil {
		return Verified{}, errMissingTimestamp
	}
	if !isIntegerToken(tsRaw) {
		return Verified{}, errInvalidTimestamp
	}
	// Beyond int64 ParseInt gives the nearest end of the range: stale or from the future.
	ts, _ := strconv.ParseInt(string(tsRaw), 10, 64)
	if isNull(env[fieldWebhookType]) {
		return Verified{}, errMissingWebhookType
	}
	var fields [fieldCount]string
	var has [fieldCount]bool
	for k := fieldWebhookType; k < fieldCount; k++ {
		if isNull(env[k]) {
			continue
		}
		s, ok := stringValue(env[k])
		if !ok {
			return Verified{}, errMalformedPayload
		}
		fields[k], has[k] = s, true
	}
	if hasHeaderTs && headerSeconds != ts {
		return Verified{}, errTimestampMismatch
	}
	if r := v.freshness(ts, t); r != nil {
		return Verified{}, r
	}

	// Didit keeps event_id across retries and resends; without one (or under Simple, which does
	// not sign it) the matching signature identifies the delivery.
	key := "s:" + tag
	if scheme != SchemeSimple && has[fieldEventID] {
		key = "e:" + fields[fieldEventID]
	}
	return Verified{
		Scheme:     scheme,
		Key:        key,
		SessionID:  fields[fieldSessionID],
		Status:     fields[fieldStatus],
		HasSession: has[fieldSessionID] && has[fieldStatus],
		Timestamp:  ts,
		VerifiedAt: t,
	}, nil
}
