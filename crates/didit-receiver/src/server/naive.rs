//! The naive peer: what most tutorials produce, made correct.
//!
//! It answers exactly like the other variants for every delivery Didit can send (the conformance
//! suite checks this), but does the work the common way: `hmac` + `sha2` with the digest
//! hex-encoded into a `String` and compared (in constant time) with the header, the whole body
//! parsed into a `serde_json::Value` tree first, V2 by a full parse and re-serialisation (borrowing this
//! project's tree canonicaliser, since no tutorial gets Python's float and escaping rules right), and
//! de-duplication and session state in `Mutex<HashMap>`s updated inline. It is the "what a user
//! writes today" baseline of the published results.
//!
//! One known difference, on purpose: `serde_json::Value` cannot hold an integer beyond f64 range,
//! so the naive peer answers 400 to a delivery carrying `f64::MAX` written out as its 309-digit
//! integer (Didit's `shorten_floats` produces exactly that); the conformance data records it. It
//! also takes a repeated key last-wins where the others refuse it (Didit never repeats keys).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use didit_webhook::canon::{self, Escaping};
use didit_webhook::{Rejection, Secret, SignaturePolicy, VerifyConfig};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::app::{Limits, NULL_PATH, Route, WEBHOOK_PATH, early_reply, route};
use crate::metrics::{Metrics, Outcome};
use crate::wire::axum::reply_response;
use crate::wire::http1::read_body;

#[derive(Debug)]
pub(crate) struct Naive {
    secret: Vec<u8>,
    cfg: VerifyConfig,
    limits: Limits,
    null_enabled: bool,
    seen: Mutex<HashMap<String, i64>>,
    sessions: Mutex<HashMap<String, (i64, String)>>,
    metrics: Metrics,
}

impl Naive {
    pub(crate) fn new(
        secret: &Secret,
        cfg: VerifyConfig,
        limits: Limits,
        null_enabled: bool,
    ) -> Self {
        Naive {
            secret: secret.expose().to_vec(),
            cfg,
            limits,
            null_enabled,
            seen: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            metrics: Metrics::default(),
        }
    }

    fn hmac_hex(&self, msg: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(msg);
        hex::encode(mac.finalize().into_bytes())
    }

