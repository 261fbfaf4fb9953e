use anyhow::Context;
use orders_functions::{App, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Read first thing: a host killed while we start must still be noticed.
    #[cfg(unix)]
    let parent = std::os::unix::process::parent_id();
    let settings = Settings::from_env().context("invalid configuration")?;
    let _telemetry = orders_telemetry::init("handler", settings.log_json)?;
    // Every credential is a `Secret`, which prints as <redacted>.
    tracing::info!(?settings, "starting handler");
    let app = App::build(settings).await?;
    tracing::info!(
        port = app.port(),
        "listening on http://127.0.0.1:{}/api",
        app.port()
    );
    // Started by a Functions host (it sets the port): die with it, never outlive it listening.
    let hosted = std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some();
    #[cfg(unix)]
    let orphaned = hosted.then_some(parent);
    #[cfg(not(unix))]
    let orphaned = None;
    app.serve(shutdown_signal(orphaned)).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what the Functions host and container runtimes send), or the host
/// process `parent` gone (a `kill -9` sends its child nothing).
async fn shutdown_signal(parent: Option<u32>) {
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
    let orphaned = async {
        match parent {
            Some(parent) => parent_gone(parent).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {}, () = orphaned => {} }
}

/// Resolves once `parent` is no longer this process's parent: it died, and we were adopted.
/// (A parent of 1 is no sign of an orphan: in a container the host may well be process 1.)
async fn parent_gone(parent: u32) {
    #[cfg(unix)]
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
    tracing::warn!(parent, "the Functions host is gone; stopping");
}
