//! `signalr-hub`: configured by environment variables (see `config.rs`); prints
//! `signalr-hub listening on http://ADDR` once it accepts connections.

use anyhow::Context;
use signalr_hub::Settings;
use std::net::SocketAddr;

/// Every notification allocates per recipient (its queued record, the socket's frame): with the
/// system allocator malloc and free took 15% of the hub's CPU samples in a burst (`perf`,
/// scripts/bench-hub), a quarter of its user-space time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let _telemetry = orders_telemetry::init("signalr-hub", settings.log_json)?;
    // Every credential is a `Secret`, which prints as <redacted>.
    tracing::info!(?settings, "starting signalr-hub");
    let (hub, source) = signalr_hub::build(&settings).await?;
    let address = SocketAddr::new(settings.host, settings.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let local = listener.local_addr()?;
    println!("signalr-hub listening on http://{local}");
    tracing::info!(%local, fanout = hub.fanout, "signalr-hub started");
    signalr_hub::serve(listener, hub, source, &settings.cors_origins, async {
        orders_telemetry::shutdown::signal(None).await;
        tracing::info!("shutting down: closing connections with allowReconnect");
    })
    .await
}
