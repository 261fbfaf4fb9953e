use anyhow::Context;
use orders_functions::{App, Settings};

/// Request handling allocates many small short-lived buffers (JSON, headers, SQL parameters):
/// mimalloc serves them with less contention between threads than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
