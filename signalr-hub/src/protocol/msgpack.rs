//! The MessagePack hub protocol: every record is a MessagePack array, prefixed by its length as
//! a varint (7 bits a byte, least significant first, at most 5 bytes: `BinaryMessageFormat.ts`).
//! Layouts (`MessagePackHubProtocol.ts`, HubProtocol.md "MessagePack Encoding"):
//! `[1, headers, invocationId, target, arguments, streamIds]`, `[3, headers, invocationId,
//! resultKind, result]` (1 error, 2 void, 3 a result), `[6]`, `[7, error, allowReconnect]`,
//! `[8, sequenceId]`, `[9, sequenceId]`.

use super::{
    ACK, CLOSE, COMPLETION, INVOCATION, Incoming, Outgoing, PING, ProtocolError, SEQUENCE,
    STREAM_INVOCATION,
};
use rmpv::Value as Pack;
use serde_json::{Map, Number, Value};

const MAX_PREFIX_BYTES: usize = 5;
const ERROR_RESULT: u64 = 1;
const NON_VOID_RESULT: u64 = 3;

/// Splits incoming bytes into length-prefixed records, keeping an unfinished one.
#[derive(Debug)]
pub struct LengthBuffer {
    pending: Vec<u8>,
    max_record: usize,
}

impl LengthBuffer {
    pub fn new(max_record: usize) -> Self {
        LengthBuffer {
            pending: Vec::new(),
            max_record,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        self.pending.extend_from_slice(bytes);
        let mut records = Vec::new();
        let mut start = 0;
        while let Some((length, prefix)) = read_length(&self.pending[start..])? {
            if length > self.max_record {
                return Err(ProtocolError::TooLarge(self.max_record));
            }
            let body = start + prefix;
            if self.pending.len() < body + length {
                break;
            }
            records.push(self.pending[body..body + length].to_vec());
            start = body + length;
        }
        self.pending.drain(..start);
        if self.pending.len() > self.max_record + MAX_PREFIX_BYTES {
            return Err(ProtocolError::TooLarge(self.max_record));
        }
        Ok(records)
    }
}

/// The length and the prefix's size, or `None` while the prefix is incomplete.
fn read_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length = 0usize;
    for (i, &byte) in bytes.iter().take(MAX_PREFIX_BYTES).enumerate() {
        length |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((length, i + 1)));
        }
    }
    if bytes.len() >= MAX_PREFIX_BYTES {
        return Err(ProtocolError::Invalid(
            "a length prefix longer than 5 bytes".into(),
        ));
    }
    Ok(None)
}

