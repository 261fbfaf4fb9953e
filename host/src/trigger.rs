//! Queue triggers: receive a message, invoke the function with the payload the real host would
//! send ([`crate::invocation`]), apply its output bindings as the host does, and settle the
//! message as the trigger's extension does ([`crate::extensions`]): Service Bus abandons a
//! failure for immediate redelivery and dead-letters after maxDeliveryCount; RabbitMQ
//! republishes it to the tail and rejects its fifth failure. Session-enabled Service Bus
//! triggers hold a session slot for `sessionIdleTimeout` after its last message
//! ([`crate::sessions`]). An invocation past functionTimeout restarts the handler process.

use crate::app_dir::Output;
use crate::extensions::{Failure, TriggerBinding};
use crate::handler::Handler;
use crate::invocation::{Sys, output_messages};
use crate::sessions::SessionSlots;
use orders_core::ports::{Delivery, OutboundMessage, QueueTransport, Settlement};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

/// One queue-triggered function and everything needed to run it.
#[derive(Clone)]
pub struct QueueTrigger {
    pub function: String,
    pub binding: TriggerBinding,
    pub outputs: Vec<Output>,
    pub transport: Arc<dyn QueueTransport>,
    pub handler: Handler,
    /// The queue's maxDeliveryCount (Service Bus; a queue property, not a host.json setting).
    pub max_delivery_count: u32,
    pub timeout: Duration,
    /// Session slots, for a session-enabled Service Bus trigger.
    pub sessions: Option<SessionSlots>,
    /// Numbers deliveries (SequenceNumber, DeliveryTag).
    pub sequence: Arc<AtomicI64>,
    pub lock_renewal: LockRenewal,
}

/// How the host keeps a message locked while its invocation runs (Service Bus renews the lock
/// up to `maxAutoLockRenewalDuration`; a RabbitMQ delivery stays held anyway).
#[derive(Debug, Clone, Copy)]
pub struct LockRenewal {
    /// Well inside the transports' lock (the embedded queue's is 30 s).
    pub every: Duration,
    pub up_to: Duration,
}

