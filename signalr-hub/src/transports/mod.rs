//! The transports and what they share: authentication and connection lookup.

pub mod long_polling;
pub mod websocket;

use crate::connection::Connection;
use crate::hub::Hub;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_core::UserId;
use orders_core::cursor::Cursor;
use serde::Deserialize;
use std::sync::Arc;

/// Query parameters of the connect, poll, send and delete requests.
#[derive(Debug, Default, Deserialize)]
pub struct ConnectQuery {
    pub id: Option<String>,
    /// `skipNegotiation` clients give the cursor here, as others do at negotiate.
    pub after: Option<Cursor>,
}

/// The `access_token` query parameter, where browsers put the token of a WebSocket.
#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The authenticated caller of negotiate, WebSockets and Long Polling: the one auth check of
/// every hub request. Missing or invalid tokens answer 401.
pub struct Caller(pub UserId);

impl FromRequestParts<Arc<Hub>> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, Refusal> {
        let query = Query::<TokenQuery>::try_from_uri(&parts.uri).ok();
        let token = query.and_then(|q| q.0.access_token);
        authenticate(hub, &parts.headers, token.as_deref())
            .await
            .map(Caller)
    }
}

/// An HTTP refusal with a short plain-text reason.
pub fn refuse(status: StatusCode, reason: &str) -> Response {
    Refusal {
        status,
        reason: reason.to_owned(),
    }
    .into_response()
}

#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.reason).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        }
        response
    }
}

fn refusal(status: StatusCode, reason: &str) -> Refusal {
    Refusal {
        status,
        reason: reason.to_owned(),
    }
}

/// The caller's user, from `Authorization: Bearer` (Node, Long Polling) or the `access_token`
/// query parameter (browsers' WebSockets).
async fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    access_token: Option<&str>,
) -> Result<UserId, Refusal> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = bearer.or(access_token).filter(|t| !t.is_empty()) else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required",
        ));
    };
    match hub.validator.validate(token).await {
        Ok(principal) => Ok(principal.user_id),
        Err(e) => {
            tracing::info!(error = %e, "refused a hub request");
            Err(refusal(StatusCode::UNAUTHORIZED, &e.to_string()))
        }
    }
}

/// The caller's existing connection: 404 when unknown, 403 when it is another user's.
pub fn existing(hub: &Hub, id: Option<&str>, user: &UserId) -> Result<Arc<Connection>, Refusal> {
    let Some(id) = id else {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "connection id (id) is required",
        ));
    };
    let Some(connection) = hub.registry.get(id) else {
        return Err(refusal(StatusCode::NOT_FOUND, "no connection with this id"));
    };
    if &connection.user != user {
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "the connection belongs to another user",
        ));
    }
    Ok(connection)
}
