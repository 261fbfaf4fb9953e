//! Counters for `/hubs/metrics` (Prometheus text format) and the health probe.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_opened: AtomicU64,
    pub connections_closed: AtomicU64,
    pub messages_received: AtomicU64,
    pub invocations: AtomicU64,
    pub notifications_received: AtomicU64,
    pub notifications_delivered: AtomicU64,
    pub slow_clients_closed: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// Fan-out messages lost because this replica fell behind the in-process channel.
    pub fanout_dropped: AtomicU64,
    /// Messages received from the fan-out subscription and not yet handed to connections.
    pub fanout_backlog: AtomicU64,
    /// Time from taking a message off the subscription to queueing it on every local
    /// connection of its user (microseconds): last and maximum.
    pub fanout_lag_last_us: AtomicU64,
    pub fanout_lag_max_us: AtomicU64,
}

impl Metrics {
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn record_lag(&self, micros: u64) {
        self.fanout_lag_last_us.store(micros, Relaxed);
        self.fanout_lag_max_us.fetch_max(micros, Relaxed);
    }

    pub fn render(&self, connections: usize, users: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        let get = |c: &AtomicU64| c.load(Relaxed).to_string();
        let secs = |c: &AtomicU64| format!("{:.6}", c.load(Relaxed) as f64 / 1e6);
        metric(
            "signalr_hub_connections",
            "gauge",
            "Open connections on this replica.",
            connections.to_string(),
        );
        metric(
            "signalr_hub_users",
            "gauge",
            "Distinct users connected to this replica.",
            users.to_string(),
        );
        metric(
            "signalr_hub_connections_opened_total",
            "counter",
            "Connections created.",
            get(&self.connections_opened),
        );
        metric(
            "signalr_hub_connections_closed_total",
            "counter",
            "Connections ended.",
            get(&self.connections_closed),
        );
        metric(
            "signalr_hub_messages_received_total",
            "counter",
            "Hub protocol records received.",
            get(&self.messages_received),
        );
        metric(
            "signalr_hub_invocations_total",
            "counter",
            "Hub method invocations.",
            get(&self.invocations),
        );
        metric(
            "signalr_hub_notifications_received_total",
            "counter",
            "Notifications taken from the fan-out channel.",
            get(&self.notifications_received),
        );
        metric(
            "signalr_hub_notifications_delivered_total",
            "counter",
            "Notifications queued to a connection (one per connection).",
            get(&self.notifications_delivered),
        );
        metric(
            "signalr_hub_slow_clients_closed_total",
            "counter",
            "Connections closed because their send queue was full.",
            get(&self.slow_clients_closed),
        );
        metric(
            "signalr_hub_protocol_errors_total",
            "counter",
            "Connections closed for a protocol violation or a limit.",
            get(&self.protocol_errors),
        );
        metric(
            "signalr_hub_fanout_dropped_total",
            "counter",
            "Fan-out messages this replica fell too far behind to see.",
            get(&self.fanout_dropped),
        );
        metric(
            "signalr_hub_fanout_backlog",
            "gauge",
            "Fan-out messages waiting to be dispatched.",
            get(&self.fanout_backlog),
        );
        metric(
            "signalr_hub_fanout_lag_seconds",
            "gauge",
            "Dispatch time of the last fan-out message.",
            secs(&self.fanout_lag_last_us),
        );
        metric(
            "signalr_hub_fanout_lag_max_seconds",
            "gauge",
            "Longest dispatch time of a fan-out message.",
            secs(&self.fanout_lag_max_us),
        );
        out
    }
}
