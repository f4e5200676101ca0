//! The extractor as a team uses it, in process (no sockets): an app with state of its own that
//! reaches the inbox through `FromRef`, a handler that can fail, and the exactly-once rule:
//! reserved before the handler, committed on success, released on failure, 503 while in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use didit_webhook::{RingMac, SignedDelivery, Signer};
use didit_webhook_axum::{Answer, Didit, DiditWebhook, Inbox, Outcome, Secret, VerifyConfig};
use http_body_util::BodyExt;
use tokio::sync::Notify;
use tower::ServiceExt;

const SECRET: &str = "axum-test-secret";

fn now() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(d.expect("clock after 1970").as_secs()).expect("seconds fit")
}

/// A fresh delivery signed as Didit signs it, with the core's helper.
fn signed(secret: &str, event_id: Option<&str>) -> SignedDelivery {
    let secret = Secret::new(secret).expect("not empty");
    Signer::<RingMac>::new(&secret)
        .sign_status_update(event_id, now())
        .expect("signable")
}

fn request(d: &SignedDelivery) -> Request<Body> {
    let mut b = Request::post("/webhooks/didit");
    for (name, value) in d.headers() {
        b = b.header(name, value);
    }
    b.body(Body::from(d.body.clone())).expect("request")
}

/// The app's own state: the inbox beside what the handler needs.
#[derive(Clone)]
struct AppState {
    didit: Didit,
    handled: Arc<AtomicUsize>,
    /// Fail the next N deliveries, as a handler whose database is briefly down would.
    fail_next: Arc<AtomicUsize>,
    /// When set, the handler signals `entered` and waits for `release`.
    gate: Option<Arc<(Notify, Notify)>>,
}

impl FromRef<AppState> for Didit {
    fn from_ref(s: &AppState) -> Didit {
        s.didit.clone()
    }
}

async fn on_didit(State(app): State<AppState>, hook: DiditWebhook) -> Answer {
    if let Some(gate) = &app.gate {
        gate.0.notify_one();
        gate.1.notified().await;
    }
    let fail = app
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return Answer::failed();
    }
    app.handled.fetch_add(1, Ordering::SeqCst);
    hook.commit().await
}

fn app_state(inbox: Inbox<RingMac, didit_webhook::SerdeJson>) -> AppState {
    AppState {
        didit: Arc::new(inbox),
        handled: Arc::new(AtomicUsize::new(0)),
        fail_next: Arc::new(AtomicUsize::new(0)),
        gate: None,
    }
}

fn inbox() -> Inbox<RingMac, didit_webhook::SerdeJson> {
    let secret = Secret::new(SECRET).expect("not empty");
    Inbox::new(
        &secret,
        VerifyConfig {
            max_body: 4096,
            ..VerifyConfig::default()
        },
    )
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/didit", post(on_didit))
        .with_state(state)
}

struct Answered {
    status: StatusCode,
    body: String,
    retry_after: Option<String>,
    outcome: Option<Outcome>,
}

async fn call(state: &AppState, req: Request<Body>) -> Answered {
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let outcome = resp.extensions().get::<Outcome>().copied();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Answered {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        retry_after,
        outcome,
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_handler_is_processed_and_a_later_copy_is_a_duplicate() {
    let state = app_state(inbox());
    state.fail_next.store(1, Ordering::SeqCst);
    let d = signed(SECRET, Some("evt-retry"));

    let first = call(&state, request(&d)).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.retry_after.as_deref(), Some("1"));
    assert_eq!(first.outcome, Some(Outcome::Failed));
    assert_eq!(state.handled.load(Ordering::SeqCst), 0);

    // Didit's retry: the key was released, so the handler runs.
    let retry = call(&state, request(&d)).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body, r#"{"status":"accepted"}"#);
    assert_eq!(state.handled.load(Ordering::SeqCst), 1);

    // A resend after success: answered 200 duplicate without reaching the handler.
    let again = call(&state, request(&d)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, r#"{"status":"duplicate"}"#);
    assert_eq!(again.outcome, Some(Outcome::Duplicate));
    assert_eq!(state.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_copy_that_arrives_while_the_first_is_handled_is_answered_503() {
    let gate = Arc::new((Notify::new(), Notify::new()));
    let state = AppState {
        gate: Some(Arc::clone(&gate)),
        ..app_state(inbox())
    };
    let d = signed(SECRET, Some("evt-concurrent"));
    let first = tokio::spawn({
        let (state, req) = (state.clone(), request(&d));
        async move { call(&state, req).await }
    });
    gate.0.notified().await; // the first is inside the handler now

    let copy = call(
        &AppState {
            gate: None,
            ..state.clone()
        },
        request(&d),
    )
    .await;
    assert_eq!(copy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(copy.retry_after.as_deref(), Some("1"));
    assert_eq!(copy.body, r#"{"error":"in_flight"}"#);
    assert_eq!(state.handled.load(Ordering::SeqCst), 0);

    gate.1.notify_one();
    let first = first.await.expect("first request");
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(state.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deliveries_without_an_event_id_are_keyed_by_the_contract_fallback() {
    let state = app_state(inbox());
    let d = signed(SECRET, None);
    assert_eq!(
        call(&state, request(&d)).await.body,
        r#"{"status":"accepted"}"#
    );
    assert_eq!(
        call(&state, request(&d)).await.body,
        r#"{"status":"duplicate"}"#
    );
    assert_eq!(state.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rotated_secret_is_accepted_during_the_overlap_and_no_other() {
    let state = app_state(inbox().also_accepting(&Secret::new("old-secret").expect("not empty")));
    let old = call(&state, request(&signed("old-secret", Some("evt-old")))).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.body);
    let unknown = call(&state, request(&signed("unknown-secret", Some("evt-x")))).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body, r#"{"error":"invalid_signature"}"#);
    assert_eq!(state.handled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refused_deliveries_get_the_contract_status_and_never_reach_the_handler() {
    let state = app_state(inbox());
    let good = signed(SECRET, Some("evt-bad"));

    // Another status under the same signatures (re-spacing alone would still match V2).
    let mut tampered = good.clone();
    tampered.body = String::from_utf8(good.body.clone())
        .expect("ASCII")
        .replace("Approved", "Declined")
        .into_bytes();
    let r = call(&state, request(&tampered)).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_signature"}"#)
    );

    let unsigned = Request::post("/webhooks/didit")
        .body(Body::from(good.body.clone()))
        .expect("request");
    assert_eq!(
        call(&state, unsigned).await.status,
        StatusCode::UNAUTHORIZED
    );

    let mut big = request(&good);
    *big.body_mut() = Body::from(vec![b' '; 5000]);
    big.headers_mut().remove("content-length");
    let r = call(&state, big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.outcome,
        Some(Outcome::Rejected(didit_webhook::Rejection::PayloadTooLarge))
    );

    assert_eq!(state.handled.load(Ordering::SeqCst), 0);
    // The refusals released nothing they had not reserved: the good delivery still goes through.
    assert_eq!(call(&state, request(&good)).await.status, StatusCode::OK);
}
