//! The generator: draws a class and a payload kind by the scenario's shares, renders and signs the
//! delivery through the templates, and labels it with the answer a correct receiver gives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use didit_webhook::{
    CONTENT_TYPE, HEADER_SIGNATURE, HEADER_SIGNATURE_SIMPLE, HEADER_SIGNATURE_V2, HEADER_TIMESTAMP,
    Reencoding, Secret, USER_AGENT, reencode,
};
use hyper::http::{HeaderName, HeaderValue, header};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::catalogue::Templates;
use crate::labels::{Class, Expect, Label, PayloadKind};
use crate::scenario::{ReceiverProfile, Scenario};
use crate::template::{Fill, TemplateSigner};

/// The identity of a good delivery, kept to replay or retry it after it is acknowledged.
#[derive(Clone, Debug)]
pub struct Origin {
    pub template: usize,
    pub session_id: Arc<str>,
    pub event_id: Arc<str>,
    pub vendor_data: Arc<str>,
    pub timestamp: i64,
}

/// One request: body, headers, label.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub label: Label,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub origin: Option<Origin>,
}

impl Delivery {
    /// The `event_id` the receiver keys on, when the delivery carries one.
    pub fn event_id(&self) -> Option<&str> {
        self.origin.as_ref().map(|o| &*o.event_id)
    }

    /// The header value of `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }
}

/// Recently acknowledged deliveries, the source of replays and retries. Shared by connections.
#[derive(Debug, Default)]
pub struct Acked {
    ring: VecDeque<Delivery>,
}

const ACKED_KEPT: usize = 4096;

impl Acked {
    pub fn shared() -> Arc<Mutex<Acked>> {
        Arc::new(Mutex::new(Acked::default()))
    }

    /// Remembers a delivery that got 200 `accepted`.
    pub fn push(&mut self, d: &Delivery) {
        if d.origin.is_none() {
            return;
        }
        if self.ring.len() == ACKED_KEPT {
            self.ring.pop_front();
        }
        self.ring.push_back(d.clone());
    }

