"""A small Didit webhook receiver with one deliberate fault, for tests/it/verify.rs: the report card
of `webhook-bench verify` must fail it and name the case that shows the fault.

Usage: DIDIT_WEBHOOK_SECRET=... faulty.py PORT FAULT, FAULT one of:
  none              correct (status codes as the contract asks)
  no-freshness      accepts any timestamp, so old deliveries can be replayed
  parse-first       parses the body before it checks the signature
  ascii-only        verifies a re-serialisation that breaks on non-ASCII bodies
  no-size-limit     reads bodies of any size
  header-freshness  checks freshness on the unsigned X-Timestamp alone, so an old signed body
                    with a fresh header is replayed
  lenient           secure but not strict, as a careful team following Didit's docs writes it:
                    accepts uppercase hex of the correct MAC, ignores X-Timestamp (freshness on
                    the signed body), reads a numeric-string timestamp
Prints `listening on 127.0.0.1:PORT` when it accepts connections. Standard library only.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["DIDIT_WEBHOOK_SECRET"].encode()
FAULT = sys.argv[2]
LIMIT = 1 << 20
SEEN = set()


def sign(data):
    return hmac.new(SECRET, data, hashlib.sha256).hexdigest().encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if self.path == "/webhooks/didit":
            return self.reply(405, {"error": "method_not_allowed"})
        self.reply(404, {"error": "not_found"})

    def do_POST(self):
        if self.path != "/webhooks/didit":
            return self.reply(404, {"error": "not_found"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self.reply(400, {"error": "bad_content_length"})
        if length > LIMIT and FAULT != "no-size-limit":
            return self.reply(413, {"error": "payload_too_large"})
        body = self.rfile.read(length)
        if FAULT == "parse-first":
            try:
                json.loads(body)
            except ValueError:
                return self.reply(400, {"error": "malformed_payload"})
        # Header values arrive as latin-1 text; compare bytes, whatever they hold.
        given = self.headers.get("X-Signature", "").encode("latin-1", "replace")
        if FAULT == "lenient":
            # Buffer.from(sig, 'hex') and Go's hex.DecodeString read either case.
            given = given.lower()
        if FAULT == "ascii-only":
            try:
                signed = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                                    ensure_ascii=False).encode()
            except ValueError:
                signed = body
        else:
            signed = body
        if not given:
            return self.reply(401, {"error": "missing_signature"})
        if not hmac.compare_digest(given, sign(signed)):
            return self.reply(401, {"error": "invalid_signature"})
        try:
            payload = json.loads(body)
            ts = payload["timestamp"]
            if FAULT == "lenient" and isinstance(ts, str) and ts.isdigit():
                ts = int(ts)  # as JavaScript's Number() reads it
            if not isinstance(ts, int) or isinstance(ts, bool):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": "malformed_payload"})
        header_ts = self.headers.get("X-Timestamp")
        if FAULT == "header-freshness":
            try:
                fresh_ts = int(header_ts) if header_ts is not None else ts
            except ValueError:
                return self.reply(400, {"error": "malformed_timestamp_header"})
            if abs(time.time() - fresh_ts) > 300:
                return self.reply(401, {"error": "stale"})
        else:
            if FAULT != "lenient" and header_ts is not None and header_ts != str(ts):
                return self.reply(401, {"error": "timestamp_mismatch"})
            if FAULT != "no-freshness" and abs(time.time() - ts) > 300:
                return self.reply(401, {"error": "stale"})
        key = payload.get("event_id") or given
        if key in SEEN:
            return self.reply(200, {"status": "duplicate"})
        SEEN.add(key)
        self.reply(200, {"status": "accepted"})


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
