//! The SignalR JSON hub protocol: record-separator framing, the handshake and hub messages.
//!
//! Wire format (dotnet/aspnetcore `src/SignalR/docs/specs/HubProtocol.md`, and the official
//! client's `TextMessageFormat.ts` / `HandshakeProtocol.ts` / `JsonHubProtocol.ts`): every record
//! is one JSON object followed by exactly one 0x1E. A frame (WebSocket message or HTTP body) may
//! hold several records, and a record may be split across frames.

use serde::Deserialize;
use serde_json::{Value, json};
use thiserror::Error;

pub const RECORD_SEPARATOR: char = '\u{1e}';

pub const INVOCATION: u64 = 1;
pub const STREAM_ITEM: u64 = 2;
pub const COMPLETION: u64 = 3;
pub const STREAM_INVOCATION: u64 = 4;
pub const CANCEL_INVOCATION: u64 = 5;
pub const PING: u64 = 6;
pub const CLOSE: u64 = 7;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("message exceeds the maximum size of {0} bytes")]
    TooLarge(usize),
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Splits incoming text into complete records, keeping an unfinished tail for the next frame.
#[derive(Debug)]
pub struct RecordBuffer {
    partial: String,
    max_record: usize,
}

impl RecordBuffer {
    pub fn new(max_record: usize) -> Self {
        RecordBuffer {
            partial: String::new(),
            max_record,
        }
    }

    /// Appends `text` and returns every record it completes (separator removed). A record, or
    /// an unfinished tail, longer than the maximum is an error.
    pub fn push(&mut self, text: &str) -> Result<Vec<String>, ProtocolError> {
        let mut records = Vec::new();
        let mut rest = text;
        while let Some(pos) = rest.find(RECORD_SEPARATOR) {
            let piece = &rest[..pos];
            if self.partial.len() + piece.len() > self.max_record {
                return Err(ProtocolError::TooLarge(self.max_record));
            }
            let mut record = std::mem::take(&mut self.partial);
            record.push_str(piece);
            records.push(record);
            rest = &rest[pos + RECORD_SEPARATOR.len_utf8()..];
        }
        if self.partial.len() + rest.len() > self.max_record {
            return Err(ProtocolError::TooLarge(self.max_record));
        }
        self.partial.push_str(rest);
        Ok(records)
    }

    /// Bytes of an unfinished record waiting for its separator.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// `{"protocol":"json","version":1}`.
#[derive(Debug, Deserialize)]
struct HandshakeRequest {
    protocol: String,
    version: u64,
}

/// Checks a handshake record. `Err` holds the text for the `{"error": ...}` reply.
pub fn parse_handshake(record: &str) -> Result<(), String> {
    let request: HandshakeRequest = serde_json::from_str(record)
        .map_err(|_| "Handshake request is not valid JSON with 'protocol' and 'version'.")?;
    if request.protocol != "json" {
        return Err(format!(
            "The protocol '{}' is not supported; this hub speaks 'json'.",
            request.protocol
        ));
    }
    if request.version != 1 {
        return Err(format!(
            "The server does not support version {} of the 'json' protocol.",
            request.version
        ));
    }
    Ok(())
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
    /// A type the hub does not act on (StreamItem, Completion, CancelInvocation, Ack, Sequence,
    /// or one from a newer protocol): ignored, as the spec asks of receivers.
    Ignored(u64),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    #[serde(rename = "type")]
    kind: Option<u64>,
    invocation_id: Option<Value>,
    target: Option<String>,
    arguments: Option<Vec<Value>>,
}

/// Parses one record after the handshake. Field order does not matter.
pub fn parse_message(record: &str) -> Result<Incoming, ProtocolError> {
    let raw: RawMessage = serde_json::from_str(record)
        .map_err(|e| ProtocolError::Invalid(format!("not a JSON hub message ({e})")))?;
    let kind = raw
        .kind
        .ok_or_else(|| ProtocolError::Invalid("missing 'type'".into()))?;
    let invocation_id = match raw.invocation_id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => {
            return Err(ProtocolError::Invalid(
                "'invocationId' must be a string".into(),
            ));
        }
    };
    Ok(match kind {
        INVOCATION => Incoming::Invocation {
            invocation_id,
            target: raw
                .target
                .ok_or_else(|| ProtocolError::Invalid("invocation without 'target'".into()))?,
            arguments: raw
                .arguments
                .ok_or_else(|| ProtocolError::Invalid("invocation without 'arguments'".into()))?,
        },
        STREAM_INVOCATION => Incoming::StreamInvocation {
            invocation_id: invocation_id.ok_or_else(|| {
                ProtocolError::Invalid("stream invocation without 'invocationId'".into())
            })?,
        },
        PING => Incoming::Ping,
        CLOSE => Incoming::Close,
        other => Incoming::Ignored(other),
    })
}