    /// An acknowledged delivery whose timestamp is still at least `margin` inside the window.
    fn pick(&mut self, now: i64, max_age: i64, r: usize) -> Option<Delivery> {
        while let Some(front) = self.ring.front() {
            match &front.origin {
                Some(o) if now - o.timestamp <= max_age => break,
                _ => {
                    self.ring.pop_front();
                }
            }
        }
        if self.ring.is_empty() {
            return None;
        }
        let i = r % self.ring.len();
        self.ring.get(i).cloned()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// Cumulative weights for weighted choice.
#[derive(Clone, Debug)]
struct Choice<T> {
    items: Vec<(f64, T)>,
    total: f64,
}

impl<T: Copy> Choice<T> {
    fn new(weights: impl IntoIterator<Item = (f64, T)>) -> Self {
        let mut total = 0.0;
        let items = weights
            .into_iter()
            .filter(|(w, _)| *w > 0.0)
            .map(|(w, t)| {
                total += w;
                (total, t)
            })
            .collect();
        Choice { items, total }
    }

    fn pick(&self, r: f64) -> Option<T> {
        let x = r * self.total;
        self.items
            .iter()
            .find(|(c, _)| x < *c)
            .or(self.items.last())
            .map(|(_, t)| *t)
    }
}

/// Produces deliveries for one connection (or one goose user): not shared, no locking except
/// the acknowledged-deliveries store.
#[derive(Debug)]
pub struct Generator {
    templates: Arc<Templates>,
    profile: ReceiverProfile,
    kinds: Choice<PayloadKind>,
    /// Class by share; `Valid` takes what the bad shares leave.
    classes: Choice<Class>,
    signer: TemplateSigner,
    /// Renders off the current second (stale, future) without evicting the prefix cache.
    offtime: TemplateSigner,
    rng: SmallRng,
    acked: Arc<Mutex<Acked>>,
    oversize: Bytes,
    oversize_sig: String,
    seq: u64,
    calibrate: bool,
    /// The thread this model feeds, written into the first byte of every id it draws, so that
    /// the threads of one run never draw the same `event_id` or `session_id`.
    stream: Option<u8>,
}

impl Generator {
    pub fn new(
        templates: Arc<Templates>,
        scenario: &Scenario,
        secret: &Secret,
        acked: Arc<Mutex<Acked>>,
        seed: u64,
    ) -> Generator {
        let kinds = Choice::new(
            PayloadKind::ALL
                .iter()
                .map(|k| (scenario.payloads.get(*k), *k)),
        );
        let bad_total = scenario.bad.total().min(1.0);
        let classes = Choice::new(Class::ALL.iter().map(|c| {
            let w = if *c == Class::Valid {
                1.0 - bad_total
            } else {
                scenario.bad.get(*c)
            };
            (w, *c)
        }));
        let n = templates.len();
        // A JSON document one byte over the limit: the receiver must refuse it by its length.
        let max = scenario.receiver.max_body;
        let mut big = Vec::with_capacity(max + 1);
        big.extend_from_slice(b"{\"padding\":\"");
        big.resize(max - 1, b'x');
        big.extend_from_slice(b"\"}");
        let signer = TemplateSigner::new(secret, n);
        let oversize_sig = signer.sign_bytes(&big).as_str().to_owned();
        Generator {
            templates,
            profile: scenario.receiver,
            kinds,
            classes,
            signer,
            offtime: TemplateSigner::new(secret, n),
            rng: SmallRng::seed_from_u64(seed),
            acked,
            oversize: Bytes::from(big),
            oversize_sig,
            seq: 0,
            calibrate: false,
            stream: None,
        }
    }

    /// Marks every id this model draws with `stream` (one thread of a multi-threaded run).
    pub fn stream(mut self, stream: u8) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Calibration: every delivery is labelled 200 `ok`, the answer of `/webhooks/null`.
    pub fn calibrate(mut self, on: bool) -> Self {
        self.calibrate = on;
        self
    }

    /// Remembers an acknowledged (200 `accepted`) delivery as a source of replays and retries.
    pub fn remember(&self, d: &Delivery) {
        if let Ok(mut a) = self.acked.lock() {
            a.push(d);
        }
    }

    /// The templates this generator draws from.
    pub fn templates(&self) -> &Arc<Templates> {
        &self.templates
    }

    fn uuid(&mut self) -> Arc<str> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut x: u128 = self.rng.random();
        if let Some(stream) = self.stream {
            x = (x & !(0xff << 120)) | (u128::from(stream) << 120);
        }
        // RFC 9562 version 4, variant 10.
        let x = (x & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
        let mut out = [0u8; 36];
        let mut nibble = 32;
        for (i, b) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *b = b'-';
            } else {
                nibble -= 1;
                *b = HEX[((x >> (4 * nibble)) & 0xf) as usize];
            }
        }
        Arc::from(std::str::from_utf8(&out).unwrap_or_default())
    }

    /// The next delivery at Unix time `now`, by the scenario's class shares and payload weights.
    pub fn next(&mut self, now: i64) -> Delivery {
        let r: f64 = self.rng.random();
        let class = self.classes.pick(r).unwrap_or(Class::Valid);
        self.make(class, now)
    }

    /// A delivery of `class` (falls back to `Valid` for replays and retries while nothing has been
    /// acknowledged yet).
    pub fn make(&mut self, class: Class, now: i64) -> Delivery {
        let kind = self
            .kinds
            .pick(self.rng.random())
            .unwrap_or(PayloadKind::Approved);
        self.make_kind(class, kind, now)
    }

