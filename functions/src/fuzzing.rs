//! Entry points for the fuzz targets (`fuzz/`): the parsers of untrusted input, called as the
//! request path calls them, their errors rendered as the client would get them. Built only
//! with the `fuzzing` feature.

use crate::api::orders::PlaceOrderRequest;
use crate::extract::parse_body;
use crate::idempotency;
use crate::triggers::invocation::{InvokeRequest, decode_value};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use orders_core::catalog::Catalog;
use orders_core::intake::price_lines;
use orders_core::{CorrelationId, UserId};
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(orders_adapters::seed::products()))
}

/// `POST /api/orders`: the `Idempotency-Key` header and the JSON body, up to pricing.
pub fn place_order(idempotency_key: &[u8], body: &[u8]) {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(idempotency_key) {
        headers.insert("idempotency-key", value);
    }
    let key = match idempotency::key_from(&headers) {
        Ok(key) => key,
        Err(err) => return drop(err.into_response()),
    };
    let request = match parse_body::<PlaceOrderRequest>(body) {
        Ok(request) => request,
        Err(err) => return drop(err.into_response()),
    };
    let (lines, canonical) = request.lines();
    if let (Some(key), Ok(user)) = (key, UserId::parse("fuzz-user")) {
        CorrelationId::for_idempotency_key(&user, &key, &canonical);
    }
    let _ = price_lines(&lines, catalog());
}

/// A custom-handler invocation as the Functions host POSTs it, read as the triggers read it.
pub fn invocation(payload: &[u8]) {
    let Ok(request) = serde_json::from_slice::<InvokeRequest>(payload) else {
        return;
    };
    for binding in ["order", "processed"] {
        match request.message(binding) {
            Ok(message) => drop(message),
            Err(err) => drop(err.into_response()),
        }
    }
    let _ = (request.delivery_count(), request.properties());
    let _ = request.metadata_text("MessageId");
    if let Ok(value) = serde_json::from_slice(payload) {
        let _ = decode_value(&value);
    }
}
