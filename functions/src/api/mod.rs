//! The HTTP API (`/api/...`, `/dev/token`), reached through the Functions host's HTTP proxying.

mod dev_token;
mod dto;
mod health;
mod openapi;
pub(crate) mod orders;
mod products;

use crate::app::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::problem::ApiError;
use crate::shed::{InProgress, shed_load};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::routing::{get, post};
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/products", get(products::list))
        .route("/api/products/{product_id}", get(products::get))
        .route("/api/orders", post(orders::place).get(orders::list))
        .route(
            "/api/orders/{order_ref}",
            get(orders::get).delete(orders::delete),
        );
    if state.dev_tokens.is_some() {
        api = api.route("/dev/token", post(dev_token::issue));
    }
    // Health probes and the host's invocations are never shed: the probes must tell a busy
    // service from a dead one, and the host bounds its invocations itself.
    let in_progress = InProgress::at_most(state.settings.max_concurrent_requests);
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(in_progress, shed_load))
        .route("/api/health", get(health::ready))
        .route("/api/health/live", get(health::live));
    // What every request passes through, outermost first, as one stack: each `Router::layer`
    // call boxes every route again, and a request clones each of those boxes. CORS stays
    // outside it: its preflight answers need a body type that the trace layer's is not.
    let middleware =
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id);
                // A caller's W3C trace context makes this request part of its trace.
                if let Some(parent) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
                    orders_telemetry::continue_trace(&span, parent);
                }
                span
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(CatchPanicLayer::custom(|_| {
                axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!("handler panicked")))
            }))
            .map_request(crate::host_version::log_once)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    api.merge(crate::triggers::router())
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware)
        .layer(tower::util::option_layer(cors(
            &state.settings.cors_origins,
        )))
        .with_state(state)
}

/// Cross-origin access for an SPA served elsewhere: exact origins only, bearer tokens (no
/// cookies), and the headers the SPA reads exposed. No origins: no CORS headers at all.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            REQUEST_ID,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600));
    Some(layer)
}