    /// A delivery of `class` built on a payload of `kind` (where the class has a payload).
    pub fn make_kind(&mut self, class: Class, kind: PayloadKind, now: i64) -> Delivery {
        let tol = self.profile.tolerance.as_secs() as i64;
        match class {
            Class::Valid => self.fresh(kind, now, Class::Valid),
            Class::Stale => self.fresh(kind, now - tol - 60, Class::Stale),
            Class::Future => self.fresh(kind, now + tol + 60, Class::Future),
            Class::BadSignature => {
                let mut d = self.fresh(kind, now, Class::BadSignature);
                for (name, value) in &mut d.headers {
                    if *name == X_SIGNATURE || *name == X_SIGNATURE_V2 {
                        let mut s = value.as_bytes().to_vec();
                        if let Some(last) = s.last_mut() {
                            *last = if *last == b'0' { b'1' } else { b'0' };
                        }
                        *value = hv(&s);
                    }
                }
                d
            }
            Class::TimestampMismatch => {
                let mut d = self.fresh(kind, now, Class::TimestampMismatch);
                let ts = d.origin.as_ref().map_or(now, |o| o.timestamp);
                set_header(&mut d.headers, &X_TIMESTAMP, &(ts + 5).to_string());
                d
            }
            Class::SimpleOnly => {
                let mut d = self.fresh(kind, now, Class::SimpleOnly);
                d.headers
                    .retain(|(n, _)| *n != X_SIGNATURE && *n != X_SIGNATURE_V2);
                d
            }
            Class::MalformedJson => {
                let d = self.fresh(kind, now, Class::MalformedJson);
                // Cut the document short: still signed, no longer JSON.
                let body = d.body.slice(..d.body.len() / 2);
                let sig = self.signer.sign_bytes(&body);
                let ts = d.origin.as_ref().map_or(now, |o| o.timestamp);
                Delivery {
                    headers: base_headers(ts, Some(sig.as_str()), None, None),
                    body,
                    origin: None,
                    ..d
                }
            }
            Class::Reformatted => {
                let mut d = self.fresh(kind, now, Class::Reformatted);
                if let Some(o) = &d.origin {
                    let t = self.templates.get(o.template);
                    let v = t.value(&fill_of(o));
                    let style = if self.seq.is_multiple_of(2) {
                        Reencoding::Pretty
                    } else {
                        Reencoding::UnsortedUnicode
                    };
                    let mut body = Vec::with_capacity(d.body.len() * 2);
                    reencode(&v, style, &mut body);
                    d.body = Bytes::from(body);
                }
                d
            }
            Class::Oversize => Delivery {
                label: self.label(Class::Oversize, kind),
                body: self.oversize.clone(),
                headers: base_headers(now, Some(&self.oversize_sig), None, None),
                origin: None,
            },
            Class::Replay | Class::Retry => {
                let r = self.rng.random::<u64>() as usize;
                let picked = self
                    .acked
                    .lock()
                    .ok()
                    // Replayed while still inside the tolerance with room to spare (30 s, or
                    // half of a shorter tolerance such as the soak's).
                    .and_then(|mut a| a.pick(now, tol - (tol / 2).min(30), r));
                let Some(prev) = picked else {
                    return self.fresh(kind, now, Class::Valid);
                };
                if class == Class::Replay {
                    return Delivery {
                        label: self.label(Class::Replay, prev.label.kind),
                        ..prev
                    };
                }
                let Some(o) = prev.origin else {
                    return self.fresh(kind, now, Class::Valid);
                };
                self.render(
                    o.template,
                    Origin {
                        timestamp: now,
                        ..o
                    },
                    Class::Retry,
                )
            }
        }
    }

    fn label(&self, class: Class, kind: PayloadKind) -> Label {
        Label {
            class,
            kind,
            expect: if self.calibrate {
                Expect::NullOk
            } else {
                class.expect(self.profile.accept_simple)
            },
        }
    }