fn write_length(mut length: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn invalid(what: impl Into<String>) -> ProtocolError {
    ProtocolError::Invalid(what.into())
}

pub fn parse_message(record: &[u8]) -> Result<Incoming, ProtocolError> {
    let value = rmpv::decode::read_value(&mut &record[..])
        .map_err(|e| invalid(format!("not a MessagePack hub message ({e})")))?;
    let Pack::Array(fields) = value else {
        return Err(invalid("a MessagePack hub message is an array"));
    };
    let mut fields = fields.into_iter();
    let kind = fields
        .next()
        .and_then(|k| k.as_u64())
        .ok_or_else(|| invalid("missing the message type"))?;
    let mut field = |name: &str| {
        fields
            .next()
            .ok_or_else(|| invalid(format!("missing {name}")))
    };
    Ok(match kind {
        INVOCATION | STREAM_INVOCATION => {
            let _headers = field("headers")?;
            let invocation_id = match field("invocationId")? {
                Pack::Nil => None,
                Pack::String(id) => Some(id.into_str().ok_or_else(|| invalid("invalid UTF-8"))?),
                _ => return Err(invalid("'invocationId' must be a string")),
            };
            if kind == STREAM_INVOCATION {
                let invocation_id = invocation_id
                    .ok_or_else(|| invalid("stream invocation without 'invocationId'"))?;
                return Ok(Incoming::StreamInvocation { invocation_id });
            }
            let target = match field("target")? {
                Pack::String(t) => t.into_str().ok_or_else(|| invalid("invalid UTF-8"))?,
                _ => return Err(invalid("'target' must be a string")),
            };
            let Pack::Array(arguments) = field("arguments")? else {
                return Err(invalid("'arguments' must be an array"));
            };
            Incoming::Invocation {
                invocation_id,
                target,
                arguments: arguments
                    .into_iter()
                    .map(to_json)
                    .collect::<Result<_, _>>()?,
            }
        }
        PING => Incoming::Ping,
        CLOSE => Incoming::Close,
        ACK | SEQUENCE => {
            let id = field("sequenceId")?
                .as_u64()
                .ok_or_else(|| invalid("'sequenceId' must be an integer"))?;
            if kind == ACK {
                Incoming::Ack(id)
            } else {
                Incoming::Sequence(id)
            }
        }
        other => Incoming::Ignored(other),
    })
}

pub fn encode(message: &Outgoing) -> Vec<u8> {
    let headers = || Pack::Map(Vec::new());
    let fields = match message {
        Outgoing::Ping => vec![PING.into()],
        Outgoing::Invocation { target, arguments } => vec![
            INVOCATION.into(),
            headers(),
            Pack::Nil,
            (*target).into(),
            Pack::Array(arguments.iter().map(from_json).collect()),
            Pack::Array(Vec::new()),
        ],
        Outgoing::Completion {
            invocation_id,
            outcome,
        } => {
            let (kind, payload) = match outcome {
                Ok(result) => (NON_VOID_RESULT, from_json(result)),
                Err(error) => (ERROR_RESULT, error.as_str().into()),
            };
            vec![
                COMPLETION.into(),
                headers(),
                (*invocation_id).into(),
                kind.into(),
                payload,
            ]
        }
        Outgoing::Close {
            error,
            allow_reconnect,
        } => vec![
            CLOSE.into(),
            error.map_or(Pack::Nil, Pack::from),
            (*allow_reconnect).into(),
        ],
        Outgoing::Ack(id) => vec![ACK.into(), (*id).into()],
        Outgoing::Sequence(id) => vec![SEQUENCE.into(), (*id).into()],
    };
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &Pack::Array(fields)).expect("writing to a Vec");
    let mut framed = Vec::with_capacity(body.len() + MAX_PREFIX_BYTES);
    write_length(body.len(), &mut framed);
    framed.extend_from_slice(&body);
    framed
}

/// Arguments as the JSON protocol would have given them: maps need string keys.
fn to_json(value: Pack) -> Result<Value, ProtocolError> {
    Ok(match value {
        Pack::Nil => Value::Null,
        Pack::Boolean(b) => Value::Bool(b),
        Pack::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => u.into(),
            (None, Some(s)) => s.into(),
            (None, None) => return Err(invalid("an integer out of range")),
        },
        Pack::F32(f) => float(f64::from(f))?,
        Pack::F64(f) => float(f)?,
        Pack::String(s) => Value::String(s.into_str().ok_or_else(|| invalid("invalid UTF-8"))?),
        Pack::Array(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Pack::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let Pack::String(key) = key else {
                    return Err(invalid("map keys must be strings"));
                };
                let key = key.into_str().ok_or_else(|| invalid("invalid UTF-8"))?;
                map.insert(key, to_json(value)?);
            }
            Value::Object(map)
        }
        Pack::Binary(_) | Pack::Ext(..) => {
            return Err(invalid("binary and extension values are not accepted"));
        }
    })
}

fn float(f: f64) -> Result<Value, ProtocolError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| invalid("a number JSON cannot hold"))
}

