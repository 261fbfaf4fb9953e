//! The trigger extensions the emulator speaks for: what each sends the handler with a message
//! and what each does when an invocation fails. The queue transports underneath (the embedded
//! SQLite queue, RabbitMQ) only store and lock messages; these decide what the host would do.

pub mod rabbitmq;
pub mod service_bus;

use crate::invocation::{DataType, HostValue, Invocation};
use orders_core::ports::{Delivery, OutboundMessage};

/// Which extension a function's trigger binding belongs to (`type` in function.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    ServiceBus,
    RabbitMq,
}

/// A queue trigger binding from function.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerBinding {
    pub extension: Extension,
    pub name: String,
    pub queue: String,
    pub sessions: bool,
    pub data_type: DataType,
    /// The Service Bus `ContentType` of the queue's messages: `application/json` from intake's
    /// REST publisher, `text/plain` from a string output binding (`StringToMessageConverter`).
    pub content_type: &'static str,
}

/// `ContentType` of messages intake sends (adapters/src/servicebus/request.rs).
pub const FROM_INTAKE: &str = "application/json";
/// `ContentType` of messages a string output binding sends.
pub const FROM_OUTPUT_BINDING: &str = "text/plain";

/// What the extension does with a message whose invocation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Service Bus: abandon; the service redelivers it at once.
    Abandon,
    /// Give up: Service Bus after maxDeliveryCount, RabbitMQ after its fifth execution.
    DeadLetter { reason: String, description: String },
    /// RabbitMQ: publish this copy to the tail of the queue, then acknowledge the original.
    Republish(OutboundMessage),
}

impl TriggerBinding {
    /// The invocation the host makes for `delivery`. `sequence` numbers the trigger's
    /// deliveries (RabbitMQ's `DeliveryTag`).
    pub fn invocation(&self, function: &str, delivery: &Delivery, sequence: i64) -> Invocation {
        let trigger_value = match self.data_type {
            DataType::String => HostValue::Text(delivery.body.clone()),
            DataType::Binary => HostValue::Bytes(delivery.body.clone().into_bytes()),
        };
        let binding_data = match self.extension {
            Extension::ServiceBus => service_bus::binding_data(
                delivery,
                &service_bus::Broker {
                    namespace: "local.servicebus.windows.net",
                    content_type: self.content_type,
                    now: chrono::Utc::now(),
                },
            ),
            Extension::RabbitMq => rabbitmq::binding_data(delivery, sequence),
        };
        Invocation {
            function: function.to_owned(),
            trigger_binding: self.name.clone(),
            trigger_value,
            binding_data,
        }
    }

    /// The extension's answer to a failed invocation of `delivery`.
    pub fn on_failure(&self, delivery: &Delivery, max_delivery_count: u32) -> Failure {
        match self.extension {
            Extension::ServiceBus if delivery.delivery_count >= max_delivery_count => {
                Failure::DeadLetter {
                    reason: service_bus::DEAD_LETTER_REASON.into(),
                    description: service_bus::dead_letter_description(delivery.delivery_count),
                }
            }
            Extension::ServiceBus => Failure::Abandon,
            Extension::RabbitMq => {
                let count = rabbitmq::requeue_count(delivery) + 1;
                if count >= rabbitmq::MAX_EXECUTIONS {
                    return Failure::DeadLetter {
                        reason: rabbitmq::DEAD_LETTER_REASON.into(),
                        description: format!("rejected after {count} executions"),
                    };
                }
                let mut properties = delivery.properties.clone();
                properties.insert(rabbitmq::REQUEUE_COUNT_HEADER.into(), count.to_string());
                // A new id per copy: the embedded queue drops a repeated id like duplicate
                // detection would, and the original is acknowledged only after this publish.
                // The trigger still shows the original id, as the extension keeps it.
                Failure::Republish(OutboundMessage {
                    message_id: format!("{}#{count}", rabbitmq::original_id(delivery)),
                    session_id: delivery.session_id.clone(),
                    body: delivery.body.clone(),
                    properties,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(count: u32, requeued: Option<u32>) -> Delivery {
        Delivery {
            queue: "q".into(),
            message_id: "m".into(),
            session_id: Some("alice".into()),
            body: "{}".into(),
            properties: requeued
                .map(|n| (rabbitmq::REQUEUE_COUNT_HEADER.to_owned(), n.to_string()))
                .into_iter()
                .collect(),
            delivery_count: count,
            enqueued_at: chrono::Utc::now(),
            lock_token: "t".into(),
        }
    }

    fn binding(extension: Extension) -> TriggerBinding {
        TriggerBinding {
            extension,
            name: "order".into(),
            queue: "q".into(),
            sessions: true,
            data_type: DataType::String,
            content_type: FROM_INTAKE,
        }
    }

    #[test]
    fn service_bus_abandons_until_the_last_delivery() {
        let bus = binding(Extension::ServiceBus);
        assert_eq!(bus.on_failure(&delivery(9, None), 10), Failure::Abandon);
        assert_eq!(
            bus.on_failure(&delivery(10, None), 10),
            Failure::DeadLetter {
                reason: "MaxDeliveryCountExceeded".into(),
                description: "Message could not be consumed after 10 delivery attempts.".into(),
            }
        );
    }

    #[test]
    fn rabbitmq_republishes_four_times_then_rejects() {
        let rabbit = binding(Extension::RabbitMq);
        let mut requeued = None;
        for expected in 1..=4 {
            let Failure::Republish(copy) = rabbit.on_failure(&delivery(1, requeued), 10) else {
                panic!("execution {expected} should be republished");
            };
            assert_eq!(
                copy.properties[rabbitmq::REQUEUE_COUNT_HEADER],
                expected.to_string()
            );
            assert_eq!(copy.message_id, format!("m#{expected}"));
            requeued = Some(expected);
        }
        assert_eq!(
            rabbit.on_failure(&delivery(1, requeued), 10),
            Failure::DeadLetter {
                reason: "rejected".into(),
                description: "rejected after 5 executions".into(),
            }
        );
    }
}
