//! Joining a span to the trace named by a W3C `traceparent`, and reading the current span's.
//! Without OTLP export these do nothing and the handler's own trace ids stand.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the remote span in `traceparent`.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The current span's `traceparent` when spans are exported, so the next hop joins this trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_exported_spans(test: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    #[test]
    fn a_span_joins_the_remote_trace_and_passes_on_its_own_id() {
        with_exported_spans(|| {
            let span = tracing::info_span!("invocation");
            continue_trace(&span, REMOTE);
            let _entered = span.enter();
            let passed_on = current_traceparent().expect("an exported span has a context");
            let parts: Vec<&str> = passed_on.split('-').collect();
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "{passed_on}");
            assert_ne!(parts[2], "00f067aa0ba902b7", "a new span id: {passed_on}");
            assert_eq!(parts[3], "01");
        });
    }

    #[test]
    fn without_export_nothing_is_invented() {
        let span = tracing::info_span!("invocation");
        continue_trace(&span, REMOTE);
        let _entered = span.enter();
        assert_eq!(current_traceparent(), None);
    }
}
