//! Queue triggers: receive a message, invoke the function with the documented payload, apply its
//! output bindings, settle the message. Failures are retried with exponential backoff and
//! dead-lettered after `maxDeliveryCount`, keeping the last error as the reason.

use crate::app_dir::Output;
use crate::handler::Handler;
use orders_core::ports::{Delivery, OutboundMessage, QueueTransport, Settlement};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_delivery_count: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// Wait before delivery `count + 1`: base, 2x base, 4x base, ... capped at max.
    pub fn backoff(&self, count: u32) -> Duration {
        let factor = 1u32
            .checked_shl(count.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// One queue-triggered function and everything needed to run it.
#[derive(Clone)]
pub struct QueueTrigger {
    pub function: String,
    pub binding: String,
    pub queue: String,
    pub outputs: Vec<Output>,
    pub transport: Arc<dyn QueueTransport>,
    pub handler: Handler,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

/// The trigger metadata the Service Bus extension sends with each message.
fn metadata(d: &Delivery) -> Value {
    json!({
        "MessageId": d.message_id,
        "SessionId": d.session_id,
        "DeliveryCount": d.delivery_count,
        "EnqueuedTimeUtc": d.enqueued_at.to_rfc3339(),
        "ContentType": "application/json",
        "CorrelationId": d.properties.get("correlationId"),
        "ApplicationProperties": d.properties,
        "UserProperties": d.properties,
        "sys": {
            "MethodName": null,
            "UtcNow": chrono::Utc::now().to_rfc3339(),
            "RandGuid": uuid::Uuid::new_v4().to_string(),
        }
    })
}

impl QueueTrigger {
    /// Starts `workers` receive loops; they stop taking messages when `shutdown` turns true and
    /// finish the one in hand.
    pub fn spawn(self, workers: usize, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        (0..workers)
            .map(|_| {
                let (trigger, shutdown) = (self.clone(), shutdown.clone());
                tokio::spawn(async move { trigger.run(shutdown).await })
            })
            .collect()
    }

    async fn run(self, shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self
                .transport
                .receive(&self.queue, Duration::from_secs(1))
                .await
            {
                Ok(Some(delivery)) => {
                    let span = tracing::info_span!(
                        "trigger",
                        function = %self.function,
                        correlation_id = delivery.properties.get("correlationId").map_or("", String::as_str),
                        message_id = %delivery.message_id,
                        delivery_count = delivery.delivery_count
                    );
                    if let Some(parent) = delivery.properties.get("traceparent") {
                        orders_telemetry::continue_trace(&span, parent);
                    }
                    self.handle(delivery).instrument(span).await;
                }
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(queue = %self.queue, error = %err, "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn handle(&self, delivery: Delivery) {
        let payload =
            json!({ "Data": { &self.binding: delivery.body }, "Metadata": metadata(&delivery) });
        let outcome = match self
            .handler
            .invoke(&self.function, &payload, self.timeout)
            .await
        {
            Ok(answer) => self.apply_outputs(&delivery, &answer).await,
            Err(err) => Err(err.to_string()),
        };
        let settlement = match outcome {
            Ok(()) => Settlement::Complete,
            Err(reason) if delivery.delivery_count >= self.retry.max_delivery_count => {
                tracing::error!(%reason, "dead-lettering after the last allowed delivery");
                Settlement::DeadLetter { reason }
            }
            Err(reason) => {
                let retry_after = self.retry.backoff(delivery.delivery_count);
                tracing::warn!(%reason, ?retry_after, "invocation failed; will retry");
                Settlement::Abandon { retry_after }
            }
        };
        if let Err(err) = self.transport.settle(&delivery, settlement).await {
            // The lock is gone, so the message comes back; processing is idempotent.
            tracing::warn!(error = %err, "could not settle; the message will be delivered again");
        }
    }

    /// Publishes each output binding's value, as a custom handler's output binding does in
    /// Azure: the body only, no application properties (the function puts what the next hop
    /// needs, trace context included, in the body). Message ids derive from the input's, so a
    /// redelivered input yields the same output ids.
    async fn apply_outputs(&self, delivery: &Delivery, answer: &Value) -> Result<(), String> {
        for output in &self.outputs {
            let body = match &answer["Outputs"][&output.binding] {
                Value::Null => continue,
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let message = OutboundMessage {
                message_id: format!("{}:{}", delivery.message_id, output.binding),
                session_id: None,
                body,
                properties: Default::default(),
            };
            self.transport
                .publish(&output.queue, message)
                .await
                .map_err(|e| format!("output {} not published: {e}", output.binding))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_delivery_count: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let waits: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(30));
    }
}
