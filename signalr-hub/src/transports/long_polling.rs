//! The Long Polling transport (TransportProtocols.md, "Long Polling"):
//! - `GET ?id=`: the first poll answers 200 with an empty body at once; later polls wait for
//!   records (200 with them) or the poll timeout (200 empty); 204 once the connection is over.
//! - `POST ?id=`: records from the client.
//! - `DELETE ?id=`: the client ends the connection (202).

use super::{ConnectQuery, existing, refuse};
use crate::connection::{Attach, Connection, TransportKind};
use crate::hub::Hub;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_core::UserId;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

/// A poll answer carries at most about this much; the rest waits for the next poll.
const MAX_POLL_BYTES: usize = 256 * 1024;

fn ok(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

pub async fn poll(hub: Arc<Hub>, user: UserId, query: ConnectQuery) -> Response {
    let connection = match existing(&hub, query.id.as_deref(), &user) {
        Ok(connection) => connection,
        Err(refusal) => return refusal.into_response(),
    };
    match connection.attach(TransportKind::LongPolling) {
        Attach::New => return ok(String::new()),
        Attach::Existing => {}
        Attach::Conflict(_) => {
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
        () = tokio::time::sleep(hub.limits.long_poll) => return ok(String::new()),
        () = superseded(&connection, generation) => return ok(String::new()),
    };
    let Some(mut body) = first else {
        return StatusCode::NO_CONTENT.into_response();
    };
    while body.len() < MAX_POLL_BYTES {
        match receiver.try_recv() {
            Ok(record) => body.push_str(&record),
            Err(_) => break,
        }
    }
    ok(body)
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
fn finish(connection: &Connection, receiver: &mut tokio::sync::mpsc::Receiver<String>) -> Response {
    let mut body = String::new();
    while let Ok(record) = receiver.try_recv() {
        body.push_str(&record);
    }
    if let Some((close, _)) = connection.take_close_record() {
        body.push_str(&close);
    }
    if body.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ok(body)
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
    let Ok(text) = std::str::from_utf8(&body) else {
        connection.close_with_error(
            "Connection closed with an error. The body is not UTF-8 text.",
            false,
        );
        return refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
    };
    let mut session = connection.session.lock().await;
    session.receive(&hub, &connection, text).await;
    ok(String::new())
}

pub async fn delete(hub: Arc<Hub>, user: UserId, query: ConnectQuery) -> Response {
    let connection = match existing(&hub, query.id.as_deref(), &user) {
        Ok(connection) => connection,
        Err(refusal) => return refusal.into_response(),
    };
    connection.close(None);
    (StatusCode::ACCEPTED, "").into_response()
}
