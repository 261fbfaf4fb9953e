//! How a message maps onto AMQP properties and headers, and back.
//!
//! Application properties travel as string headers. Header names starting with `x-` belong to
//! the transport (ours below, and the broker's `x-delivery-count`, `x-death`, ...), so an
//! application property may not start with `x-`, but for the Functions RabbitMQ extension's
//! retry count, an integer header both ways.

use super::rabbit_err;
use lapin::BasicProperties;
use lapin::message::Delivery as AmqpDelivery;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use orders_core::ports::{BackendError, DeadLetter, Delivery, OutboundMessage};
use std::collections::BTreeMap;

pub(super) const SESSION_ID: &str = "x-session-id";
/// AMQP's `timestamp` has whole seconds only.
const ENQUEUED_AT_MS: &str = "x-enqueued-at-ms";
pub(super) const DEAD_LETTER_REASON: &str = "x-dead-letter-reason";
/// Not `x-delivery-count`: the broker owns that name and rewrites it on redelivery.
pub(super) const DEAD_LETTER_DELIVERY_COUNT: &str = "x-dead-letter-delivery-count";
pub(super) const ORIGINAL_MESSAGE_ID: &str = "x-original-message-id";
/// The Functions RabbitMQ extension's retry count (`RabbitMQListener`), which the local host
/// sets when it emulates that extension.
const REQUEUE_COUNT: &str = "x-ms-rabbitmq-requeuecount";
/// Set by the broker when it dead-letters on its own (the quorum delivery limit).
const BROKER_DEATH_REASON: &str = "x-first-death-reason";

const PERSISTENT: u8 = 2;

/// Stable across processes, so every replica maps a session to the same shard.
pub fn shard_of(key: &str, shards: usize) -> usize {
    (orders_core::hash::fnv1a(key.as_bytes()) % shards.max(1) as u64) as usize
}

pub(super) fn short(value: &str, what: &str) -> Result<ShortString, BackendError> {
    ShortString::try_new(value).map_err(|e| rabbit_err(format!("{what} {value:?}: {e}")))
}

/// Persistent properties for `message`, plus transport headers in `extra`.
pub(super) fn properties(
    message: &OutboundMessage,
    extra: Vec<(&'static str, AMQPValue)>,
) -> Result<BasicProperties, BackendError> {
    let mut headers = FieldTable::default();
    for (name, value) in &message.properties {
        let value = match value.parse::<i64>() {
            Ok(count) if name == REQUEUE_COUNT => AMQPValue::LongLongInt(count),
            _ if name.starts_with("x-") => {
                return Err(rabbit_err(format!(
                    "application property {name:?}: names starting with x- are reserved for the transport"
                )));
            }
            _ => AMQPValue::LongString(value.as_str().into()),
        };
        headers.insert(short(name, "property name")?, value);
    }
    if let Some(session) = &message.session_id {
        headers.insert(
            SESSION_ID.into(),
            AMQPValue::LongString(session.as_str().into()),
        );
    }
    let now = chrono::Utc::now();
    headers.insert(
        ENQUEUED_AT_MS.into(),
        AMQPValue::LongLongInt(now.timestamp_millis()),
    );
    for (name, value) in extra {
        headers.insert(name.into(), value);
    }
    Ok(BasicProperties::default()
        .with_message_id(short(&message.message_id, "message id")?)
        .with_delivery_mode(PERSISTENT)
        .with_timestamp(now.timestamp().max(0) as u64)
        .with_headers(headers))
}

fn header<'a>(d: &'a AmqpDelivery, name: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name)
}

fn string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn integer(value: &AMQPValue) -> Option<i64> {
    Some(match *value {
        AMQPValue::ShortShortInt(v) => v.into(),
        AMQPValue::ShortShortUInt(v) => v.into(),
        AMQPValue::ShortInt(v) => v.into(),
        AMQPValue::ShortUInt(v) => v.into(),
        AMQPValue::LongInt(v) => v.into(),
        AMQPValue::LongUInt(v) => v.into(),
        AMQPValue::LongLongInt(v) => v,
        _ => return None,
    })
}

