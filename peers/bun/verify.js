// Verifies Didit webhook deliveries: raw body bytes and headers in, a verified event or a
// rejection (HTTP status and reason) out. No I/O, so `bun test` can drive it with the vectors.
//
// Order, as the Rust references do it: header syntax and X-Timestamp freshness first (no
// cryptography), then the signatures in constant time, and only then the body is trusted: its
// signed `timestamp` must be fresh and equal the unsigned X-Timestamp header.

import { createHmac, timingSafeEqual } from 'node:crypto';

export const TOLERANCE_SECS = 300;

const HEX64 = /^[0-9a-f]{64}$/;
const DIGITS = /^[0-9]{1,18}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function reject(status, error) {
  return { ok: false, status, error };
}

// Didit's `shorten_floats`: a float with an integral value is written as an integer. In
// JavaScript a parsed `100.0` is already the number 100, so this is the identity; it is kept so
// the recipe reads like Didit's.
function shortenFloats(v) {
  if (Array.isArray(v)) return v.map(shortenFloats);
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = shortenFloats(x);
    return out;
  }
  return v;
}

// Didit's JavaScript recipe for X-Signature-V2: keys sorted, compact, Unicode unescaped. It
// matches Python's `json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
// for typical payloads, not for all of them (see README.md, "Differences from the Rust
// references").
export function canonicalV2(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalV2).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalV2(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

// Python's str() of a body field, as Didit builds the X-Signature-Simple message.
function pyStr(v) {
  if (v === undefined) return '';
  if (v === null) return 'None';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Number.isSafeInteger(v)) return String(v);
  return null; // a float or a container: Python's text for it is not reproduced here
}

export function simpleMessage(obj) {
  const parts = ['timestamp', 'session_id', 'status', 'webhook_type'].map((k) => pyStr(obj[k]));
  return parts.includes(null) ? null : parts.join(':');
}

function parseObject(text) {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

function decode(bytes) {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

export function createVerifier({
  secret,
  toleranceSecs = TOLERANCE_SECS,
  acceptSimple = false,
  now = () => Math.floor(Date.now() / 1000),
}) {
  if (!secret) throw new Error('a secret is required');

  const mac = (data) => createHmac('sha256', secret).update(data).digest();
  const matches = (data, hex) => timingSafeEqual(mac(data), Buffer.from(hex, 'hex'));
  const freshness = (ts, t) => {
    if (t - ts > toleranceSecs) return reject(401, 'stale');
    if (ts - t > toleranceSecs) return reject(401, 'from_future');
    return null;
  };

  // headers: the request's Headers (a repeated header reads as its values joined by ", ").
  // body: a Uint8Array of the exact bytes received.
  return function verify(headers, body) {
    const t = now();
    const headerTs = headers.get('x-timestamp');
    let headerSeconds = null;
    if (headerTs !== null) {
      if (!DIGITS.test(headerTs)) return reject(400, 'malformed_timestamp_header');
      headerSeconds = Number(headerTs);
      // The header is unsigned, but a stale one is refused before any HMAC is computed.
      const stale = freshness(headerSeconds, t);
      if (stale) return stale;
    }

    const raw = headers.get('x-signature');
    const v2 = headers.get('x-signature-v2');
    const simple = acceptSimple ? headers.get('x-signature-simple') : null;
    if (raw === null && v2 === null && simple === null) return reject(401, 'missing_signature');
    if (
      (raw !== null && !HEX64.test(raw)) ||
      (v2 !== null && !HEX64.test(v2)) ||
      (simple !== null && !HEX64.test(simple))
    ) {
      return reject(401, 'malformed_signature');
    }

    // X-Signature first: one HMAC over the bytes as received, no parsing. V2 is the fallback
    // for a body that something re-encoded on the way.
    let text = null;
    let obj = null;
    let scheme = null;
    let tag = null;
    if (raw !== null && matches(body, raw)) {
      scheme = 'raw';
      tag = raw;
    }
    if (scheme === null && v2 !== null) {
      text = decode(body);
      obj = text === null ? null : parseObject(text);
      if (obj !== null && matches(canonicalV2(shortenFloats(obj)), v2)) {
        scheme = 'v2';
        tag = v2;
      }
    }
    if (scheme === null && simple !== null) {
      if (text === null) text = decode(body);
      if (obj === null && text !== null) obj = parseObject(text);
      const msg = obj === null ? null : simpleMessage(obj);
      if (msg === null || !matches(msg, simple)) return reject(401, 'invalid_signature');
      // Simple signs only four fields: nothing else in the body is authenticated.
      obj = {
        timestamp: obj.timestamp,
        session_id: obj.session_id,
        status: obj.status,
        webhook_type: obj.webhook_type,
      };
      scheme = 'simple';
      tag = simple;
    }
    if (scheme === null) return reject(401, 'invalid_signature');

    // Authenticated: now the body may be parsed and believed.
    if (obj === null) {
      text = decode(body);
      obj = text === null ? null : parseObject(text);
      if (obj === null) return reject(400, 'malformed_payload');
    }
    if (!('timestamp' in obj)) return reject(400, 'missing_timestamp');
    const ts = obj.timestamp;
    if (!Number.isSafeInteger(ts)) return reject(400, 'invalid_timestamp');
    if (obj.webhook_type === undefined || obj.webhook_type === null) {
      return reject(400, 'missing_webhook_type');
    }
    for (const k of ['event_id', 'session_id', 'status', 'webhook_type', 'vendor_data']) {
      const x = obj[k];
      if (x !== undefined && x !== null && typeof x !== 'string') {
        return reject(400, 'malformed_payload');
      }
    }
    if (headerSeconds !== null && headerSeconds !== ts) return reject(401, 'timestamp_mismatch');
    const stale = freshness(ts, t);
    if (stale) return stale;

    // Didit keeps event_id across retries and resends; without one (or under Simple, which does
    // not sign it) the matching signature identifies the delivery.
    const key =
      scheme !== 'simple' && typeof obj.event_id === 'string' ? `e:${obj.event_id}` : `s:${tag}`;
    return { ok: true, event: obj, scheme, key, verifiedAt: t };
  };
}
