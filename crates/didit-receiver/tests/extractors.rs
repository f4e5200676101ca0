//! The reusable extractors as a team uses them: in its own axum or actix-web app, with the
//! ready-made `DiditVerifier` state (the receivers themselves use `App` as the state, and the
//! conformance suite covers them over TCP). In process, no sockets.

use didit_receiver::metrics::Outcome;
use didit_webhook::canon::Value;
use didit_webhook::{Rejection, RingMac, Secret, SerdeJson, Signer, VerifyConfig};

const SECRET: &str = "extractor-test-secret";

/// A fresh, correctly signed delivery: (body, X-Signature, X-Timestamp).
fn signed(event_id: &str) -> (Vec<u8>, String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let text = format!(
        r#"{{"event_id":"{event_id}","session_id":"s-1","status":"Approved","timestamp":{now},"webhook_type":"status.updated"}}"#
    );
    let d = Signer::<RingMac>::new(&Secret::new(SECRET))
        .sign(&Value::parse(text.as_bytes()).expect("JSON"))
        .expect("signable");
    (d.body, d.signature.as_str().to_owned(), d.timestamp)
}

fn config() -> VerifyConfig {
    VerifyConfig {
        max_body: 4096,
        ..VerifyConfig::default()
    }
}

mod axum_app {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use didit_receiver::axum_ext::{DiditVerifier, DiditWebhook};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn on_didit(hook: DiditWebhook<RingMac, SerdeJson>) -> String {
        format!("{:?}", hook.event.session_id())
    }

    fn app() -> Router {
        let verifier = DiditVerifier::<RingMac, SerdeJson>::new(&Secret::new(SECRET), config());
        Router::new()
            .route("/webhooks/didit", post(on_didit))
            .with_state(verifier)
    }

    async fn call(req: Request<Body>) -> (StatusCode, String, Option<Outcome>) {
        let resp = app().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let outcome = resp.extensions().get::<Outcome>().copied();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned(), outcome)
    }

    fn post_body(body: Vec<u8>, sig: &str, ts: &str) -> Request<Body> {
        Request::post("/webhooks/didit")
            .header("x-signature", sig)
            .header("x-timestamp", ts)
            .body(Body::from(body))
            .expect("request")
    }

    #[tokio::test]
    async fn a_signed_delivery_reaches_the_handler() {
        let (body, sig, ts) = signed("e-1");
        let (status, text, _) = call(post_body(body, &sig, &ts)).await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, r#"Some("s-1")"#));
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused_before_the_handler() {
        let (body, _, ts) = signed("e-2");
        let (status, text, outcome) = call(post_body(body, &"0".repeat(64), &ts)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(text, r#"{"error":"invalid_signature"}"#);
        assert_eq!(
            outcome,
            Some(Outcome::Rejected(Rejection::InvalidSignature))
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let req = Request::post("/webhooks/didit")
            .header("content-length", "100000")
            .body(Body::empty())
            .expect("request");
        let (status, text, _) = call(req).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    }
}

mod actix_app {
    use super::*;
    use actix_web::http::StatusCode;
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, HttpResponse, web};
    use didit_receiver::actix_ext::{DiditVerifier, DiditWebhook};

    async fn on_didit(hook: DiditWebhook<RingMac, SerdeJson>) -> HttpResponse {
        HttpResponse::Ok().body(format!("{:?}", hook.event.session_id()))
    }

    /// Runs `req` through an app with (or without) the verifier in its data.
    fn call(with_verifier: bool, req: TestRequest) -> (StatusCode, String, Option<Outcome>) {
        actix_web::rt::System::new().block_on(async move {
            let verifier = web::Data::new(DiditVerifier::<RingMac, SerdeJson>::new(
                &Secret::new(SECRET),
                config(),
            ));
            let mut app = App::new().route("/webhooks/didit", web::post().to(on_didit));
            if with_verifier {
                app = app.app_data(verifier);
            }
            let svc = init_service(app).await;
            let resp = call_service(&svc, req.to_request()).await;
            let status = resp.status();
            let outcome = resp.response().extensions().get::<Outcome>().copied();
            let body = read_body(resp).await;
            (status, String::from_utf8_lossy(&body).into_owned(), outcome)
        })
    }

    fn post_body(body: Vec<u8>, sig: &str, ts: &str) -> TestRequest {
        TestRequest::post()
            .uri("/webhooks/didit")
            .insert_header(("x-signature", sig))
            .insert_header(("x-timestamp", ts))
            .set_payload(body)
    }

    #[test]
    fn a_signed_delivery_reaches_the_handler() {
        let (body, sig, ts) = signed("e-1");
        let (status, text, _) = call(true, post_body(body, &sig, &ts));
        assert_eq!((status, text.as_str()), (StatusCode::OK, r#"Some("s-1")"#));
    }

    #[test]
    fn a_bad_signature_is_refused_before_the_handler() {
        let (body, _, ts) = signed("e-2");
        let (status, text, outcome) = call(true, post_body(body, &"0".repeat(64), &ts));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(text, r#"{"error":"invalid_signature"}"#);
        assert_eq!(
            outcome,
            Some(Outcome::Rejected(Rejection::InvalidSignature))
        );
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        let (status, text, _) = call(true, post_body(vec![b' '; 5000], "", ""));
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
        assert_eq!(text, r#"{"error":"payload_too_large"}"#);
    }

    #[test]
    fn an_app_without_the_verifier_answers_500_and_says_why() {
        let (body, sig, ts) = signed("e-3");
        let (status, text, _) = call(false, post_body(body, &sig, &ts));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(text, r#"{"error":"not_configured"}"#);
    }
}
