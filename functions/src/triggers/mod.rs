//! The queue-triggered functions, invoked by the Functions host (or the local emulator) as
//! `POST /{FunctionName}` with the custom-handler payload.

mod failed;
pub mod invocation;
mod notify;
mod process;

use crate::app::AppState;
use axum::Router;
use axum::routing::post;

/// How long an invocation waits for dependencies still connecting (a cold start, a serverless
/// SQL resuming) before trying anyway. Service Bus redelivers a failed message at once, so
/// failing fast would spend all its deliveries within a second; functionTimeout is 2 min.
const DEPENDENCY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for the dependencies a function cannot do without (`sql`, `fanout`, ...) when they
/// have not connected yet, saying so when that is why the invocation is slow. One that was
/// connected and failed since is not waited for: its error fails the invocation.
async fn dependencies_ready(app: &AppState, roles: &[&str]) {
    if app.connected_to(roles) {
        return;
    }
    tracing::warn!(
        ?roles,
        "dependencies still connecting; the invocation waits for them"
    );
    if !app.wait_connected(roles, DEPENDENCY_WAIT).await {
        tracing::warn!(wait = ?DEPENDENCY_WAIT, "dependencies still not connected; trying anyway");
    }
}

/// Routes by function name, as the host calls them.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/OrderProcess", post(process::invoke))
        .route("/OrderNotify", post(notify::invoke))
        .route("/OrderFailed", post(failed::invoke))
}

/// The span every log line of one invocation hangs under: function, correlation id, delivery
/// count, and the trace of the message's `traceparent` property, else of the one its body
/// carries (`from_body`).
fn invocation_span(
    function: &'static str,
    request: &invocation::InvokeRequest,
    from_body: Option<&str>,
) -> tracing::Span {
    let props = request.properties();
    let traceparent = props
        .get("traceparent")
        .map(String::as_str)
        .or(from_body)
        .and_then(|raw| Some((raw, crate::trace_context::TraceParent::parse(raw)?)));
    let trace_id = traceparent
        .as_ref()
        .map(|(_, parsed)| parsed.trace_id.clone())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "invocation",
        function,
        correlation_id = props.get("correlationid").map(String::as_str).unwrap_or(""),
        delivery_count = request.delivery_count(),
        trace_id
    );
    if let Some((parent, _)) = traceparent {
        orders_telemetry::continue_trace(&span, parent);
    }
    span
}
