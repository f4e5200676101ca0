// The known-answer vectors of crates/didit-fixtures/fixtures/didit-v3-signature-vectors.json
// through verify.go, with the clock set to each vector's timestamp: X-Signature must verify
// every one, and so must V2 alone (the X-Signature header left out), its message equal to the
// vector's canonical form byte for byte.

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

type vector struct {
	ID            string
	Secret        string
	Body          string            `json:"body"`
	V2Canonical   string            `json:"v2_canonical"`
	SimpleMessage string            `json:"simple_message"`
	Headers       map[string]string `json:"headers"`
	CaseSecret    string            `json:"secret"`
}

func vectors(t testing.TB) []vector {
	t.Helper()
	shared := os.Getenv("DIDIT_SHARED_DIR")
	if shared == "" {
		shared = filepath.Join("..", "..", "crates", "didit-fixtures")
	}
	data, err := os.ReadFile(filepath.Join(shared, "fixtures", "didit-v3-signature-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []vector
	for _, set := range []string{"official_wp_plugin", "edge_cases"} {
		var s struct {
			Secret string            `json:"secret"`
			Cases  map[string]vector `json:"cases"`
		}
		if err := json.Unmarshal(f[set], &s); err != nil {
			t.Fatal(err)
		}
		for name, c := range s.Cases {
			c.ID, c.Secret = set+"/"+name, s.Secret
			if c.CaseSecret != "" {
				c.Secret = c.CaseSecret
			}
			out = append(out, c)
		}
	}
	var sample vector
	if err := json.Unmarshal(f["sample_full"], &sample); err != nil {
		t.Fatal(err)
	}
	sample.ID, sample.Secret = "sample_full", sample.CaseSecret
	out = append(out, sample)
	if len(out) != 17 {
		t.Fatalf("%d vectors, expected 17", len(out))
	}
	return out
}

func headersOf(c vector, keep ...string) http.Header {
	h := http.Header{}
	for k, v := range c.Headers {
		for _, want := range keep {
			if http.CanonicalHeaderKey(k) == want {
				h[want] = []string{v}
			}
		}
	}
	return h
}

func verifierAt(t testing.TB, secret string, simple bool, now int64) *Verifier {
	t.Helper()
	v, err := NewVerifier(secret, simple, func() int64 { return now })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func timestampOf(t testing.TB, c vector) int64 {
	t.Helper()
	ts, err := strconv.ParseInt(c.Headers["X-Timestamp"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestVectors(t *testing.T) {
	for _, c := range vectors(t) {
		c := c
		ts := timestampOf(t, c)
		body := []byte(c.Body)
		t.Run(c.ID+"/X-Signature over the raw body", func(t *testing.T) {
			v, rej := verifierAt(t, c.Secret, false, ts).Verify(headersOf(c, "X-Signature", "X-Timestamp"), body)
			if rej != nil || v.Scheme != SchemeRaw {
				t.Fatalf("got %+v %+v", v, rej)
			}
		})
		t.Run(c.ID+"/the V2 canonical form", func(t *testing.T) {
			msg, ok := CanonicalV2(body)
			if !ok || string(msg) != c.V2Canonical {
				t.Fatalf("got\n%s\nexpected\n%s", msg, c.V2Canonical)
			}
		})
		t.Run(c.ID+"/X-Signature-V2 alone", func(t *testing.T) {
			v, rej := verifierAt(t, c.Secret, false, ts).Verify(headersOf(c, "X-Signature-V2", "X-Timestamp"), body)
			if rej != nil || v.Scheme != SchemeV2 {
				t.Fatalf("got %+v %+v", v, rej)
			}
		})
		t.Run(c.ID+"/X-Signature-Simple only when enabled", func(t *testing.T) {
			h := headersOf(c, "X-Signature-Simple", "X-Timestamp")
			if _, rej := verifierAt(t, c.Secret, false, ts).Verify(h, body); rej != errMissingSignature {
				t.Fatalf("Simple off: got %+v", rej)
			}
			v, rej := verifierAt(t, c.Secret, true, ts).Verify(h, body)
			if rej != nil || v.Scheme != SchemeSimple {
				t.Fatalf("Simple on: got %+v %+v", v, rej)
			}
			env, _ := parseEnvelope(body)
			if msg, ok := simpleMessage(&env); !ok || string(msg) != c.SimpleMessage {
				t.Fatalf("Simple message %q, expected %q", msg, c.SimpleMessage)
			}
		})
		t.Run(c.ID+"/a tampered body fails", func(t *testing.T) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body, &obj); err != nil {
				t.Fatal(err)
			}
			obj["tampered"] = json.RawMessage("true")
			bad, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			h := headersOf(c, "X-Signature", "X-Signature-V2", "X-Timestamp")
			if _, rej := verifierAt(t, c.Secret, false, ts).Verify(h, bad); rej != errInvalidSignature {
				t.Fatalf("got %+v", rej)
			}
		})
	}
}

func TestFreshness(t *testing.T) {
	c := vectors(t)[0]
	ts := timestampOf(t, c)
	h := headersOf(c, "X-Signature", "X-Timestamp")
	if _, rej := verifierAt(t, c.Secret, false, ts+600).Verify(h, []byte(c.Body)); rej != errStale {
		t.Fatalf("10 minutes later: %+v", rej)
	}
	if _, rej := verifierAt(t, c.Secret, false, ts-600).Verify(h, []byte(c.Body)); rej != errFromFuture {
		t.Fatalf("10 minutes earlier: %+v", rej)
	}
}

func TestPythonNumbers(t *testing.T) {
	for token, want := range map[string]string{
		"-0": "0", "100.0": "100", "-0.0": "0", "1e16": "10000000000000000", "95.0": "95",
		"1E-5": "1e-05", "0.0001": "0.0001", "1.5e-7": "1.5e-07", "0.30000000000000004": "0.30000000000000004",
		"1.1812083616449413e+38": "118120836164494129544568202238038638592", "5e-324": "5e-324",
		"123456789012345.67": "123456789012345.67", "1e400": "Infinity", "-1e400": "-Infinity",
		"9007199254740993": "9007199254740993", "-73.986": "-73.986",
	} {
		if got := string(appendPyNumber(nil, token)); got != want {
			t.Errorf("%s: got %s, expected %s", token, got, want)
		}
	}
}

// parseEnvelope's walk finds what json.Unmarshal into a map[string]json.RawMessage finds.
func TestParseEnvelope(t *testing.T) {
	docs := []string{
		`{}`, ` { } `, `{"timestamp":1}`, `{"a":-1.5e+3,"timestamp":true,"status":null,"d":false}`,
		"{ \"event_id\" :\t[1, {\"x\": \"}]\\\"\"}, []] ,\n\"status\":{\"c\":{}} }",
		`{"timestam\u0070":1,"status":"v\\"}`, `{"timestamp":1,"timestamp":2}`,
		`{"a":"x","b":[{"c":[[]]}],"vendor_data":0}`,
	}
	for _, c := range vectors(t) {
		docs = append(docs, c.Body, c.V2Canonical)
	}
	names := [fieldCount]string{"timestamp", "webhook_type", "event_id", "session_id", "status", "vendor_data"}
	for _, doc := range docs {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := parseEnvelope([]byte(doc))
		if !ok {
			t.Fatalf("%s: not parsed", doc)
		}
		for k, name := range names {
			if string(got[k]) != string(want[name]) || (got[k] == nil) != (want[name] == nil) {
				t.Fatalf("%s: %q is %s, expected %s", doc, name, got[k], want[name])
			}
		}
	}
	for _, bad := range []string{``, ` `, `null`, `[]`, `"s"`, `1`, `{"a":1`, `{"a":1}x`, "{\"a\":\"\xff\"}"} {
		if _, ok := parseEnvelope([]byte(bad)); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

// The hot path: a fresh delivery verified by X-Signature, then its envelope read.
// `go test -bench . -benchmem`.
func BenchmarkVerifyRaw(b *testing.B) {
	for _, c := range vectors(b) {
		if c.ID != "official_wp_plugin/basic_approved" && c.ID != "sample_full" {
			continue
		}
		b.Run(c.ID, func(b *testing.B) {
			v := verifierAt(b, c.Secret, false, timestampOf(b, c))
			h := headersOf(c, "X-Signature", "X-Timestamp")
			body := []byte(c.Body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, rej := v.Verify(h, body); rej != nil {
					b.Fatal(rej.Reason)
				}
			}
		})
	}
}