fn header_string(d: &AmqpDelivery, name: &str) -> Option<String> {
    header(d, name).and_then(string)
}

fn header_int(d: &AmqpDelivery, name: &str) -> Option<i64> {
    header(d, name).and_then(integer)
}

/// The application properties: every string header outside the transport's `x-` names, and
/// the extension's retry count.
fn app_properties(d: &AmqpDelivery) -> BTreeMap<String, String> {
    let Some(headers) = d.properties.headers() else {
        return BTreeMap::new();
    };
    headers
        .into_iter()
        .filter_map(|(name, value)| {
            let value = match name.as_str() {
                REQUEUE_COUNT => integer(value)?.to_string(),
                other if other.starts_with("x-") => return None,
                _ => string(value)?,
            };
            Some((name.as_str().to_owned(), value))
        })
        .collect()
}

pub(super) fn message_id(d: &AmqpDelivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default()
}

pub(super) fn session_id(d: &AmqpDelivery) -> Option<String> {
    header_string(d, SESSION_ID)
}

/// Quorum queues count earlier deliveries: `x-delivery-count` counts every return up to
/// RabbitMQ 4.2 (verified on 3.10: nack, reject, channel and connection loss) and only
/// rejects from 4.3; 4.x adds `x-acquired-count` for all returns. The larger, plus this one.
fn delivery_count(d: &AmqpDelivery) -> u32 {
    let earlier = ["x-delivery-count", "x-acquired-count"]
        .iter()
        .filter_map(|name| header_int(d, name))
        .max()
        .unwrap_or(0);
    let count = u32::try_from(earlier.max(0))
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    if d.redelivered { count.max(2) } else { count }
}

fn enqueued_at(d: &AmqpDelivery) -> chrono::DateTime<chrono::Utc> {
    header_int(d, ENQUEUED_AT_MS)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .or_else(|| {
            let secs = i64::try_from((*d.properties.timestamp())?).ok()?;
            chrono::DateTime::from_timestamp(secs, 0)
        })
        .unwrap_or_else(chrono::Utc::now)
}

pub(super) fn delivery(queue: &str, d: &AmqpDelivery, lock_token: String) -> Delivery {
    Delivery {
        queue: queue.to_owned(),
        message_id: message_id(d),
        session_id: session_id(d),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        properties: app_properties(d),
        delivery_count: delivery_count(d),
        enqueued_at: enqueued_at(d),
        lock_token,
    }
}

/// The message to publish again when a dead letter is replayed (a fresh delivery count).
pub(super) fn outbound(d: &AmqpDelivery) -> OutboundMessage {
    OutboundMessage {
        message_id: message_id(d),
        session_id: session_id(d),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        properties: app_properties(d),
    }
}

pub(super) fn dead_letter(queue: &str, d: &AmqpDelivery) -> DeadLetter {
    DeadLetter {
        queue: queue.to_owned(),
        message_id: header_string(d, ORIGINAL_MESSAGE_ID).unwrap_or_else(|| message_id(d)),
        session_id: session_id(d),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        properties: app_properties(d),
        delivery_count: header_int(d, DEAD_LETTER_DELIVERY_COUNT)
            .or_else(|| header_int(d, "x-delivery-count"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        reason: header_string(d, orders_core::ports::DEAD_LETTER_REASON)
            .or_else(|| header_string(d, DEAD_LETTER_REASON))
            .or_else(|| header_string(d, BROKER_DEATH_REASON))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("alice", 8), shard_of("alice", 8));
        // Pinned: a change would move live sessions to other shards mid-flight.
        assert_eq!(shard_of("", 8), (0xcbf2_9ce4_8422_2325_u64 % 8) as usize);
        assert!((0..1000).all(|i| shard_of(&format!("user-{i}"), 8) < 8));
        assert_eq!(shard_of("anything", 0), 0);
    }

    #[test]
    fn reserved_property_names_are_refused() {
        let message = OutboundMessage {
            message_id: "m".into(),
            session_id: None,
            body: String::new(),
            properties: BTreeMap::from([("x-death".to_owned(), "1".to_owned())]),
        };
        assert!(properties(&message, vec![]).is_err());
    }
}
