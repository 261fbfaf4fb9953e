//! The HTTP API (`/api/...`, `/dev/token`), reached through the Functions host's HTTP proxying.

mod dev_token;
mod dto;
mod health;
mod openapi;
mod orders;
mod products;

use crate::app::AppState;
use crate::extract::MAX_BODY_BYTES;
use crate::problem::ApiError;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .route("/api/health", get(health::ready))
        .route("/api/health/live", get(health::live))
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
    api.merge(crate::triggers::router())
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(anyhow::anyhow!("handler panicked")))
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let request_id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id);
            // A caller's W3C trace context makes this request part of its trace.
            if let Some(parent) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
                orders_telemetry::continue_trace(&span, parent);
            }
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