fn from_json(value: &Value) -> Pack {
    match value {
        Value::Null => Pack::Nil,
        Value::Bool(b) => Pack::Boolean(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into(),
            (None, Some(i), _) => i.into(),
            (None, None, f) => f.unwrap_or_default().into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => Pack::Array(items.iter().map(from_json).collect()),
        Value::Object(map) => Pack::Map(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(fields: Vec<Pack>) -> Vec<u8> {
        let mut body = Vec::new();
        rmpv::encode::write_value(&mut body, &Pack::Array(fields)).unwrap();
        let mut framed = Vec::new();
        write_length(body.len(), &mut framed);
        framed.extend(body);
        framed
    }

    #[test]
    fn length_prefixes_are_little_endian_varints() {
        let mut out = Vec::new();
        write_length(0x7f, &mut out);
        write_length(0x80, &mut out);
        write_length(300, &mut out);
        assert_eq!(out, [0x7f, 0x80, 0x01, 0xac, 0x02]);
        assert_eq!(read_length(&[0xac, 0x02]).unwrap(), Some((300, 2)));
        assert_eq!(read_length(&[0xac]).unwrap(), None);
        assert!(read_length(&[0x80; 6]).is_err());
    }

    #[test]
    fn splits_records_across_frames_and_bounds_them() {
        let one = frame(vec![PING.into()]);
        let two = frame(vec![ACK.into(), 7u64.into()]);
        let mut all = one.clone();
        all.extend(&two);
        let mut buffer = LengthBuffer::new(64);
        let (head, tail) = all.split_at(one.len() + 1);
        assert_eq!(buffer.push(head).unwrap().len(), 1);
        let records = buffer.push(tail).unwrap();
        assert_eq!(parse_message(&records[0]).unwrap(), Incoming::Ack(7));
        let mut small = LengthBuffer::new(2);
        assert!(matches!(small.push(&two), Err(ProtocolError::TooLarge(2))));
    }

    #[test]
    fn parses_invocations_as_the_official_client_writes_them() {
        let invocation = frame(vec![
            INVOCATION.into(),
            Pack::Map(vec![]),
            "1".into(),
            "GetCurrentStatus".into(),
            Pack::Array(vec!["cid".into(), Pack::Map(vec![("n".into(), 2.into())])]),
            Pack::Array(vec![]),
        ]);
        let records = LengthBuffer::new(1024).push(&invocation).unwrap();
        assert_eq!(
            parse_message(&records[0]).unwrap(),
            Incoming::Invocation {
                invocation_id: Some("1".into()),
                target: "GetCurrentStatus".into(),
                arguments: vec![json!("cid"), json!({"n": 2})],
            }
        );
        let unknown = frame(vec![99u64.into()]);
        let records = LengthBuffer::new(1024).push(&unknown).unwrap();
        assert_eq!(parse_message(&records[0]).unwrap(), Incoming::Ignored(99));
        assert!(parse_message(&[0xc1]).is_err());
    }

    #[test]
    fn writes_a_notification_the_client_reads_as_the_json_one() {
        let argument =
            json!({"correlationId": "c", "status": "COMPLETED", "orderId": 12, "at": null});
        let bytes = encode(&Outgoing::Invocation {
            target: "Notification",
            arguments: std::slice::from_ref(&argument),
        });
        let records = LengthBuffer::new(1024).push(&bytes).unwrap();
        let Pack::Array(fields) = rmpv::decode::read_value(&mut &records[0][..]).unwrap() else {
            panic!("an array")
        };
        assert_eq!(fields[0], Pack::from(1));
        assert_eq!(fields[2], Pack::Nil);
        assert_eq!(fields[3], Pack::from("Notification"));
        let Pack::Array(arguments) = &fields[4] else {
            panic!("arguments")
        };
        assert_eq!(to_json(arguments[0].clone()).unwrap(), argument);
    }

    #[test]
    fn writes_completions_closes_and_sequence_messages() {
        let decode = |bytes: Vec<u8>| {
            let records = LengthBuffer::new(1024).push(&bytes).unwrap();
            rmpv::decode::read_value(&mut &records[0][..]).unwrap()
        };
        let ok = Ok(json!("pong"));
        let completion = decode(encode(&Outgoing::Completion {
            invocation_id: "4",
            outcome: &ok,
        }));
        assert_eq!(
            completion,
            Pack::Array(vec![
                3.into(),
                Pack::Map(vec![]),
                "4".into(),
                3.into(),
                "pong".into()
            ])
        );
        let failed = Err("no".to_owned());
        let completion = decode(encode(&Outgoing::Completion {
            invocation_id: "4",
            outcome: &failed,
        }));
        assert_eq!(
            completion,
            Pack::Array(vec![
                3.into(),
                Pack::Map(vec![]),
                "4".into(),
                1.into(),
                "no".into()
            ])
        );
        let close = decode(encode(&Outgoing::Close {
            error: None,
            allow_reconnect: true,
        }));
        assert_eq!(close, Pack::Array(vec![7.into(), Pack::Nil, true.into()]));
        assert_eq!(
            decode(encode(&Outgoing::Sequence(3))),
            Pack::Array(vec![9.into(), 3.into()])
        );
    }
}
