//! Inbound processing, shared by both transports: framing, handshake, limits, dispatch.

use crate::config::Limits;
use crate::connection::{CloseCode, Connection, TransportKind};
use crate::hub::{self, Hub};
use crate::metrics::Metrics;
use crate::protocol::{self, Decoder, Incoming, Outgoing, ProtocolError, RecordBuffer};
use crate::replay::Received;
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
    /// The handshake record, until its separator arrives.
    handshake: RecordBuffer,
    /// The agreed protocol's records, after the handshake.
    decoder: Option<Decoder>,
    max_record: usize,
    bucket: Bucket,
    /// Stateful reconnect: the client's numbering, to skip what it resends.
    received: Received,
}

impl Session {
    pub fn new(limits: &Limits) -> Self {
        Session {
            handshake: RecordBuffer::new(limits.max_message_bytes),
            decoder: None,
            max_record: limits.max_message_bytes,
            received: Received::default(),
            bucket: Bucket {
                tokens: limits.invocation_burst as f64,
                rate: limits.invocations_per_sec as f64,
                burst: limits.invocation_burst as f64,
                last: Instant::now(),
            },
        }
    }

    /// Handles one WebSocket message or POST body.
    pub async fn receive(&mut self, hub: &Hub, connection: &Arc<Connection>, bytes: &[u8]) -> Flow {
        connection.touch_received();
        let mut bytes = bytes;
        let rest;
        if self.decoder.is_none() {
            match self.handshake(hub, connection, bytes) {
                Ok(Some(after)) => {
                    rest = after;
                    bytes = &rest;
                }
                Ok(None) => return Flow::Continue,
                Err(flow) => return flow,
            }
        }
        let decoder = self.decoder.as_mut().expect("handshake done");
        let messages = match decoder.push(bytes) {
            Ok(messages) => messages,
            Err(e) => return protocol_error(hub, connection, &e),
        };
        for message in messages {
            if connection.is_closing() {
                return Flow::Closed;
            }
            Metrics::incr(&hub.metrics.messages_received);
            if connection.is_resumable() {
                match message {
                    Incoming::Sequence(id) => {
                        if let Err(e) = self.received.sequence(id) {
                            return protocol_error(hub, connection, &e);
                        }
                        continue;
                    }
                    Incoming::Ack(id) => {
                        connection.ack(id);
                        continue;
                    }
                    _ if message.is_invocation_message() && !self.received.accept() => continue,
                    _ => {}
                }
            }
            if self.dispatch(hub, connection, message).await == Flow::Closed {
                return Flow::Closed;
            }
        }
        if let Some(id) = self.received.ack_due() {
            connection.send_message(&Outgoing::Ack(id));
        }
        Flow::Continue
    }

    /// Reads the handshake record once it is complete, answers it and picks the decoder for what
    /// follows. `Ok(Some(rest))`: the bytes after the handshake; `Ok(None)`: not complete yet.
    fn handshake(
        &mut self,
        hub: &Hub,
        connection: &Arc<Connection>,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, Flow> {
        // Only the first separator ends the handshake: MessagePack records may hold 0x1E.
        let (head, rest) = match bytes.iter().position(|&b| b == protocol::RECORD_SEPARATOR) {
            Some(pos) => (&bytes[..=pos], bytes[pos + 1..].to_vec()),
            None => (bytes, Vec::new()),
        };
        let record = match self.handshake.push(head) {
            Ok(mut records) if !records.is_empty() => records.remove(0),
            Ok(_) => return Ok(None),
            Err(e) => return Err(protocol_error(hub, connection, &e)),
        };
        Metrics::incr(&hub.metrics.messages_received);
        match protocol::parse_handshake(&record) {
            Ok((chosen, version)) => {
                // Stateful reconnect needs all three: offered at negotiate, a version 2
                // handshake, and WebSockets (the official client resumes no other transport).
                if connection.reconnect_offered
                    && version >= 2
                    && connection.transport() == Some(TransportKind::WebSockets)
                {
                    connection.enable_replay();
                }
                let replay = hub.history.as_ref().zip(connection.replay_after.get());
                if replay.is_some() {
                    // Before the protocol is set, so that no live push can pass the replay.
                    connection.hold_live();
                }
                connection.set_protocol(chosen);
                connection.send(protocol::handshake_ok(chosen));
                if let Some((history, &after)) = replay {
                    tokio::spawn(crate::fanout::replay(
                        Arc::clone(history),
                        Arc::clone(&hub.metrics),
                        Arc::clone(connection),
                        after,
                    ));
                }
                self.decoder = Some(chosen.decoder(self.max_record));
                Ok(Some(rest))
            }
            Err(error) => {
                Metrics::incr(&hub.metrics.protocol_errors);
                connection.close(Some(protocol::handshake_error(&error)));
                Err(Flow::Closed)
            }
        }
    }

    async fn dispatch(
        &mut self,
        hub: &Hub,
        connection: &Arc<Connection>,
        message: Incoming,
    ) -> Flow {
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
                if let Some(invocation_id) = invocation_id {
                    connection.send_message(&Outgoing::Completion {
                        invocation_id: &invocation_id,
                        outcome: &outcome,
                    });
                }
            }
            Incoming::StreamInvocation { invocation_id } => {
                connection.send_message(&Outgoing::Completion {
                    invocation_id: &invocation_id,
                    outcome: &Err("Streaming hub methods are not supported by this hub.".into()),
                });
            }
            Incoming::Close => {
                connection.close(None);
                return Flow::Closed;
            }
            Incoming::Ping | Incoming::Ack(_) | Incoming::Sequence(_) | Incoming::Ignored(_) => {}
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
