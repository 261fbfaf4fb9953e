//! The WebSockets transport: `GET /hubs/order-status[?id=<connectionToken>]` with an upgrade.
//! Without `id` (skipNegotiation) a new connection starts; an unknown `id` is 404 and a second
//! socket for the same `id` 409. Frames go out as Text (JSON) or Binary (MessagePack) messages,
//! never split; either kind comes in (the official client sends its handshake as text).

use super::{ConnectQuery, existing, refuse};
use crate::connection::{Attach, CloseCode, Connection, TransportKind};
use crate::hub::Hub;
use crate::protocol::{Frame, Outgoing, ProtocolError};
use crate::session::Flow;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use orders_core::UserId;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the final records and the close frame may take to flush.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

pub async fn connect(
    hub: Arc<Hub>,
    upgrade: WebSocketUpgrade,
    user: UserId,
    query: ConnectQuery,
) -> Response {
    if hub.shutting_down.load(Relaxed) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the hub is shutting down");
    }
    let connection = match query.id.as_deref() {
        // skipNegotiation: the socket is a new connection.
        None => match hub.registry.create(user, false, false) {
            Ok(connection) => {
                if let Some(after) = query.after {
                    let _ = connection.replay_after.set(after);
                }
                connection
            }
            Err(_) => return refuse(StatusCode::SERVICE_UNAVAILABLE, "too many connections"),
        },
        Some(id) => match existing(&hub, Some(id), &user) {
            Ok(connection) => connection,
            Err(refusal) => return refusal.into_response(),
        },
    };
    let resume = match connection.attach(TransportKind::WebSockets) {
        Attach::New => false,
        Attach::Resume => true,
        Attach::Existing | Attach::Conflict(TransportKind::WebSockets) => {
            return refuse(
                StatusCode::CONFLICT,
                "a WebSocket is already open for this connection",
            );
        }
        Attach::Conflict(TransportKind::LongPolling) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "cannot change transports mid-connection",
            );
        }
    };
    // Frames up to a few records' worth are read whole; the record size limit itself is
    // enforced (with a Close message) by the session.
    let frame_limit = (hub.limits.max_message_bytes * 4).max(64 * 1024);
    let failed = Arc::clone(&connection);
    upgrade
        .max_message_size(frame_limit)
        .max_frame_size(frame_limit)
        // tungstenite allocates its read buffer up front and keeps it per socket: the 128 KiB
        // default would be most of an idle connection's memory. Clients send small records (a
        // Ping every 15 s, acks); a larger frame still arrives whole, the buffer grows for it.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_failed_upgrade(move |e| {
            tracing::info!(error = %e, "WebSocket upgrade failed");
            failed.close(None);
        })
        .on_upgrade(move |socket| run(hub, connection, socket, resume))
}

const READ_BUFFER_BYTES: usize = 1024;

/// Reads the socket until it ends. A socket that drops (no close frame) leaves a resumable
/// connection waiting for the client's stateful reconnect; `resume`: this socket is one.
async fn run(hub: Arc<Hub>, connection: Arc<Connection>, socket: WebSocket, resume: bool) {
    let this_socket = connection.new_socket();
    let (sink, mut stream) = socket.split();
    let writer = tokio::spawn(write(
        Arc::clone(&connection),
        sink,
        this_socket.clone(),
        resume,
    ));
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    let bytes = match &message {
                        Message::Text(text) => text.as_bytes(),
                        Message::Binary(bytes) => bytes,
                        _ => unreachable!("matched above"),
                    };
                    let mut session = connection.session.lock().await;
                    if session.receive(&hub, &connection, bytes).await == Flow::Closed {
                        break;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => connection.touch_received(),
                Some(Ok(Message::Close(_))) => {
                    connection.close(None);
                    break;
                }
                None => {
                    connection.socket_lost(&this_socket);
                    break;
                }
                Some(Err(e)) => {
                    if too_big(&e) {
                        crate::metrics::Metrics::incr(&hub.metrics.protocol_errors);
                        let error = ProtocolError::TooLarge(hub.limits.max_message_bytes);
                        connection.close_with(
                            &format!("Connection closed with an error. {error}"),
                            false,
                            CloseCode::TooBig,
                        );
                    } else {
                        tracing::debug!(connection = %connection.id, error = %e, "WebSocket read failed");
                        connection.socket_lost(&this_socket);
                    }
                    break;
                }
            },
            () = connection.closed() => break,
            // A resume took over, or the writer lost the socket.
            () = this_socket.cancelled() => break,
        }
    }
    let _ = writer.await;
}

/// A frame or message over `HUB_MAX_MESSAGE_BYTES`, as the WebSocket layer reports it.
fn too_big(error: &axum::Error) -> bool {
    let source: &(dyn std::error::Error + 'static) = error;
    std::iter::successors(Some(source), |e| e.source()).any(|e| {
        matches!(
            e.downcast_ref::<tungstenite::Error>(),
            Some(tungstenite::Error::Capacity(_))
        )
    })
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

async fn write(
    connection: Arc<Connection>,
    mut sink: Sink,
    socket: CancellationToken,
    resume: bool,
) {
    // A resumed socket waits here until the socket it replaces has let go.
    let mut receiver = connection.receiver.lock().await;
    if resume {
        // The Sequence message first: the official client ignores everything until it comes.
        let (first, frames) = connection.resume(&mut receiver);
        let protocol = connection
            .protocol()
            .expect("a resumable connection is handshaken");
        for frame in std::iter::once(protocol.encode(&Outgoing::Sequence(first))).chain(frames) {
            if sink.send(message(frame)).await.is_err() {
                return connection.socket_lost(&socket);
            }
        }
    }
    loop {
        tokio::select! {
            biased;
            record = receiver.recv() => {
                let Some(record) = record else { break };
                tokio::select! {
                    sent = sink.send(message(*record)) => {
                        if sent.is_err() {
                            return connection.socket_lost(&socket);
                        }
                    }
                    // A client that stopped reading: give up on it.
                    () = connection.closed() => break,
                    () = socket.cancelled() => return,
                }
            }
            () = connection.closed() => break,
            // The connection goes on over a newer socket, or waits for one.
            () = socket.cancelled() => return,
        }
    }
    // Flush what is queued, the Close message, then the close frame, within a bound.
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        while let Ok(record) = receiver.try_recv() {
            sink.send(message(*record)).await?;
        }
        let code = match connection.take_close_record() {
            Some((record, code)) => {
                sink.send(message(record)).await?;
                code
            }
            None => CloseCode::Normal,
        };
        sink.send(Message::Close(Some(CloseFrame {
            code: code.value(),
            reason: "".into(),
        })))
        .await?;
        sink.close().await
    })
    .await;
}

fn message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => Message::Text(text),
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}