    fn matches(&self, msg: &[u8], header: &str) -> bool {
        self.hmac_hex(msg)
            .as_bytes()
            .ct_eq(header.as_bytes())
            .into()
    }

    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<Outcome, Rejection> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let tolerance = self.cfg.tolerance_secs as i64;
        let fresh = |ts: i64| {
            // Saturating: a signed body may carry any i64, i64::MIN included.
            if now.saturating_sub(ts) > tolerance {
                Err(Rejection::Stale)
            } else if ts.saturating_sub(now) > tolerance {
                Err(Rejection::FromFuture)
            } else {
                Ok(())
            }
        };
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };

        let header_ts = match header("x-timestamp") {
            Some(t) if !t.is_empty() && t.len() <= 18 && t.chars().all(|c| c.is_ascii_digit()) => {
                Some(
                    t.parse::<i64>()
                        .map_err(|_| Rejection::MalformedTimestampHeader)?,
                )
            }
            Some(_) => return Err(Rejection::MalformedTimestampHeader),
            None => None,
        };
        if let Some(ts) = header_ts {
            fresh(ts)?;
        }
        let well_formed = |s: &String| {
            s.len() == 64
                && s.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        };
        let policy = self.cfg.policy;
        let raw = header("x-signature").filter(|_| policy != SignaturePolicy::V2);
        let v2 = header("x-signature-v2").filter(|_| policy != SignaturePolicy::Raw);
        let simple = header("x-signature-simple").filter(|_| self.cfg.accept_simple);
        for s in [&raw, &v2, &simple].into_iter().flatten() {
            if !well_formed(s) {
                return Err(Rejection::MalformedSignature);
            }
        }
        if raw.is_none() && v2.is_none() && simple.is_none() {
            return Err(Rejection::MissingSignature);
        }

        // The tutorial order: the whole body into a `Value` first, then the signature. (The
        // answer still depends on the signature first: an unparsable body with a bad signature
        // is a 401, as everywhere else.)
        let parsed_body: Option<serde_json::Map<String, Value>> = serde_json::from_slice(body).ok();
        let mut key = None;
        let mut canonical = Vec::new();
        let mut signed: &[u8] = body;
        if let Some(sig) = &raw
            && self.matches(body, sig)
        {
            key = Some(sig.clone());
        }
        if key.is_none()
            && let Some(sig) = &v2
            && canon::canonicalize(body, Escaping::Unicode, &mut canonical).is_ok()
            && self.matches(&canonical, sig)
        {
            key = Some(sig.clone());
            signed = &canonical;
        }
        // Parse what was signed: the body, or the canonical text when only V2 matched.
        let parsed: Option<serde_json::Map<String, Value>> = if std::ptr::eq(signed, body) {
            parsed_body
        } else {
            serde_json::from_slice(signed).ok()
        };
        let mut only_simple = false;
        if key.is_none() {
            let sig = simple.ok_or(Rejection::InvalidSignature)?;
            let v = parsed.as_ref().ok_or(Rejection::InvalidSignature)?;
            let part = |k: &str| match v.get(k) {
                None => Some(String::new()),
                Some(Value::Null) => Some("None".to_owned()),
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) if k == "timestamp" && n.is_i64() => Some(n.to_string()),
                Some(_) => None,
            };
            let parts: Option<Vec<String>> = ["timestamp", "session_id", "status", "webhook_type"]
                .iter()
                .map(|k| part(k))
                .collect();
            let msg = parts.ok_or(Rejection::InvalidSignature)?.join(":");
            if !self.matches(msg.as_bytes(), &sig) {
                return Err(Rejection::InvalidSignature);
            }
            key = Some(sig);
            only_simple = true;
        }

        let v = parsed.ok_or(Rejection::MalformedPayload)?;
        let ts = match v.get("timestamp") {
            None => return Err(Rejection::MissingTimestamp),
            Some(t) => t.as_i64().ok_or(Rejection::InvalidTimestamp)?,
        };
        if v.get("webhook_type").is_none_or(Value::is_null) {
            return Err(Rejection::MissingWebhookType);
        }
        for k in [
            "event_id",
            "session_id",
            "status",
            "webhook_type",
            "vendor_data",
        ] {
            if let Some(x) = v.get(k)
                && !x.is_string()
                && !x.is_null()
            {
                return Err(Rejection::MalformedPayload);
            }
        }
        if header_ts.is_some_and(|h| h != ts) {
            return Err(Rejection::TimestampMismatch);
        }
        fresh(ts)?;

        let dedup_key = match v.get("event_id").and_then(Value::as_str) {
            Some(id) if !only_simple => id.to_owned(),
            _ => key.unwrap_or_default(),
        };
        let window = tolerance * 2;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.get(&dedup_key).is_some_and(|at| now - at <= window) {
                return Ok(Outcome::Duplicate);
            }
            // Expire old entries now and then (every insert would make this quadratic).
            if seen.len() % 1024 == 1023 {
                seen.retain(|_, at| now - *at <= window);
            }
            seen.insert(dedup_key, now);
        }
        if let (Some(sid), Some(status)) = (
            v.get("session_id").and_then(Value::as_str),
            v.get("status").and_then(Value::as_str),
        ) {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let newer = sessions.get(sid).is_none_or(|(at, _)| *at <= ts);
            if newer {
                sessions.insert(sid.to_owned(), (ts, status.to_owned()));
            }
        }
        Ok(Outcome::Accepted)
    }
}

async fn webhook(State(st): State<Arc<Naive>>, req: Request) -> Response {
    let started = Instant::now();
    let _in_flight = st.metrics.start();
    let (parts, body) = req.into_parts();
    let outcome = match read_body(
        &parts.headers,
        body,
        st.limits.max_body,
        st.limits.body_timeout,
    )
    .await
    {
        Ok(bytes) => {
            let checked = st.check(&parts.headers, &bytes);
            if checked.is_ok() {
                crate::app::burn(st.limits.extra_work);
            }
            checked.unwrap_or_else(Outcome::Rejected)
        }
        Err(o) => o,
    };
    st.metrics.record(outcome, started.elapsed());
    reply_response(early_reply(outcome))
}

async fn null(State(st): State<Arc<Naive>>, req: Request) -> Response {
    if !st.null_enabled {
        return reply_response(crate::app::simple_reply(Route::NotFound, &st.metrics, 0));
    }
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let outcome = match read_body(
        &parts.headers,
        body,
        st.limits.max_body,
        st.limits.body_timeout,
    )
    .await
    {
        Ok(_) => Outcome::Null,
        Err(o) => o,
    };
    st.metrics.record(outcome, started.elapsed());
    reply_response(early_reply(outcome))
}

async fn other(State(st): State<Arc<Naive>>, method: Method, uri: Uri) -> Response {
    let r = route(method.as_str(), uri.path(), st.null_enabled);
    reply_response(crate::app::simple_reply(r, &st.metrics, 0))
}

pub(crate) fn router(st: Arc<Naive>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(webhook).fallback(other))
        .route(NULL_PATH, post(null).fallback(other))
        .fallback(other)
        .with_state(st)
}

/// Runs the naive peer until SIGTERM.
pub(crate) fn run(
    st: Arc<Naive>,
    listen: std::net::SocketAddr,
    workers: usize,
) -> anyhow::Result<()> {
    let limits = st.limits;
    let service = hyper_util::service::TowerToHyperService::new(router(st));
    crate::wire::http1::run(listen, workers, limits, service)
}
