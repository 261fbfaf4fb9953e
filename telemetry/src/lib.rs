//! Logs and traces, set up the same way by every binary.
//!
//! - `RUST_LOG` filters (default `info`); `LOG_FORMAT=json` prints JSON lines for log shippers.
//! - With `OTEL_EXPORTER_OTLP_ENDPOINT` set (OTLP over HTTP, e.g. `http://otel-collector:4318`),
//!   spans are also exported as OpenTelemetry traces, named by `OTEL_SERVICE_NAME` (default: the
//!   binary's name). The W3C `traceparent` carried in message properties links the spans of one
//!   order across the queue hops, so a trace viewer shows one trace per order.

mod propagation;

pub use propagation::{continue_trace, current_traceparent};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes exported spans when dropped; keep it alive for the life of `main`.
#[must_use]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the subscriber. A second call (tests start many apps in one process) is harmless.
pub fn init(service: &str, json: bool) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer();
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let provider = otlp_provider(service);
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("contoso-orders"))
            .boxed()
    });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if let (true, Some(_)) = (installed, &provider) {
        tracing::info!(service, "exporting traces over OTLP");
    }
    Telemetry { provider }
}

fn otlp_provider(service: &str) -> Option<SdkTracerProvider> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())?;
    // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) itself.
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("OTLP export disabled: {err}");
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(name)
                    .build(),
            )
            .build(),
    )
}
