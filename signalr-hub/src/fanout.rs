//! The fan-out bridge: one subscription per replica; each message goes to every local
//! connection of its user once, and to nobody else.

use crate::connection::Registry;
use crate::metrics::Metrics;
use crate::protocol::{Frame, HubProtocol, Outgoing};
use orders_core::events::FanoutMessage;
use orders_core::ports::{FanoutEvent, FanoutSubscription};
use std::sync::Arc;
use std::time::Instant;

/// Where this replica's notifications come from: Redis pub/sub, or the in-process fan-out when
/// the notifier shares the process.
pub type FanoutSource = Box<dyn FanoutSubscription>;

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
        if !connection.first_push(&message.notification) {
            Metrics::incr(&metrics.notifications_repeated);
            continue;
        }
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
pub async fn run(mut source: FanoutSource, registry: Arc<Registry>, metrics: Arc<Metrics>) {
    while let Some(event) = source.next().await {
        metrics.fanout_backlog.set(source.backlog() as i64);
        match event {
            FanoutEvent::Message(message) => {
                deliver(&registry, &metrics, &message);
            }
            FanoutEvent::Missed(missed) => {
                metrics.fanout_dropped.inc_by(missed);
                tracing::warn!(missed, "the hub fell behind its fan-out subscription");
            }
        }
    }
    tracing::warn!(backend = source.backend(), "the fan-out subscription ended");
}
