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
    app.serve(orders_telemetry::shutdown::signal(orphaned))
        .await?;
    tracing::info!("stopped");
    Ok(())
}
