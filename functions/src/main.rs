use anyhow::Context;
use orders_functions::{App, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("invalid configuration")?;
    let _telemetry = orders_telemetry::init("handler", settings.log_json);
    tracing::info!(?settings, "starting handler");
    let app = App::build(settings).await?;
    tracing::info!(
        port = app.port(),
        "listening on http://127.0.0.1:{}/api",
        app.port()
    );
    app.serve(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what the Functions host and container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