    fn fresh(&mut self, kind: PayloadKind, ts: i64, class: Class) -> Delivery {
        let choices = self.templates.of_kind(kind);
        let template = choices[self.rng.random_range(0..choices.len())];
        self.seq += 1;
        let origin = Origin {
            template,
            session_id: self.uuid(),
            event_id: self.uuid(),
            vendor_data: {
                let mut v = b"user-".to_vec();
                crate::template::write_int(self.rng.random_range(1..10_000_000), &mut v);
                Arc::from(std::str::from_utf8(&v).unwrap_or_default())
            },
            timestamp: ts,
        };
        self.render(template, origin, class)
    }

    fn render(&mut self, template: usize, origin: Origin, class: Class) -> Delivery {
        let t = self.templates.get(template);
        let kind = self.templates.kind_of(template);
        let fill = fill_of(&origin);
        // Off-second renders (stale, future) use their own cache so the hot one stays warm.
        let signer = if matches!(class, Class::Stale | Class::Future) {
            &mut self.offtime
        } else {
            &mut self.signer
        };
        let r = signer.render(template, t, &fill);
        Delivery {
            label: self.label(class, kind),
            headers: base_headers(
                origin.timestamp,
                Some(r.signature.as_str()),
                Some(r.signature_v2.as_str()),
                Some(r.signature_simple.as_str()),
            ),
            body: Bytes::from(r.body),
            origin: Some(origin),
        }
    }
}

fn fill_of(o: &Origin) -> Fill<'_> {
    Fill {
        session_id: &o.session_id,
        event_id: &o.event_id,
        vendor_data: &o.vendor_data,
        timestamp: o.timestamp,
    }
}

fn hv(s: &[u8]) -> HeaderValue {
    // Only ASCII hex and digits reach here.
    HeaderValue::from_bytes(s).unwrap_or(HeaderValue::from_static(""))
}

fn set_header(h: &mut [(HeaderName, HeaderValue)], name: &HeaderName, value: &str) {
    for (n, v) in h.iter_mut() {
        if n == name {
            *v = hv(value.as_bytes());
        }
    }
}

// The core's names, as `HeaderName`s built once.
static X_TIMESTAMP: HeaderName = HeaderName::from_static(HEADER_TIMESTAMP);
static X_SIGNATURE: HeaderName = HeaderName::from_static(HEADER_SIGNATURE);
static X_SIGNATURE_V2: HeaderName = HeaderName::from_static(HEADER_SIGNATURE_V2);
static X_SIGNATURE_SIMPLE: HeaderName = HeaderName::from_static(HEADER_SIGNATURE_SIMPLE);

/// Didit's headers (contract §1), with whichever signatures are given. The variable values share
/// one allocation (this runs for every delivery).
fn base_headers(
    ts: i64,
    sig: Option<&str>,
    v2: Option<&str>,
    simple: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut buf = Vec::with_capacity(20 + 3 * 64);
    crate::template::write_int(ts, &mut buf);
    let ts_end = buf.len();
    let mut spans = [(0, 0); 3];
    for (span, value) in spans.iter_mut().zip([sig, v2, simple]) {
        if let Some(v) = value {
            let at = buf.len();
            buf.extend_from_slice(v.as_bytes());
            *span = (at, buf.len());
        }
    }
    let buf = Bytes::from(buf);
    let value = |a: usize, b: usize| {
        HeaderValue::from_maybe_shared(buf.slice(a..b)).unwrap_or(HeaderValue::from_static(""))
    };
    let mut h = Vec::with_capacity(6);
    h.push((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)));
    h.push((header::USER_AGENT, HeaderValue::from_static(USER_AGENT)));
    h.push((X_TIMESTAMP.clone(), value(0, ts_end)));
    for (name, (a, b)) in [&X_SIGNATURE, &X_SIGNATURE_V2, &X_SIGNATURE_SIMPLE]
        .into_iter()
        .zip(spans)
    {
        if b > a {
            h.push((name.clone(), value(a, b)));
        }
    }
    h
}
