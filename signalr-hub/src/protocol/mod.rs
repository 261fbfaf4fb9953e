//! The SignalR hub protocols: the handshake, hub messages, and the two encodings the official
//! clients speak, JSON (text, records ended by 0x1E) and MessagePack (binary, records prefixed by
//! their length).
//!
//! Specs: dotnet/aspnetcore `src/SignalR/docs/specs/HubProtocol.md`; the official client's
//! `TextMessageFormat.ts`, `HandshakeProtocol.ts`, `JsonHubProtocol.ts`, and
//! `signalr-protocol-msgpack`'s `BinaryMessageFormat.ts` and `MessagePackHubProtocol.ts`.
//! A frame (WebSocket message or HTTP body) may hold several records, and a record may be split
//! across frames.

mod handshake;
mod json;
mod msgpack;

pub use handshake::{handshake_error, handshake_ok, parse_handshake};
pub use json::RecordBuffer;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use thiserror::Error;

pub const RECORD_SEPARATOR: u8 = 0x1e;

pub const INVOCATION: u64 = 1;
pub const STREAM_ITEM: u64 = 2;
pub const COMPLETION: u64 = 3;
pub const STREAM_INVOCATION: u64 = 4;
pub const CANCEL_INVOCATION: u64 = 5;
pub const PING: u64 = 6;
pub const CLOSE: u64 = 7;
pub const ACK: u64 = 8;
pub const SEQUENCE: u64 = 9;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("message exceeds the maximum size of {0} bytes")]
    TooLarge(usize),
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// A hub protocol a client may choose in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubProtocol {
    Json,
    MessagePack,
}

impl HubProtocol {
    pub const ALL: [HubProtocol; 2] = [HubProtocol::Json, HubProtocol::MessagePack];

    /// The name in the handshake request.
    pub fn name(self) -> &'static str {
        match self {
            HubProtocol::Json => "json",
            HubProtocol::MessagePack => "messagepack",
        }
    }

    pub fn encode(self, message: &Outgoing) -> Frame {
        match self {
            HubProtocol::Json => Frame::Text(json::encode(message).into()),
            HubProtocol::MessagePack => Frame::Binary(msgpack::encode(message).into()),
        }
    }

    /// Splits and parses what follows the handshake.
    pub fn decoder(self, max_record: usize) -> Decoder {
        match self {
            HubProtocol::Json => Decoder::Json(RecordBuffer::new(max_record)),
            HubProtocol::MessagePack => {
                Decoder::MessagePack(msgpack::LengthBuffer::new(max_record))
            }
        }
    }
}

/// What goes out on a transport: one or more whole records. Cloning shares the bytes, so one
/// notification encoded once goes to every recipient without a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Frame {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(text) => text.as_bytes(),
            Frame::Binary(bytes) => bytes,
        }
    }
}

/// A message to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing<'a> {
    Ping,
    /// A non-blocking invocation of a client method (no invocation id).
    Invocation {
        target: &'a str,
        arguments: &'a [Value],
    },
    Completion {
        invocation_id: &'a str,
        outcome: &'a Result<Value, String>,
    },
    Close {
        error: Option<&'a str>,
        allow_reconnect: bool,
    },
    /// Stateful reconnect: every message up to this sequence id arrived.
    Ack(u64),
    /// Stateful reconnect: the next message sent has this sequence id.
    Sequence(u64),
}

/// A message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `invocation_id` is `None` for a non-blocking invocation (`connection.send`): no Completion.
    Invocation {
        invocation_id: Option<String>,
        target: String,
        arguments: Vec<Value>,
    },
    StreamInvocation {
        invocation_id: String,
    },
    Ping,
    Close,
    Ack(u64),
    Sequence(u64),
    /// A type the hub does not act on (StreamItem, Completion, CancelInvocation, or one from a
    /// newer protocol): ignored, as the spec asks of receivers.
    Ignored(u64),
}

impl Incoming {
    /// Numbered by stateful reconnect: the invocation messages, types 1 to 5.
    pub fn is_invocation_message(&self) -> bool {
        match self {
            Incoming::Invocation { .. } | Incoming::StreamInvocation { .. } => true,
            Incoming::Ignored(kind) => (INVOCATION..=CANCEL_INVOCATION).contains(kind),
            _ => false,
        }
    }
}

/// Splits a protocol's records out of incoming frames and parses them.
#[derive(Debug)]
pub enum Decoder {
    Json(RecordBuffer),
    MessagePack(msgpack::LengthBuffer),
}

impl Decoder {
    /// Every message that `bytes` completes, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Incoming>, ProtocolError> {
        match self {
            Decoder::Json(buffer) => buffer
                .push(bytes)?
                .iter()
                .map(|record| json::parse_message(record))
                .collect(),
            Decoder::MessagePack(buffer) => buffer
                .push(bytes)?
                .iter()
                .map(|record| msgpack::parse_message(record))
                .collect(),
        }
    }
}
