//! The fan-out bridge: one subscription per replica; each message goes to every local
//! connection of its user once, and to nobody else.

use crate::connection::Registry;
use crate::metrics::Metrics;
use crate::protocol::{Frame, HubProtocol, Outgoing};
use orders_adapters::memory::FanoutMessage;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};

/// Where this replica's notifications come from.
pub enum FanoutSource {
    /// `RedisFanout::subscribe` (it resubscribes by itself after a Redis restart).
    Redis(mpsc::Receiver<FanoutMessage>),
    /// `MemoryFanout::subscribe`, when the notifier shares the process.
    Memory(broadcast::Receiver<FanoutMessage>),
}

impl FanoutSource {
    pub fn name(&self) -> &'static str {
        match self {
            FanoutSource::Redis(_) => "redis",
            FanoutSource::Memory(_) => "memory",
        }
    }
}

/// Delivers one message to the user's connections that completed the handshake, in a `push`
/// span that joins the order's trace.
pub fn deliver(registry: &Registry, metrics: &Metrics, message: &FanoutMessage) -> usize {
    let span = tracing::info_span!(
        "push",
        correlation_id = %message.notification.correlation_id,
        status = ?message.notification.status,
        delivered = tracing::field::Empty,
    );
    if let Some(traceparent) = &message.traceparent {
        orders_telemetry::continue_trace(&span, traceparent);
    }
    let _entered = span.enter();
    let started = Instant::now();
    Metrics::incr(&metrics.notifications_received);
    let arguments = [serde_json::to_value(&message.notification).expect("notifications serialise")];
    // Encoded once per protocol in use, shared by every recipient.
    let mut encoded: [Option<Frame>; HubProtocol::ALL.len()] = Default::default();
    let mut delivered = 0;
    for connection in registry.for_user(&message.user_id) {
        let Some(protocol) = connection.protocol() else {
            continue;
        };
        let frame = encoded[protocol as usize].get_or_insert_with(|| {
            protocol.encode(&Outgoing::Invocation {
                target: "Notification",
                arguments: &arguments,
            })
        });
        if connection.send_tracked(frame.clone()) {
            delivered += 1;
            Metrics::incr(&metrics.notifications_delivered);
        }
    }
    metrics.record_lag(started.elapsed().as_micros() as u64);
    span.record("delivered", delivered);
    delivered
}

/// Runs until the source ends.
pub async fn run(source: FanoutSource, registry: Arc<Registry>, metrics: Arc<Metrics>) {
    match source {
        FanoutSource::Redis(mut receiver) => {
            while let Some(message) = receiver.recv().await {
                metrics.fanout_backlog.set(receiver.len() as i64);
                deliver(&registry, &metrics, &message);
            }
            tracing::warn!("the Redis fan-out subscription ended");
        }
        FanoutSource::Memory(mut receiver) => loop {
            match receiver.recv().await {
                Ok(message) => {
                    metrics.fanout_backlog.set(receiver.len() as i64);
                    deliver(&registry, &metrics, &message);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    metrics.fanout_dropped.inc_by(missed);
                    tracing::warn!(missed, "the hub fell behind the in-process fan-out");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        },
    }
}
