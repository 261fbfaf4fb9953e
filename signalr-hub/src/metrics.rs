//! The hub's metrics, for `/hubs/metrics` (Prometheus text format, by `prometheus-client`) and
//! the health probe.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A gauge of seconds.
type Seconds = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    users: Gauge,
    pub connections_opened: Counter,
    pub connections_closed: Counter,
    pub messages_received: Counter,
    pub invocations: Counter,
    pub notifications_received: Counter,
    pub notifications_delivered: Counter,
    /// Redeliveries of an (order, status) a connection was already told, not pushed again.
    pub notifications_repeated: Counter,
    /// Notifications sent from the backplane's history to a client that reconnected.
    pub notifications_replayed: Counter,
    pub slow_clients_closed: Counter,
    pub protocol_errors: Counter,
    /// Fan-out messages lost because this replica fell behind the in-process channel.
    pub fanout_dropped: Counter,
    /// Messages received from the fan-out subscription and not yet handed to connections.
    pub fanout_backlog: Gauge,
    /// Time from taking a message off the subscription to queueing it on every local
    /// connection of its user: last and longest.
    fanout_lag: Seconds,
    fanout_lag_max: Seconds,
    fanout_lag_max_us: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("signalr_hub");
        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let (connections, users, fanout_backlog) = (
            gauge("connections", "Open connections on this replica."),
            gauge("users", "Distinct users connected to this replica."),
            gauge(
                "fanout_backlog",
                "Fan-out messages waiting to be dispatched.",
            ),
        );
        // Counters are exposed with the `_total` suffix.
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let connections_opened = counter("connections_opened", "Connections created.");
        let connections_closed = counter("connections_closed", "Connections ended.");
        let messages_received = counter("messages_received", "Hub protocol records received.");
        let invocations = counter("invocations", "Hub method invocations.");
        let notifications_received = counter(
            "notifications_received",
            "Notifications taken from the fan-out channel.",
        );
        let notifications_delivered = counter(
            "notifications_delivered",
            "Notifications queued to a connection (one per connection).",
        );
        let notifications_replayed = counter(
            "notifications_replayed",
            "Notifications a reconnecting client missed, sent from the backplane's history.",
        );
        let notifications_repeated = counter(
            "notifications_repeated",
            "Redelivered notifications a connection had already been given (not pushed again).",
        );
        let slow_clients_closed = counter(
            "slow_clients_closed",
            "Connections closed because their send queue was full.",
        );
        let protocol_errors = counter(
            "protocol_errors",
            "Connections closed for a protocol violation or a limit.",
        );
        let fanout_dropped = counter(
            "fanout_dropped",
            "Fan-out messages this replica fell too far behind to see.",
        );
        let mut seconds = |name: &str, help: &str| {
            let gauge = Seconds::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let fanout_lag = seconds(
            "fanout_lag_seconds",
            "Dispatch time of the last fan-out message.",
        );
        let fanout_lag_max = seconds(
            "fanout_lag_max_seconds",
            "Longest dispatch time of a fan-out message.",
        );
        Metrics {
            registry,
            connections,
            users,
            connections_opened,
            connections_closed,
            messages_received,
            invocations,
            notifications_received,
            notifications_delivered,
            notifications_repeated,
            notifications_replayed,
            slow_clients_closed,
            protocol_errors,
            fanout_dropped,
            fanout_backlog,
            fanout_lag,
            fanout_lag_max,
            fanout_lag_max_us: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn incr(counter: &Counter) {
        counter.inc();
    }

    pub fn record_lag(&self, micros: u64) {
        self.fanout_lag.set(micros as f64 / 1e6);
        let longest = self
            .fanout_lag_max_us
            .fetch_max(micros, Relaxed)
            .max(micros);
        self.fanout_lag_max.set(longest as f64 / 1e6);
    }

    pub fn render(&self, connections: usize, users: usize) -> String {
        self.connections.set(connections as i64);
        self.users.set(users as i64);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_prometheus_text_format() {
        let metrics = Metrics::default();
        Metrics::incr(&metrics.notifications_delivered);
        metrics.record_lag(1500);
        metrics.record_lag(500);
        let text = metrics.render(3, 2);
        for line in [
            "# TYPE signalr_hub_connections gauge",
            "signalr_hub_connections 3",
            "signalr_hub_users 2",
            "signalr_hub_notifications_delivered_total 1",
            "signalr_hub_fanout_lag_seconds 0.0005",
            "signalr_hub_fanout_lag_max_seconds 0.0015",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
