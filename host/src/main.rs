use anyhow::Context;
use functions_host::HostSettings;
use orders_functions::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let handler_settings = Settings::from_env().context("invalid handler configuration")?;
    let _telemetry = orders_telemetry::init("functions-host", handler_settings.log_json)?;
    let settings = HostSettings::from_env().context("invalid host configuration")?;
    // Every credential is a `Secret`, which prints as <redacted>.
    tracing::info!(?settings, handler = ?handler_settings, "starting functions-host");
    let host = functions_host::start(settings, handler_settings).await?;
    println!("Contoso Orders is up: http://127.0.0.1:{}/", host.port);
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight invocations");
    host.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
