//! Inbound processing, shared by both transports: framing, handshake, limits, dispatch.

use crate::config::Limits;
use crate::connection::{CloseCode, Connection};
use crate::hub::{self, Hub};
use crate::metrics::Metrics;
use crate::protocol::{self, Incoming, ProtocolError, RecordBuffer};
use std::sync::Arc;
use std::time::Instant;

/// What the transport does after a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Closed,
}

/// A token bucket: `rate` invocations per second, up to `burst` at once.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub struct Session {
    buffer: RecordBuffer,
    bucket: Bucket,
}

impl Session {
    pub fn new(limits: &Limits) -> Self {
        Session {
            buffer: RecordBuffer::new(limits.max_message_bytes),
            bucket: Bucket {
                tokens: limits.invocation_burst as f64,
                rate: limits.invocations_per_sec as f64,
                burst: limits.invocation_burst as f64,
                last: Instant::now(),
            },
        }
    }

    /// Handles one WebSocket text message or POST body.
    pub async fn receive(&mut self, hub: &Hub, connection: &Arc<Connection>, text: &str) -> Flow {
        connection.touch_received();
        let records = match self.buffer.push(text) {
            Ok(records) => records,
            Err(e) => return protocol_error(hub, connection, &e),
        };
        for record in records {
            if connection.is_closing() {
                return Flow::Closed;
            }
            Metrics::incr(&hub.metrics.messages_received);
            if !connection.is_handshaken() {
                match protocol::parse_handshake(&record) {
                    Ok(()) => {
                        connection.send(protocol::handshake_ok());
                        connection.set_handshaken();
                        continue;
                    }
                    Err(error) => {
                        Metrics::incr(&hub.metrics.protocol_errors);
                        connection.close(Some(protocol::handshake_error(&error)));
                        return Flow::Closed;
                    }
                }
            }
            let message = match protocol::parse_message(&record) {
                Ok(message) => message,
                Err(e) => return protocol_error(hub, connection, &e),
            };
            match message {
                Incoming::Invocation {
                    invocation_id,
                    target,
                    arguments,
                } => {
                    if !self.bucket.take() {
                        Metrics::incr(&hub.metrics.protocol_errors);
                        tracing::warn!(connection = %connection.id, "invocation rate exceeded; closing");
                        connection.close_with_error(
                            "Connection closed with an error. Too many invocations.",
                            false,
                        );
                        return Flow::Closed;
                    }
                    Metrics::incr(&hub.metrics.invocations);
                    let outcome = hub::invoke(hub, &connection.user, &target, arguments).await;
                    if let Some(id) = invocation_id {
                        let reply = match outcome {
                            Ok(result) => protocol::completion_result(&id, result),
                            Err(error) => protocol::completion_error(&id, &error),
                        };
                        connection.send(reply);
                    }
                }
                Incoming::StreamInvocation { invocation_id } => {
                    connection.send(protocol::completion_error(
                        &invocation_id,
                        "Streaming hub methods are not supported by this hub.",
                    ));
                }
                Incoming::Close => {
                    connection.close(None);
                    return Flow::Closed;
                }
                Incoming::Ping | Incoming::Ignored(_) => {}
            }
        }
        Flow::Continue
    }
}

fn protocol_error(hub: &Hub, connection: &Connection, error: &ProtocolError) -> Flow {
    Metrics::incr(&hub.metrics.protocol_errors);
    tracing::info!(connection = %connection.id, %error, "closing connection after a protocol error");
    let code = match error {
        ProtocolError::TooLarge(_) => CloseCode::TooBig,
        ProtocolError::Invalid(_) => CloseCode::Normal,
    };
    connection.close_with(
        &format!("Connection closed with an error. {error}"),
        false,
        code,
    );
    Flow::Closed
}
