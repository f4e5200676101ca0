//! A Didit webhook endpoint in actix-web: verified, fresh and handled exactly once.
//! Run: `DIDIT_WEBHOOK_SECRET=... PORT=3000 cargo run -p actix-service`.
use actix_web::{App, HttpServer, web};
use didit_webhook_actix::{Answer, Didit, DiditWebhook, Inbox, Secret, VerifyConfig};

async fn on_didit(hook: DiditWebhook) -> Answer {
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

fn secret(name: &str) -> Result<Secret, didit_webhook_actix::SecretError> {
    Secret::from_var(name, std::env::var(name).ok())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let mut inbox: Inbox = Inbox::new(&secret("DIDIT_WEBHOOK_SECRET")?, VerifyConfig::default());
    // While Didit's secret is rotated, the old one is accepted too.
    if std::env::var_os("DIDIT_WEBHOOK_SECRET_PREVIOUS").is_some() {
        inbox = inbox.also_accepting(&secret("DIDIT_WEBHOOK_SECRET_PREVIOUS")?);
    }
    let didit = Didit::new(inbox);
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |p| p.parse())?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(didit.clone())
            // A resource answers 405 to other methods (a bare `.route` answers 404).
            .service(web::resource("/webhooks/didit").route(web::post().to(on_didit)))
    })
    .bind(("127.0.0.1", port))?;
    println!("listening on {}", server.addrs()[0]);
    server.run().await?;
    Ok(())
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
