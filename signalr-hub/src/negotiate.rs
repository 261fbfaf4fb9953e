//! `POST /hubs/order-status/negotiate` (TransportProtocols.md, "POST [endpoint-base]/negotiate").

use crate::hub::Hub;
use crate::transports::{Caller, refuse};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orders_core::cursor::Cursor;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NegotiateQuery {
    negotiate_version: Option<u32>,
    /// Sent by clients built `withStatefulReconnect()`.
    use_stateful_reconnect: Option<bool>,
    /// The last notification cursor the client saw: what followed is sent after the handshake.
    after: Option<Cursor>,
}

pub async fn negotiate(
    State(hub): State<Arc<Hub>>,
    Caller(user): Caller,
    Query(query): Query<NegotiateQuery>,
) -> Response {
    if hub.shutting_down.load(Relaxed) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down");
    }
    // Version 1 adds connectionToken; a client asking for more gets the highest we speak.
    let version = query.negotiate_version.unwrap_or(0).min(1);
    // Offered only when asked: the official client refuses an offer it did not ask for.
    let reconnect = version >= 1 && query.use_stateful_reconnect == Some(true);
    let Ok(connection) = hub.registry.create(user, version == 0, reconnect) else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many connections");
    };
    if let Some(after) = query.after {
        let _ = connection.replay_after.set(after);
    }
    // Text for the JSON protocol, Binary for MessagePack.
    let transports = json!([
        { "transport": "WebSockets", "transferFormats": ["Text", "Binary"] },
        { "transport": "LongPolling", "transferFormats": ["Text", "Binary"] },
    ]);
    let mut body = if version >= 1 {
        json!({
            "negotiateVersion": 1,
            "connectionId": connection.id,
            "connectionToken": connection.token,
            "availableTransports": transports,
        })
    } else {
        json!({
            "negotiateVersion": 0,
            "connectionId": connection.id,
            "availableTransports": transports,
        })
    };
    if reconnect {
        body["useStatefulReconnect"] = json!(true);
    }
    Json(body).into_response()
}
