//! The extractor as a team uses it, in process (actix's test service, no sockets): the inbox in
//! the app data beside the app's own, a handler that can fail, and the exactly-once rule:
//! reserved before the handler, committed on success, released on failure, 503 while in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use didit_webhook::{RingMac, SerdeJson, SignedDelivery, Signer};
use didit_webhook_actix::{Answer, Didit, DiditWebhook, Inbox, Outcome, Secret, VerifyConfig};
use tokio::sync::Notify;

const SECRET: &str = "actix-test-secret";

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

fn request(d: &SignedDelivery) -> test::TestRequest {
    let mut r = test::TestRequest::post().uri("/webhooks/didit");
    for (name, value) in d.headers() {
        r = r.insert_header((name, value));
    }
    r.set_payload(d.body.clone())
}

/// What the handler shares with the test.
#[derive(Default)]
struct Shared {
    handled: AtomicUsize,
    /// Fail the next N deliveries, as a handler whose database is briefly down would.
    fail_next: AtomicUsize,
    /// When set, the handler signals the first and waits for the second.
    gate: Option<(Notify, Notify)>,
}

async fn on_didit(shared: web::Data<Shared>, hook: DiditWebhook) -> Answer {
    if let Some((entered, release)) = &shared.gate {
        entered.notify_one();
        release.notified().await;
    }
    let fail = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return Answer::failed();
    }
    shared.handled.fetch_add(1, Ordering::SeqCst);
    hook.commit().await
}

fn inbox() -> Inbox<RingMac, SerdeJson> {
    let secret = Secret::new(SECRET).expect("not empty");
    Inbox::new(
        &secret,
        VerifyConfig {
            max_body: 4096,
            ..VerifyConfig::default()
        },
    )
}

macro_rules! service {
    ($inbox:expr, $shared:expr) => {
        test::init_service(
            App::new()
                .app_data(Didit::new($inbox))
                .app_data(web::Data::from(Arc::clone(&$shared)))
                .route("/webhooks/didit", web::post().to(on_didit)),
        )
        .await
    };
}

async fn body_of(resp: actix_web::dev::ServiceResponse) -> (StatusCode, String, Option<String>) {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = test::read_body(resp).await;
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        retry_after,
    )
}

#[actix_web::test]
async fn a_retry_after_a_failed_handler_is_processed_and_a_later_copy_is_a_duplicate() {
    let shared = Arc::new(Shared::default());
    shared.fail_next.store(1, Ordering::SeqCst);
    let app = service!(inbox(), shared);
    let d = signed(SECRET, Some("evt-retry"));

    let first = test::call_service(&app, request(&d).to_request()).await;
    assert_eq!(
        first.response().extensions().get::<Outcome>().copied(),
        Some(Outcome::Failed)
    );
    let (status, _, retry_after) = body_of(first).await;
    assert_eq!(
        (status, retry_after.as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
    );

    let (status, body, _) = body_of(test::call_service(&app, request(&d).to_request()).await).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"accepted"}"#)
    );
    let (status, body, _) = body_of(test::call_service(&app, request(&d).to_request()).await).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"duplicate"}"#)
    );
    assert_eq!(shared.handled.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn a_copy_that_arrives_while_the_first_is_handled_is_answered_503() {
    let shared = Arc::new(Shared {
        gate: Some((Notify::new(), Notify::new())),
        ..Shared::default()
    });
    let app = service!(inbox(), shared);
    let d = signed(SECRET, Some("evt-concurrent"));
    let gate = shared.gate.as_ref().expect("gate");
    // Both on this thread: the first enters the handler and waits; the copy is answered while
    // it waits, then lets it go.
    let first = async { body_of(test::call_service(&app, request(&d).to_request()).await).await };
    let copy = async {
        gate.0.notified().await;
        let answered = test::call_service(&app, request(&d).to_request()).await;
        let seen = shared.handled.load(Ordering::SeqCst);
        gate.1.notify_one();
        (body_of(answered).await, seen)
    };
    let (first, (copy, handled_meanwhile)) = futures_util::future::join(first, copy).await;
    assert_eq!(copy.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(copy.1, r#"{"error":"in_flight"}"#);
    assert_eq!(copy.2.as_deref(), Some("1"));
    assert_eq!(handled_meanwhile, 0);
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(shared.handled.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn rotation_fallback_keys_and_refusals() {
    let shared = Arc::new(Shared::default());
    let old = Secret::new("old-secret").expect("not empty");
    let app = service!(inbox().also_accepting(&old), shared);

    let call = |req: test::TestRequest| async {
        body_of(test::call_service(&app, req.to_request()).await).await
    };
    assert_eq!(
        call(request(&signed("old-secret", Some("evt-old"))))
            .await
            .0,
        StatusCode::OK
    );
    let unknown = call(request(&signed("unknown", Some("evt-x")))).await;
    assert_eq!(
        (unknown.0, unknown.1.as_str()),
        (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_signature"}"#)
    );

    let no_id = signed(SECRET, None);
    assert_eq!(call(request(&no_id)).await.1, r#"{"status":"accepted"}"#);
    assert_eq!(call(request(&no_id)).await.1, r#"{"status":"duplicate"}"#);

    let big = request(&no_id).set_payload(vec![b' '; 5000]);
    assert_eq!(call(big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(shared.handled.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn an_app_without_the_inbox_says_what_is_missing() {
    let shared = Arc::new(Shared::default());
    let app = test::init_service(
        App::new()
            .app_data(web::Data::from(Arc::clone(&shared)))
            .route("/webhooks/didit", web::post().to(on_didit)),
    )
    .await;
    let resp = test::call_service(&app, request(&signed(SECRET, Some("e"))).to_request()).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
