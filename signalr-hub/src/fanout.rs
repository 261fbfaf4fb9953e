//! The fan-out bridge: one subscription per replica; each message goes to every local
//! connection of its user once, and to nobody else. A client that reconnects with the cursor of
//! the last notification it saw is sent the ones it missed, from the backplane's history.

use crate::connection::{Connection, Registry};
use crate::metrics::Metrics;
use crate::protocol::{Frame, HubProtocol, Outgoing};
use orders_core::cursor::Cursor;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{FanoutEvent, FanoutSubscription, NotificationHistory};
use std::sync::Arc;
use std::time::Instant;

/// Where this replica's notifications come from: Redis, or the in-process fan-out when the
/// notifier shares the process.
pub type FanoutSource = Box<dyn FanoutSubscription>;

/// One notification's `Notification` invocation, encoded once per protocol in use and shared by
/// every recipient.
struct Encoded<'a> {
    notification: &'a Notification,
    frames: [Option<Frame>; HubProtocol::ALL.len()],
}

impl<'a> Encoded<'a> {
    fn new(notification: &'a Notification) -> Self {
        Encoded {
            notification,
            frames: Default::default(),
        }
    }

    fn frame(&mut self, protocol: HubProtocol) -> Frame {
        let notification = self.notification;
        self.frames[protocol as usize]
            .get_or_insert_with(|| {
                let arguments =
                    [serde_json::to_value(notification).expect("notifications serialise")];
                protocol.encode(&Outgoing::Invocation {
                    target: "Notification",
                    arguments: &arguments,
                })
            })
            .clone()
    }
}

/// Queues the notification for one connection that completed its handshake, unless it was
/// told this (order, status) already or a replay holds it back. `true` if queued.
fn push(connection: &Connection, metrics: &Metrics, encoded: &mut Encoded) -> bool {
    !connection.held_back(encoded.notification) && send_once(connection, metrics, encoded)
}

fn send_once(connection: &Connection, metrics: &Metrics, encoded: &mut Encoded) -> bool {
    let Some(protocol) = connection.protocol() else {
        return false;
    };
    if !connection.first_push(encoded.notification) {
        Metrics::incr(&metrics.notifications_repeated);
        return false;
    }
    let queued = connection.send_tracked(encoded.frame(protocol));
    if queued {
        Metrics::incr(&metrics.notifications_delivered);
    }
    queued
}

/// Delivers one message to the user's connections, in a `push` span that joins the order's
/// trace.
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
    let mut encoded = Encoded::new(&message.notification);
    let delivered = registry
        .for_user(&message.user_id)
        .iter()
        .filter(|connection| push(connection, metrics, &mut encoded))
        .count();
    metrics.record_lag(started.elapsed().as_micros() as u64);
    span.record("delivered", delivered);
    delivered
}

/// Sends a connection that just completed its handshake (holding live pushes back, see
/// [`Connection::hold_live`]) what its user was notified of after `after`, bounded by the
/// backplane's history, then the live ones that came meanwhile: in cursor order, each once.
pub async fn replay(
    history: Arc<dyn NotificationHistory>,
    metrics: Arc<Metrics>,
    connection: Arc<Connection>,
    after: Cursor,
) {
    let missed = history
        .since(&connection.user, after)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(connection = %connection.id, error = %e, "could not read the notification history");
            Vec::new()
        });
    let from_history: Vec<_> = missed
        .iter()
        .map(|n| (n.correlation_id, n.status))
        .collect();
    let mut replayed = 0;
    connection.release_held(missed, |notification| {
        let _span =
            tracing::info_span!("replay", correlation_id = %notification.correlation_id).entered();
        let sent = send_once(&connection, &metrics, &mut Encoded::new(notification));
        if sent && from_history.contains(&(notification.correlation_id, notification.status)) {
            replayed += 1;
            Metrics::incr(&metrics.notifications_replayed);
        }
    });
    tracing::info!(connection = %connection.id, %after, replayed, "replayed missed notifications");
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
