use anyhow::Context;
use functions_host::HostSettings;
use orders_functions::Settings;

/// Request handling allocates many small short-lived buffers (JSON, headers, SQL parameters):
/// mimalloc serves them with less contention between threads than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let handler_settings = Settings::from_env().context("invalid handler configuration")?;
    let _telemetry = orders_telemetry::init("functions-host", handler_settings.log_json)?;
    let settings = HostSettings::from_env().context("invalid host configuration")?;
    // Every credential is a `Secret`, which prints as <redacted>.
    tracing::info!(?settings, handler = ?handler_settings, "starting functions-host");
    let host = functions_host::start(settings, handler_settings).await?;
    // The development certificate names localhost (and 127.0.0.1).
    let address = if host.scheme == "https" {
        "localhost"
    } else {
        "127.0.0.1"
    };
    println!(
        "Contoso Orders is up: {}://{address}:{}/",
        host.scheme, host.port
    );
    orders_telemetry::shutdown::signal(None).await;
    tracing::info!("shutting down: finishing in-flight invocations");
    host.stop().await;
    Ok(())
}
