//! The Service Bus trigger (`Microsoft.Azure.WebJobs.Extensions.ServiceBus` v5) as the host runs
//! it: its binding data for one message (`ServiceBusTriggerBindingStrategy`), and its failure
//! semantics (a failed invocation abandons the message, which is redelivered at once; the
//! service dead-letters it after the queue's maxDeliveryCount with `MaxDeliveryCountExceeded`).

use crate::invocation::{HostValue, iso_date};
use chrono::{DateTime, Utc};
use orders_core::ports::Delivery;
use serde_json::{Map, Value, json};

/// The queues' `defaultMessageTimeToLive` (infra-bicep/modules/servicebus.bicep).
const TIME_TO_LIVE: chrono::TimeDelta = chrono::TimeDelta::days(14);

/// The reason Service Bus records on a message it dead-letters after its last delivery.
pub const DEAD_LETTER_REASON: &str = "MaxDeliveryCountExceeded";

/// The `DeadLetterErrorDescription` Service Bus gives a message dead-lettered after its last
/// delivery. MicrosoftDocs/azure-docs `service-bus-dead-letter-queues.md` pairs a description of
/// this meaning with `MaxDeliveryCountExceeded`; the exact wording is not verified (README,
/// Fidelity).
pub fn dead_letter_description(deliveries: u32) -> String {
    format!("Message could not be consumed after {deliveries} delivery attempts.")
}

/// The queues' `lockDuration` (infra-bicep/modules/servicebus.bicep): a session lock lasts it.
const LOCK_DURATION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// What the service knows of a message that our transports do not carry.
#[derive(Debug, Clone)]
pub struct Broker {
    pub namespace: &'static str,
    pub content_type: &'static str,
    pub now: DateTime<Utc>,
}

/// A `SequenceNumber` fixed per message, as the service's is (not monotonic here: a hash of
/// the message id).
pub fn sequence_number(message_id: &str) -> i64 {
    (orders_core::hash::fnv1a(message_id.as_bytes()) & i64::MAX as u64) as i64
}

/// The binding data of one received message, in the contract's order; `None` is a null value
/// (the host drops it).
pub fn binding_data(d: &Delivery, broker: &Broker) -> Vec<(String, Option<HostValue>)> {
    let text = |v: Option<&String>| v.cloned().map(HostValue::Text);
    let expires = d.enqueued_at + TIME_TO_LIVE;
    let properties: Map<String, Value> = d
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let session = d.session_id.is_some();
    let object = |v: Value| {
        Some(HostValue::Object(
            v.as_object().cloned().unwrap_or_default(),
        ))
    };
    let session_actions = session
        .then(|| json!({ "SessionLockedUntil": iso_date(broker.now + LOCK_DURATION, "+00:00") }));
    let correlation_id = d
        .properties
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("correlationId"))
        .map(|(_, v)| v);
    vec![
        (
            "DeliveryCount".into(),
            Some(HostValue::Int(d.delivery_count.into())),
        ),
        ("DeadLetterSource".into(), None),
        (
            "LockToken".into(),
            Some(HostValue::Text(d.lock_token.clone())),
        ),
        ("ExpiresAtUtc".into(), Some(HostValue::DateTime(expires))),
        ("ExpiresAt".into(), Some(HostValue::DateTimeOffset(expires))),
        (
            "EnqueuedTimeUtc".into(),
            Some(HostValue::DateTime(d.enqueued_at)),
        ),
        (
            "EnqueuedTime".into(),
            Some(HostValue::DateTimeOffset(d.enqueued_at)),
        ),
        (
            "MessageId".into(),
            Some(HostValue::Text(d.message_id.clone())),
        ),
        (
            "ContentType".into(),
            Some(HostValue::Text(broker.content_type.into())),
        ),
        ("ReplyTo".into(), None),
        (
            "SequenceNumber".into(),
            Some(HostValue::Int(sequence_number(&d.message_id))),
        ),
        ("To".into(), None),
        ("Subject".into(), None),
        ("Label".into(), None),
        // Intake sets the correlation id as the message's CorrelationId too
        // (adapters/src/servicebus/request.rs); an output binding sets none.
        ("CorrelationId".into(), text(correlation_id)),
        (
            "ApplicationProperties".into(),
            Some(HostValue::Object(properties.clone())),
        ),
        ("UserProperties".into(), Some(HostValue::Object(properties))),
        ("SessionId".into(), text(d.session_id.as_ref())),
        ("ReplyToSessionId".into(), None),
        ("PartitionKey".into(), None),
        ("TransactionPartitionKey".into(), None),
        // The action objects have no public state; JObject.FromObject makes them {}.
        ("MessageReceiver".into(), object(json!({}))),
        (
            "MessageSession".into(),
            session_actions.clone().and_then(object),
        ),
        ("MessageActions".into(), object(json!({}))),
        ("SessionActions".into(), session_actions.and_then(object)),
        ("ReceiveActions".into(), object(json!({}))),
        (
            "Client".into(),
            object(json!({
                "FullyQualifiedNamespace": broker.namespace,
                "IsClosed": false,
                "TransportType": 0,
                "Identifier": format!("{}-client", broker.namespace),
            })),
        ),
    ]
}
