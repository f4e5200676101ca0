"""Verifies Didit webhook deliveries: raw body bytes and headers in, a verified event or a
`Rejection` (HTTP status and reason) out. No I/O, so it can be tested on the known-answer vectors.

Order, as the Rust references do it: header syntax and X-Timestamp freshness first (no
cryptography), then the signatures in constant time, and only then the body is trusted: its
signed `timestamp` must be fresh and equal the unsigned X-Timestamp header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TOLERANCE_SECS = 300

_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,18}")
_FIELDS = ("event_id", "session_id", "status", "webhook_type", "vendor_data")


class Rejection(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    event: dict[str, Any]
    scheme: str  # "raw", "v2" or "simple"
    key: str  # the de-duplication key
    verified_at: int


def shorten_floats(value: Any) -> Any:
    """Didit's own helper: a float with an integral value becomes that integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: shorten_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten_floats(v) for v in value]
    return value


def canonical_v2(obj: Any) -> bytes:
    """The X-Signature-V2 message, exactly as Didit's server builds it."""
    text = json.dumps(
        shorten_floats(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return text.encode("utf-8")


def simple_message(obj: Mapping[str, Any]) -> bytes:
    """The X-Signature-Simple message: Python str() of four body fields, '' when absent."""
    parts = (obj.get(k, "") for k in ("timestamp", "session_id", "status", "webhook_type"))
    return ":".join(str(p) for p in parts).encode("utf-8")


def _parse_object(body: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, >4300-digit ints
        return None
    return obj if isinstance(obj, dict) else None


class Verifier:
    def __init__(
        self,
        secret: str,
        *,
        tolerance_secs: int = TOLERANCE_SECS,
        accept_simple: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a secret is required")
        # The key is the secret string's UTF-8 bytes, used verbatim (not base64-decoded).
        self._key = secret.encode("utf-8")
        self._tolerance = tolerance_secs
        self._accept_simple = accept_simple
        self._clock = clock

    def _matches(self, message: bytes, signature: str) -> bool:
        expected = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def _fresh(self, ts: int, now: int) -> None:
        if now - ts > self._tolerance:
            raise Rejection(401, "stale")
        if ts - now > self._tolerance:
            raise Rejection(401, "from_future")

    def verify(self, headers: Mapping[str, str], body: bytes) -> Verified:
        """`headers` is looked up by lowercase name (Starlette's Headers are case-insensitive)."""
        now = int(self._clock())
        header_ts = headers.get("x-timestamp")
        header_seconds = None
        if header_ts is not None:
            if not _DIGITS.fullmatch(header_ts):
                raise Rejection(400, "malformed_timestamp_header")
            header_seconds = int(header_ts)
            # The header is unsigned, but a stale one is refused before any HMAC is computed.
            self._fresh(header_seconds, now)

        raw = headers.get("x-signature")
        v2 = headers.get("x-signature-v2")
        simple = headers.get("x-signature-simple") if self._accept_simple else None
        offered = [s for s in (raw, v2, simple) if s is not None]
        if not offered:
            raise Rejection(401, "missing_signature")
        if not all(_HEX64.fullmatch(s) for s in offered):
            raise Rejection(401, "malformed_signature")

        # X-Signature first: one HMAC over the bytes as received, no parsing. V2 is the fallback
        # for a body that something re-encoded on the way.
        obj: dict[str, Any] | None = None
        scheme = tag = None
        if raw is not None and self._matches(body, raw):
            scheme, tag = "raw", raw
        if scheme is None and v2 is not None:
            obj = _parse_object(body)
            if obj is not None:
                try:
                    message = canonical_v2(obj)
                except (UnicodeEncodeError, RecursionError):  # a lone surrogate: Didit can't sign it
                    message = None
                if message is not None and self._matches(message, v2):
                    scheme, tag = "v2", v2
        if scheme is None and simple is not None:
            if obj is None:
                obj = _parse_object(body)
            if obj is None or not self._matches(simple_message(obj), simple):
                raise Rejection(401, "invalid_signature")
            # Simple signs only four fields: nothing else in the body is authenticated.
            obj = {k: obj[k] for k in ("timestamp", "session_id", "status", "webhook_type") if k in obj}
            scheme, tag = "simple", simple
        if scheme is None or tag is None:
            raise Rejection(401, "invalid_signature")

        # Authenticated: now the body may be parsed and believed.
        if obj is None:
            obj = _parse_object(body)
            if obj is None:
                raise Rejection(400, "malformed_payload")
        if "timestamp" not in obj:
            raise Rejection(400, "missing_timestamp")
        ts = obj["timestamp"]
        if type(ts) is not int:  # not a float, not a bool
            raise Rejection(400, "invalid_timestamp")
        if obj.get("webhook_type") is None:
            raise Rejection(400, "missing_webhook_type")
        for k in _FIELDS:
            v = obj.get(k)
            if v is not None and not isinstance(v, str):
                raise Rejection(400, "malformed_payload")
        if header_seconds is not None and header_seconds != ts:
            raise Rejection(401, "timestamp_mismatch")
        self._fresh(ts, now)

        # Didit keeps event_id across retries and resends; without one (or under Simple, which
        # does not sign it) the matching signature identifies the delivery.
        event_id = obj.get("event_id")
        key = f"e:{event_id}" if scheme != "simple" and isinstance(event_id, str) else f"s:{tag}"
        return Verified(event=obj, scheme=scheme, key=key, verified_at=now)


class Store:
    """In-memory state of one process: the de-duplication window and the latest status per
    session, both bounded. `OrderedDict`s, because dropping the oldest entry again and again is
    O(1) there; a plain dict's first entry is found by walking over the deleted ones."""

    def __init__(self, window_secs: int, max_entries: int = 100_000) -> None:
        self.window_secs = window_secs
        self.max_entries = max_entries
        self.seen: OrderedDict[str, int] = OrderedDict()  # key -> first seen, oldest first
        self.sessions: OrderedDict[str, tuple[int, str]] = OrderedDict()  # first seen first

    def accept(self, v: Verified) -> bool:
        """Records a verified event; returns False when its key was seen within the window."""
        now = v.verified_at
        at = self.seen.get(v.key)
        if at is not None and now - at <= self.window_secs:
            return False
        self.seen.pop(v.key, None)
        self._expire(now)
        self.seen[v.key] = now

        sid, status, ts = v.event.get("session_id"), v.event.get("status"), v.event["timestamp"]
        if isinstance(sid, str) and isinstance(status, str):
            prev = self.sessions.get(sid)
            # Didit does not promise ordering: an older delivery does not roll a session back.
            if prev is None:
                self.sessions[sid] = (ts, status)
                if len(self.sessions) > self.max_entries:
                    self.sessions.popitem(last=False)
            elif prev[0] <= ts:
                self.sessions[sid] = (ts, status)
        return True

    def _expire(self, now: int) -> None:
        # Entries are inserted in time order, so expired ones are at the front.
        seen = self.seen
        while seen:
            k = next(iter(seen))
            if now - seen[k] <= self.window_secs and len(seen) < self.max_entries:
                break
            del seen[k]
