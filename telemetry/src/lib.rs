//! Logs and traces, set up the same way by every binary.
//!
//! - `RUST_LOG` filters (default `info`); `LOG_FORMAT=json` prints JSON lines for log shippers.
//! - With `OTEL_EXPORTER_OTLP_ENDPOINT` set (OTLP over HTTP, e.g. `http://otel-collector:4318`),
//!   spans are also exported as OpenTelemetry traces, named by `OTEL_SERVICE_NAME` (default: the
//!   binary's name). The W3C `traceparent` carried in message properties links the spans of one
//!   order across the queue hops, so a trace viewer shows one trace per order.

mod propagation;
pub mod shutdown;

pub use propagation::{continue_trace, current_traceparent};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use orders_core::env::ConfigError;
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
/// A `RUST_LOG` or `OTEL_EXPORTER_OTLP_ENDPOINT` that cannot be used is an error, not a silent
/// fallback.
pub fn init(service: &str, json: bool) -> Result<Telemetry, ConfigError> {
    let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let filter = match setting("RUST_LOG") {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?,
        None => EnvFilter::new("info"),
    };
    let fmt = tracing_subscriber::fmt::layer();
    let fmt = if json {
        fmt.json().boxed()
    } else {
        fmt.boxed()
    };
    let provider = otlp_provider(service, &setting)?;
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
    Ok(Telemetry { provider })
}

/// `setting`: a variable's value, unless unset or blank.
fn otlp_provider(
    service: &str,
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SdkTracerProvider>, ConfigError> {
    const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let Some(endpoint) = setting(ENDPOINT) else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(ConfigError::new(
            ENDPOINT,
            "must be an http(s) URL such as http://otel-collector:4318",
        ));
    }
    // The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) itself.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| ConfigError::new(ENDPOINT, e.to_string()))?;
    let name = setting("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(name)
                    .build(),
            )
            .build(),
    ))
}