/// A message property by name, whatever its casing (the Service Bus REST API lowercases them).
fn property<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a str> {
    delivery
        .properties
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl QueueTrigger {
    /// Starts the trigger's receive loop, which runs up to `workers` invocations at once. It
    /// stops taking messages when `shutdown` turns true and returns once those in hand are done.
    pub fn spawn(self, workers: usize, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(Arc::new(self).run(workers.max(1), shutdown))]
    }

    /// One receive takes a message for every free worker (the transport's batch, as the Service
    /// Bus processor prefetches), so a busy trigger costs the broker one round trip per batch.
    async fn run(self: Arc<Self>, workers: usize, shutdown: watch::Receiver<bool>) {
        let free = Arc::new(Semaphore::new(workers));
        let mut running = JoinSet::new();
        while !*shutdown.borrow() {
            let Ok(first) = Arc::clone(&free).acquire_owned().await else {
                break;
            };
            let mut permits = vec![first];
            while let Ok(more) = Arc::clone(&free).try_acquire_owned() {
                permits.push(more);
            }
            if *shutdown.borrow() {
                break;
            }
            match self
                .transport
                .receive(&self.binding.queue, permits.len(), Duration::from_secs(1))
                .await
            {
                Ok(deliveries) => {
                    for (delivery, permit) in deliveries.into_iter().zip(permits) {
                        let trigger = Arc::clone(&self);
                        running.spawn(async move {
                            trigger.traced(delivery).await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(queue = %self.binding.queue, error = %err, "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
    }

    /// Handles the delivery in a span carrying its correlation id and the caller's trace.
    async fn traced(&self, delivery: Delivery) {
        let span = tracing::info_span!(
            "trigger",
            function = %self.function,
            correlation_id = property(&delivery, "correlationId").unwrap_or(""),
            message_id = %delivery.message_id,
            delivery_count = delivery.delivery_count
        );
        if let Some(parent) = delivery.properties.get("traceparent") {
            orders_telemetry::continue_trace(&span, parent);
        }
        self.handle(delivery).instrument(span).await;
    }

    async fn handle(&self, delivery: Delivery) {
        // The lock is renewed from the moment the message is received, its wait for a session
        // slot included.
        let outcome = tokio::select! {
            outcome = self.run_function(&delivery) => outcome,
            never = self.keep_locked(&delivery) => match never {},
        };
        let settlement = match outcome {
            Ok(outputs) => match self.transport.complete(&delivery, outputs).await {
                Ok(()) => return,
                Err(err) => {
                    // Nothing is lost: the message comes back and its outputs keep their ids.
                    tracing::warn!(error = %err, "could not complete; the message will be delivered again");
                    Settlement::Abandon
                }
            },
            Err(reason) => self.failed(&delivery, reason).await,
        };
        if let Err(err) = self.transport.settle(&delivery, settlement).await {
            // The lock is gone, so the message comes back; processing is idempotent.
            tracing::warn!(error = %err, "could not settle; the message will be delivered again");
        }
    }

    /// Waits for the session's slot, invokes the function, and returns its output messages.
    async fn run_function(
        &self,
        delivery: &Delivery,
    ) -> Result<Vec<(String, OutboundMessage)>, String> {
        let _slot = match (&self.sessions, &delivery.session_id) {
            (Some(slots), Some(session)) => Some(slots.enter(session).await),
            _ => None,
        };
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let payload = self
            .binding
            .invocation(&self.function, delivery, sequence)
            .payload(&Sys::now());
        let answer = self
            .handler
            .invoke(&self.function, &payload, self.timeout)
            .await
            .map_err(|err| err.to_string())?;
        self.output_messages(delivery, &answer)
    }

    /// Renews the delivery's lock until `up_to` has passed, then lets it lapse.
    async fn keep_locked(&self, delivery: &Delivery) -> std::convert::Infallible {
        let started = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.lock_renewal.every).await;
            if started.elapsed() >= self.lock_renewal.up_to {
                tracing::warn!(up_to = ?self.lock_renewal.up_to, "maxAutoLockRenewalDuration reached; the lock will lapse");
                return std::future::pending().await;
            }
            if let Err(err) = self.transport.renew_lock(delivery).await {
                tracing::warn!(error = %err, "lock renewal failed");
            }
        }
    }

    /// How the extension settles a failed invocation.
    async fn failed(&self, delivery: &Delivery, error: String) -> Settlement {
        match self.binding.on_failure(delivery, self.max_delivery_count) {
            Failure::Abandon => {
                tracing::warn!(%error, "invocation failed; abandoned for redelivery");
                Settlement::Abandon
            }
            Failure::DeadLetter {
                reason,
                description,
            } => {
                tracing::error!(%error, %reason, "dead-lettering after the last allowed delivery");
                Settlement::DeadLetter {
                    reason,
                    description,
                }
            }
            Failure::Republish(copy) => {
                tracing::warn!(%error, message_id = %copy.message_id, "invocation failed; republished to the queue's tail");
                match self.transport.publish(&self.binding.queue, copy).await {
                    Ok(()) => Settlement::Complete,
                    Err(err) => {
                        tracing::warn!(error = %err, "republish failed; the message comes back");
                        Settlement::Abandon
                    }
                }
            }
        }
    }

    /// Each output binding's messages as the host publishes them: the body only, no application
    /// properties (the function puts what the next hop needs, trace context included, in the
    /// body). Message ids derive from the input's, so a redelivered input yields the same ids.
    fn output_messages(
        &self,
        delivery: &Delivery,
        answer: &Value,
    ) -> Result<Vec<(String, OutboundMessage)>, String> {
        // Newtonsoft matches `Outputs` whatever its case; the binding names inside exactly.
        let outputs = answer
            .as_object()
            .and_then(|a| a.iter().find(|(k, _)| k.eq_ignore_ascii_case("Outputs")))
            .map_or(&Value::Null, |(_, v)| v);
        let mut messages = Vec::new();
        for output in &self.outputs {
            let bodies = output_messages(&outputs[&output.binding], output.data_type);
            let many = bodies.len() > 1;
            for (n, body) in bodies.into_iter().enumerate() {
                let body = String::from_utf8(body)
                    .map_err(|_| format!("output {} is not UTF-8 text", output.binding))?;
                let suffix = if many { format!(":{n}") } else { String::new() };
                let message = OutboundMessage {
                    message_id: format!("{}:{}{suffix}", delivery.message_id, output.binding),
                    session_id: None,
                    body,
                    properties: Default::default(),
                };
                messages.push((output.queue.clone(), message));
            }
        }
        Ok(messages)
    }
}
