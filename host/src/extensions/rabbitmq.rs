//! The RabbitMQ trigger (Azure/azure-functions-rabbitmq-extension) as the host runs it: its
//! binding data (`RabbitMQTriggerBinding`), and its failure semantics (`RabbitMQListener`): the
//! failed message is republished to the tail of its queue with the `x-ms-rabbitmq-requeuecount`
//! header one higher, and the fifth failure rejects it (dead-lettered when the queue has a DLX).
//! So a failure lets later messages of the same user overtake it.

use crate::invocation::HostValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use orders_core::ports::Delivery;
use serde_json::{Map, Value, json};

pub const REQUEUE_COUNT_HEADER: &str = "x-ms-rabbitmq-requeuecount";
/// `if (requeueCount >= 5) BasicReject(requeue: false)`: five executions in all.
pub const MAX_EXECUTIONS: u32 = 5;
/// What RabbitMQ records in `x-death` for a message rejected without requeue.
pub const DEAD_LETTER_REASON: &str = "rejected";

/// The id the message was published with: a republished copy carries `#n` here (the embedded
/// queue drops repeated ids), where the extension keeps the original.
pub fn original_id(d: &Delivery) -> &str {
    match d.message_id.rsplit_once('#') {
        Some((original, n)) if requeue_count(d) > 0 && n.parse::<u32>().is_ok() => original,
        _ => &d.message_id,
    }
}

/// The times a message was republished after failing (0 on its first execution).
pub fn requeue_count(d: &Delivery) -> u32 {
    d.properties
        .get(REQUEUE_COUNT_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The binding data of one delivery: `ConsumerTag`, `DeliveryTag`, `Redelivered`, `Exchange`,
/// `RoutingKey`, `BasicProperties`, `Body`. The message's properties are its AMQP headers
/// (intake's; output bindings publish none): RabbitMQ.Client hands a string header over as
/// `byte[]`, which Newtonsoft writes as base64; the retry count is an integer.
pub fn binding_data(d: &Delivery, delivery_tag: i64) -> Vec<(String, Option<HostValue>)> {
    let headers: Map<String, Value> = d
        .properties
        .iter()
        .map(|(k, v)| {
            let value = match v.parse::<u32>() {
                Ok(n) if k == REQUEUE_COUNT_HEADER => json!(n),
                _ => json!(BASE64.encode(v)),
            };
            (k.clone(), value)
        })
        .collect();
    let properties = json!({
        "MessageId": original_id(d),
        "Headers": if headers.is_empty() { Value::Null } else { Value::Object(headers) },
        "DeliveryMode": 2,
        "ContentType": Value::Null,
    });
    vec![
        (
            "ConsumerTag".into(),
            Some(HostValue::Text(format!("amq.ctag-{}", d.queue))),
        ),
        ("DeliveryTag".into(), Some(HostValue::Int(delivery_tag))),
        (
            "Redelivered".into(),
            Some(HostValue::Bool(d.delivery_count > 1)),
        ),
        ("Exchange".into(), Some(HostValue::Text(String::new()))),
        ("RoutingKey".into(), Some(HostValue::Text(d.queue.clone()))),
        (
            "BasicProperties".into(),
            Some(HostValue::Object(
                properties.as_object().cloned().unwrap_or_default(),
            )),
        ),
        // ReadOnlyMemory<byte> has no public state but its length and emptiness.
        (
            "Body".into(),
            Some(HostValue::Object(
                json!({ "Length": d.body.len(), "IsEmpty": d.body.is_empty() })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )),
        ),
    ]
}
