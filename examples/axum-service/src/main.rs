//! A Didit webhook endpoint in axum: verified, fresh and handled exactly once.
//! Run: `DIDIT_WEBHOOK_SECRET=... PORT=3000 cargo run -p axum-service`.
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::{Router, routing::post};
use didit_webhook_axum::{Answer, Didit, DiditWebhook, Inbox, Secret, VerifyConfig};

#[derive(Clone)]
struct AppState {
    didit: Didit,
    // Your database pool, clients, ... go here.
}

impl FromRef<AppState> for Didit {
    fn from_ref(state: &AppState) -> Didit {
        state.didit.clone()
    }
}

async fn on_didit(State(_app): State<AppState>, hook: DiditWebhook) -> Answer {
    let event = hook.event();
    let session = event.session_id().unwrap_or_default();
    match event.webhook_type().map(|t| t.as_str()) {
        Some("status.updated") => eprintln!("{session}: {:?}", event.status().map(|s| s.as_str())),
        Some("data.updated") => eprintln!("{session}: data updated"),
        other => eprintln!("{session}: {other:?} not handled here"),
    }
    // On a failure of your own, `return Answer::failed();`: 503, and Didit's retry is handled.
    hook.commit().await
}

fn secret(name: &str) -> Result<Secret, didit_webhook_axum::SecretError> {
    Secret::from_var(name, std::env::var(name).ok())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let mut inbox: Inbox = Inbox::new(&secret("DIDIT_WEBHOOK_SECRET")?, VerifyConfig::default());
    // While Didit's secret is rotated, the old one is accepted too.
    if std::env::var_os("DIDIT_WEBHOOK_SECRET_PREVIOUS").is_some() {
        inbox = inbox.also_accepting(&secret("DIDIT_WEBHOOK_SECRET_PREVIOUS")?);
    }
    let state = AppState {
        didit: Arc::new(inbox),
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new()
        .route("/webhooks/didit", post(on_didit))
        .with_state(state);
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
