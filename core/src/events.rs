//! Integration events: versioned JSON contracts between the functions.
//!
//! On the wire every event is a JSON object with `type` and `version` beside its camelCase fields,
//! e.g. `{"type":"OrderAccepted","version":1,"correlationId":"…",…}`. A consumer refuses a type or
//! version it does not know, so a message is dead-lettered rather than misread.

use crate::cursor::Cursor;
use crate::ids::{CorrelationId, OrderId, UserId};
use crate::order::{NewOrder, OrderLine};
use crate::ports::OutboundMessage;
use crate::status::OrderStatus;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ContractError {
    #[error("message is not valid JSON for {expected}: {source}")]
    Json {
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("expected {expected} version {version}, got {found_type} version {found_version}")]
    Mismatch {
        expected: &'static str,
        version: u32,
        found_type: String,
        found_version: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    #[serde(rename = "type")]
    event_type: String,
    version: u32,
    #[serde(flatten)]
    data: T,
}

/// A message type with a name, a version and the queue it travels on.
pub trait IntegrationEvent: Serialize + DeserializeOwned + Clone {
    const TYPE: &'static str;
    const VERSION: u32;
    const QUEUE: &'static str;

    fn to_json(&self) -> String {
        let envelope = Envelope {
            event_type: Self::TYPE.into(),
            version: Self::VERSION,
            data: self.clone(),
        };
        serde_json::to_string(&envelope).expect("events serialise to JSON")
    }

    fn from_json(bytes: &[u8]) -> Result<Self, ContractError> {
        let envelope: Envelope<Self> =
            serde_json::from_slice(bytes).map_err(|source| ContractError::Json {
                expected: Self::TYPE,
                source,
            })?;
        if envelope.event_type != Self::TYPE || envelope.version != Self::VERSION {
            return Err(ContractError::Mismatch {
                expected: Self::TYPE,
                version: Self::VERSION,
                found_type: envelope.event_type,
                found_version: envelope.version,
            });
        }
        Ok(envelope.data)
    }
}

/// Intake accepted an order; the processor persists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderAccepted {
    pub correlation_id: CorrelationId,
    pub user_id: UserId,
    pub items: Vec<OrderLine>,
    pub accepted_at: DateTime<Utc>,
    /// The W3C trace context of intake, also in the body for brokers whose triggers pass no
    /// message properties (the RabbitMQ trigger under `func start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl IntegrationEvent for OrderAccepted {
    const TYPE: &'static str = "OrderAccepted";
    const VERSION: u32 = 1;
    const QUEUE: &'static str = "order.accepted";
}

impl OrderAccepted {
    /// The queue message: MessageId = correlationId (duplicate detection), SessionId = userId
    /// (each user's orders stay FIFO), and the correlation id and W3C trace context as
    /// properties, so the journey stays one trace across the queue hops.
    pub fn to_message(&self) -> OutboundMessage {
        let cid = self.correlation_id.to_string();
        let mut properties = BTreeMap::from([("correlationId".to_owned(), cid.clone())]);
        if let Some(trace) = &self.traceparent {
            properties.insert("traceparent".to_owned(), trace.clone());
        }
        OutboundMessage {
            message_id: cid,
            session_id: Some(self.user_id.to_string()),
            body: self.to_json(),
            properties,
        }
    }

    pub fn into_new_order(self) -> NewOrder {
        NewOrder {
            correlation_id: self.correlation_id,
            user_id: self.user_id,
            lines: self.items,
            accepted_at: self.accepted_at,
        }
    }
}

/// The processor persisted an order; the notifier tells its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderProcessed {
    pub correlation_id: CorrelationId,
    pub order_id: OrderId,
    /// The W3C trace context of the processing. It rides in the body because a custom
    /// handler's output binding sets only the body: no application properties cross this hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl IntegrationEvent for OrderProcessed {
    const TYPE: &'static str = "OrderProcessed";
    const VERSION: u32 = 1;
    const QUEUE: &'static str = "order.processed";
}

/// What the hub pushes to a user's connections (target `Notification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub correlation_id: CorrelationId,
    pub status: OrderStatus,
    pub order_id: Option<OrderId>,
    /// Its position in the backplane, set by the backplane (publishers leave it `None`): a
    /// client that reconnects with `?after={cursor}` is sent what it missed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
}

/// One notification for one user, as every hub replica receives it. In the Redis stream it is
/// JSON: `{"userId":"…","notification":{"correlationId":"…","status":"COMPLETED","orderId":42},
/// "traceparent":"00-…"}`; the `traceparent` (present when traces are exported) lets the hub's
/// push join the order's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutMessage {
    pub user_id: UserId,
    pub notification: Notification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProductId;
    use crate::money::Money;
    use crate::product::BillingPeriod;

    fn accepted() -> OrderAccepted {
        OrderAccepted {
            correlation_id: CorrelationId::generate(),
            user_id: UserId::parse("alice").unwrap(),
            items: vec![OrderLine {
                product_id: ProductId::parse("AZ-104").unwrap(),
                product_name: "Azure Administrator".into(),
                unit_price: Money::from_cents(2699),
                quantity: 2,
                billing_period: BillingPeriod::Monthly,
            }],
            accepted_at: Utc::now(),
            traceparent: None,
        }
    }

    #[test]
    fn round_trips_with_type_and_version_on_the_wire() {
        let event = accepted();
        let json = event.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "OrderAccepted");
        assert_eq!(value["version"], 1);
        assert_eq!(value["items"][0]["unitPriceCents"], 2699);
        assert_eq!(value["items"][0]["billingPeriod"], "monthly");
        assert_eq!(OrderAccepted::from_json(json.as_bytes()).unwrap(), event);
    }

    #[test]
    fn refuses_other_types_versions_and_garbage() {
        let json = accepted().to_json();
        let v2 = json.replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            OrderAccepted::from_json(v2.as_bytes()),
            Err(ContractError::Mismatch { .. })
        ));
        assert!(OrderProcessed::from_json(json.as_bytes()).is_err());
        assert!(OrderAccepted::from_json(b"{not json").is_err());
    }
}