fn record(value: Value) -> String {
    let mut text = value.to_string();
    text.push(RECORD_SEPARATOR);
    text
}

/// The successful handshake reply: `{}` and a separator, no `type`.
pub fn handshake_ok() -> String {
    record(json!({}))
}

pub fn handshake_error(error: &str) -> String {
    record(json!({ "error": error }))
}

pub fn ping() -> String {
    record(json!({ "type": PING }))
}

pub fn invocation(target: &str, arguments: Vec<Value>) -> String {
    record(json!({ "type": INVOCATION, "target": target, "arguments": arguments }))
}

pub fn completion_result(invocation_id: &str, result: Value) -> String {
    record(json!({ "type": COMPLETION, "invocationId": invocation_id, "result": result }))
}

pub fn completion_error(invocation_id: &str, error: &str) -> String {
    record(json!({ "type": COMPLETION, "invocationId": invocation_id, "error": error }))
}

pub fn close(error: Option<&str>, allow_reconnect: bool) -> String {
    let mut message = json!({ "type": CLOSE });
    if let Some(error) = error {
        message["error"] = json!(error);
    }
    if allow_reconnect {
        message["allowReconnect"] = json!(true);
    }
    record(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_several_records_and_keeps_a_tail() {
        let mut buffer = RecordBuffer::new(100);
        let records = buffer.push("{\"a\":1}\u{1e}{\"b\":2}\u{1e}{\"c\"").unwrap();
        assert_eq!(records, vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(buffer.pending(), 4);
        assert_eq!(buffer.push(":3}\u{1e}").unwrap(), vec!["{\"c\":3}"]);
        assert_eq!(buffer.pending(), 0);
    }

    #[test]
    fn refuses_oversized_records_even_unfinished() {
        let mut buffer = RecordBuffer::new(8);
        assert!(matches!(
            buffer.push("123456789"),
            Err(ProtocolError::TooLarge(8))
        ));
        let mut buffer = RecordBuffer::new(8);
        buffer.push("12345").unwrap();
        assert!(buffer.push("6789\u{1e}").is_err());
        let mut buffer = RecordBuffer::new(8);
        assert_eq!(buffer.push("12345678\u{1e}").unwrap().len(), 1);
    }

    #[test]
    fn handshake_accepts_json_v1_only() {
        assert!(parse_handshake(r#"{"version":1,"protocol":"json"}"#).is_ok());
        assert!(parse_handshake(r#"{"protocol":"messagepack","version":1}"#).is_err());
        assert!(parse_handshake(r#"{"protocol":"json","version":7}"#).is_err());
        assert!(parse_handshake("garbage").is_err());
    }

    #[test]
    fn parses_messages_with_fields_in_any_order() {
        let message =
            parse_message(r#"{"arguments":["x"],"target":"Ping","invocationId":"7","type":1}"#)
                .unwrap();
        assert_eq!(
            message,
            Incoming::Invocation {
                invocation_id: Some("7".into()),
                target: "Ping".into(),
                arguments: vec![json!("x")],
            }
        );
        assert_eq!(parse_message(r#"{"type":6}"#).unwrap(), Incoming::Ping);
        assert_eq!(
            parse_message(r#"{"type":7,"error":null}"#).unwrap(),
            Incoming::Close
        );
        assert_eq!(
            parse_message(r#"{"type":99}"#).unwrap(),
            Incoming::Ignored(99)
        );
        assert!(parse_message(r#"{"type":1,"target":"x"}"#).is_err());
        assert!(parse_message("nope").is_err());
    }

    #[test]
    fn writes_records_with_exactly_one_separator() {
        assert_eq!(handshake_ok(), "{}\u{1e}");
        assert_eq!(ping(), "{\"type\":6}\u{1e}");
        let close = close(Some("bye"), true);
        assert!(close.ends_with('\u{1e}') && close.matches('\u{1e}').count() == 1);
        let value: Value = serde_json::from_str(close.trim_end_matches('\u{1e}')).unwrap();
        assert_eq!(value, json!({"type":7,"error":"bye","allowReconnect":true}));
    }
}
