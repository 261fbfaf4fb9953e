//! The JSON hub protocol: every record is one JSON object followed by exactly one 0x1E.

use super::{
    ACK, CLOSE, COMPLETION, INVOCATION, Incoming, Outgoing, PING, ProtocolError, RECORD_SEPARATOR,
    SEQUENCE, STREAM_INVOCATION,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Splits incoming bytes into complete records, keeping an unfinished tail for the next frame.
#[derive(Debug)]
pub struct RecordBuffer {
    partial: Vec<u8>,
    max_record: usize,
}

impl RecordBuffer {
    pub fn new(max_record: usize) -> Self {
        RecordBuffer {
            partial: Vec::new(),
            max_record,
        }
    }

    /// Appends `bytes` and returns every record they complete (separator removed). A record, or
    /// an unfinished tail, longer than the maximum is an error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut records = Vec::new();
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == RECORD_SEPARATOR) {
            let piece = &rest[..pos];
            if self.partial.len() + piece.len() > self.max_record {
                return Err(ProtocolError::TooLarge(self.max_record));
            }
            let mut record = std::mem::take(&mut self.partial);
            record.extend_from_slice(piece);
            records.push(record);
            rest = &rest[pos + 1..];
        }
        if self.partial.len() + rest.len() > self.max_record {
            return Err(ProtocolError::TooLarge(self.max_record));
        }
        self.partial.extend_from_slice(rest);
        Ok(records)
    }

    /// Bytes of an unfinished record waiting for its separator.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMessage {
    #[serde(rename = "type")]
    kind: Option<u64>,
    invocation_id: Option<Value>,
    target: Option<String>,
    arguments: Option<Vec<Value>>,
    sequence_id: Option<u64>,
}

fn invalid(what: &str) -> ProtocolError {
    ProtocolError::Invalid(what.into())
}

/// Parses one record after the handshake. Field order does not matter.
pub fn parse_message(record: &[u8]) -> Result<Incoming, ProtocolError> {
    let raw: RawMessage = serde_json::from_slice(record)
        .map_err(|e| ProtocolError::Invalid(format!("not a JSON hub message ({e})")))?;
    let kind = raw.kind.ok_or_else(|| invalid("missing 'type'"))?;
    let invocation_id = match raw.invocation_id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(invalid("'invocationId' must be a string")),
    };
    let sequence_id = || {
        raw.sequence_id
            .ok_or_else(|| invalid("missing 'sequenceId'"))
    };
    Ok(match kind {
        INVOCATION => Incoming::Invocation {
            invocation_id,
            target: raw
                .target
                .ok_or_else(|| invalid("invocation without 'target'"))?,
            arguments: raw
                .arguments
                .ok_or_else(|| invalid("invocation without 'arguments'"))?,
        },
        STREAM_INVOCATION => Incoming::StreamInvocation {
            invocation_id: invocation_id
                .ok_or_else(|| invalid("stream invocation without 'invocationId'"))?,
        },
        PING => Incoming::Ping,
        CLOSE => Incoming::Close,
        ACK => Incoming::Ack(sequence_id()?),
        SEQUENCE => Incoming::Sequence(sequence_id()?),
        other => Incoming::Ignored(other),
    })
}

pub fn encode(message: &Outgoing) -> String {
    let value = match message {
        Outgoing::Ping => json!({ "type": PING }),
        Outgoing::Invocation { target, arguments } => {
            json!({ "type": INVOCATION, "target": target, "arguments": arguments })
        }
        Outgoing::Completion {
            invocation_id,
            outcome: Ok(result),
        } => json!({ "type": COMPLETION, "invocationId": invocation_id, "result": result }),
        Outgoing::Completion {
            invocation_id,
            outcome: Err(error),
        } => json!({ "type": COMPLETION, "invocationId": invocation_id, "error": error }),
        Outgoing::Close {
            error,
            allow_reconnect,
        } => {
            let mut close = json!({ "type": CLOSE });
            if let Some(error) = error {
                close["error"] = json!(error);
            }
            if *allow_reconnect {
                close["allowReconnect"] = json!(true);
            }
            close
        }
        Outgoing::Ack(id) => json!({ "type": ACK, "sequenceId": id }),
        Outgoing::Sequence(id) => json!({ "type": SEQUENCE, "sequenceId": id }),
    };
    record(&value)
}

/// `value` and one separator.
pub fn record(value: &Value) -> String {
    let mut text = value.to_string();
    text.push(char::from(RECORD_SEPARATOR));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_several_records_and_keeps_a_tail() {
        let mut buffer = RecordBuffer::new(100);
        let records = buffer.push(b"{\"a\":1}\x1e{\"b\":2}\x1e{\"c\"").unwrap();
        assert_eq!(records, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(buffer.pending(), 4);
        assert_eq!(
            buffer.push(b":3}\x1e").unwrap(),
            vec![b"{\"c\":3}".to_vec()]
        );
        assert_eq!(buffer.pending(), 0);
    }

    #[test]
    fn refuses_oversized_records_even_unfinished() {
        let mut buffer = RecordBuffer::new(8);
        assert!(matches!(
            buffer.push(b"123456789"),
            Err(ProtocolError::TooLarge(8))
        ));
        let mut buffer = RecordBuffer::new(8);
        buffer.push(b"12345").unwrap();
        assert!(buffer.push(b"6789\x1e").is_err());
        let mut buffer = RecordBuffer::new(8);
        assert_eq!(buffer.push(b"12345678\x1e").unwrap().len(), 1);
    }

    #[test]
    fn parses_messages_with_fields_in_any_order() {
        let message =
            parse_message(br#"{"arguments":["x"],"target":"Ping","invocationId":"7","type":1}"#)
                .unwrap();
        assert_eq!(
            message,
            Incoming::Invocation {
                invocation_id: Some("7".into()),
                target: "Ping".into(),
                arguments: vec![json!("x")],
            }
        );
        assert_eq!(parse_message(br#"{"type":6}"#).unwrap(), Incoming::Ping);
        assert_eq!(
            parse_message(br#"{"type":7,"error":null}"#).unwrap(),
            Incoming::Close
        );
        assert_eq!(
            parse_message(br#"{"sequenceId":12,"type":8}"#).unwrap(),
            Incoming::Ack(12)
        );
        assert_eq!(
            parse_message(br#"{"type":9,"sequenceId":3}"#).unwrap(),
            Incoming::Sequence(3)
        );
        assert_eq!(
            parse_message(br#"{"type":99}"#).unwrap(),
            Incoming::Ignored(99)
        );
        assert!(parse_message(br#"{"type":8}"#).is_err());
        assert!(parse_message(br#"{"type":1,"target":"x"}"#).is_err());
        assert!(parse_message(b"nope").is_err());
    }

    #[test]
    fn writes_records_with_exactly_one_separator() {
        assert_eq!(encode(&Outgoing::Ping), "{\"type\":6}\u{1e}");
        let close = encode(&Outgoing::Close {
            error: Some("bye"),
            allow_reconnect: true,
        });
        assert!(close.ends_with('\u{1e}') && close.matches('\u{1e}').count() == 1);
        let value: Value = serde_json::from_str(close.trim_end_matches('\u{1e}')).unwrap();
        assert_eq!(value, json!({"type":7,"error":"bye","allowReconnect":true}));
        let sequence = encode(&Outgoing::Sequence(5));
        let value: Value = serde_json::from_str(sequence.trim_end_matches('\u{1e}')).unwrap();
        assert_eq!(value, json!({"type":9,"sequenceId":5}));
    }
}
