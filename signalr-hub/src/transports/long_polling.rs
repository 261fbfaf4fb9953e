//! The Long Polling transport (TransportProtocols.md, "Long Polling"):
//! - `GET ?id=`: the first poll answers 200 with an empty body at once; later polls wait for
//!   records (200 with them) or the poll timeout (200 empty); 204 once the connection is over.
//! - `POST ?id=`: records from the client.
//! - `DELETE ?id=`: the client ends the connection (202).

use super::{ConnectQuery, existing, refuse};
use crate::connection::{Attach, Connection, Outbox, TransportKind};
use crate::hub::Hub;
use crate::protocol::HubProtocol;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_core::UserId;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

/// A poll answer carries at most about this much; the rest waits for the next poll.
const MAX_POLL_BYTES: usize = 256 * 1024;

/// A poll's answer: frames of one protocol, concatenated (records are self-delimiting).
fn ok(connection: &Connection, body: Vec<u8>) -> Response {
    let content_type = match connection.protocol() {
        Some(HubProtocol::MessagePack) => "application/octet-stream",
        _ => "text/plain; charset=utf-8",
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn poll(hub: Arc<Hub>, user: UserId, query: ConnectQuery) -> Response {
    let connection = match existing(&hub, query.id.as_deref(), &user) {
        Ok(connection) => connection,
        Err(refusal) => return refusal.into_response(),
    };
    match connection.attach(TransportKind::LongPolling) {
        Attach::New => return ok(&connection, Vec::new()),
        Attach::Existing => {}
        Attach::Resume | Attach::Conflict(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "cannot change transports mid-connection",
            );
        }
    }
    // A newer poll replaces a waiting one (the client only keeps one open).
    let generation = connection.poll_generation.fetch_add(1, SeqCst) + 1;
    connection.poll_superseded.notify_waiters();
    let mut receiver = connection.receiver.lock().await;
    if connection.is_closing() {
        return finish(&connection, &mut receiver);
    }
    let first = tokio::select! {
        record = receiver.recv() => record,
        () = connection.closed() => return finish(&connection, &mut receiver),
        () = tokio::time::sleep(hub.limits.long_poll) => return ok(&connection, Vec::new()),
        () = superseded(&connection, generation) => return ok(&connection, Vec::new()),
    };
    let Some(first) = first else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let mut body = first.as_bytes().to_vec();
    while body.len() < MAX_POLL_BYTES {
        match receiver.try_recv() {
            Ok(frame) => body.extend_from_slice(frame.as_bytes()),
            Err(_) => break,
        }
    }
    ok(&connection, body)
}

async fn superseded(connection: &Connection, generation: u64) {
    loop {
        let notified = connection.poll_superseded.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if connection.poll_generation.load(SeqCst) != generation {
            return;
        }
        notified.await;
    }
}

/// The connection is over: what is still queued plus the Close message, else 204.
fn finish(connection: &Connection, receiver: &mut Outbox) -> Response {
    let mut body = Vec::new();
    while let Ok(frame) = receiver.try_recv() {
        body.extend_from_slice(frame.as_bytes());
    }
    if let Some((close, _)) = connection.take_close_record() {
        body.extend_from_slice(close.as_bytes());
    }
    if body.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ok(connection, body)
    }
}

pub async fn send(hub: Arc<Hub>, user: UserId, query: ConnectQuery, body: Bytes) -> Response {
    let connection = match existing(&hub, query.id.as_deref(), &user) {
        Ok(connection) => connection,
        Err(refusal) => return refusal.into_response(),
    };
    if connection.transport() != Some(TransportKind::LongPolling) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "sends by POST are for Long Polling connections",
        );
    }
    if connection.is_closing() {
        return refuse(StatusCode::NOT_FOUND, "the connection has ended");
    }
    let mut session = connection.session.lock().await;
    session.receive(&hub, &connection, &body).await;
    ok(&connection, Vec::new())
}

pub async fn delete(hub: Arc<Hub>, user: UserId, query: ConnectQuery) -> Response {
    let connection = match existing(&hub, query.id.as_deref(), &user) {
        Ok(connection) => connection,
        Err(refusal) => return refusal.into_response(),
    };
    connection.close(None);
    (StatusCode::ACCEPTED, "").into_response()
}
