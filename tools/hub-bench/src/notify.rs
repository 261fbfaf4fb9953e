//! Publishing on the backplane, as the notifier does (`RedisFanout::publish`: one script that
//! appends to the stream and the user's history), and measuring receipt.
//!
//! Notification `id` goes to user `u{id % users}` with `orderId = id`; the publisher stores the
//! instant just before it publishes in `Tracker::sent_us[id]`, and the connections (same
//! process, same clock) note when the message reaches them. Latency is therefore publish issued
//! -> Text message read by the client, through Redis, the server and both sockets.

use crate::client::{NOT_SENT, Tracker};
use crate::procfs;
use orders_adapters::redis::RedisFanout;
use orders_core::events::Notification;
use orders_core::ports::NotificationFanout;
use orders_core::{CorrelationId, OrderId, OrderStatus, UserId};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1]
        };
        Latency {
            samples: samples.len(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: *samples.last().unwrap(),
            mean_us: samples.iter().sum::<u64>() as f64 / samples.len() as f64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    /// Notifications per second asked for; 0 means as fast as the publishers go.
    pub target_rate: f64,
    pub published: usize,
    pub publish_errors: usize,
    pub publish_secs: f64,
    pub publish_per_sec: f64,
    /// Sum over notifications of the recipient user's open connections.
    pub expected_deliveries: u64,
    pub delivered: u64,
    /// Expected deliveries that did not arrive within the loss timeout.
    pub losses: u64,
    /// Deliveries beyond the expected count for a notification.
    pub duplicates: u64,
    /// First publish issued -> last receipt.
    pub deliver_secs: f64,
    pub delivered_per_sec: f64,
    pub latency: Latency,
    pub server_cpu_secs: f64,
    pub client_cpu_secs: f64,
    /// Server CPU per delivered notification.
    pub server_cpu_us_per_delivery: f64,
}

pub struct Publisher {
    pub fanout: RedisFanout,
    pub tracker: Arc<Tracker>,
    pub pid: u32,
    pub clk_tck: u32,
    pub loss_timeout: Duration,
}

/// Notification `id`, for user `u{id % users}`.
fn notification(id: usize, users: usize) -> (UserId, Notification) {
    let user = UserId::parse(format!("u{}", id % users)).expect("a valid user id");
    let notification = Notification {
        correlation_id: CorrelationId::generate(),
        status: OrderStatus::Completed,
        order_id: Some(OrderId::new(id as i64)),
        cursor: None,
    };
    (user, notification)
}

async fn publish_one(fanout: &RedisFanout, tracker: &Tracker, id: usize) -> bool {
    let (user, notification) = notification(id, tracker.users());
    tracker.sent_us[id].store(tracker.now_us(), Relaxed);
    fanout.publish(&user, &notification).await.is_ok()
}

impl Publisher {
    /// Publishes `ids` at `rate` per second (one publisher, paced), or with `rate == 0` as fast
    /// as `publishers` concurrent publishers go (each awaits its publish before the next), then
    /// waits for the deliveries (at most `loss_timeout` after the last publish).
    pub async fn phase(
        &self,
        name: &str,
        ids: Range<usize>,
        rate: f64,
        publishers: usize,
    ) -> anyhow::Result<PhaseReport> {
        let tracker = &self.tracker;
        let cpu_server_before = procfs::cpu_secs(Some(self.pid), self.clk_tck)?;
        let cpu_client_before = procfs::cpu_secs(None, self.clk_tck)?;
        let errors = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        if rate > 0.0 {
            let start = tokio::time::Instant::now();
            for (n, id) in ids.clone().enumerate() {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due).await;
                if !publish_one(&self.fanout, tracker, id).await {
                    errors.fetch_add(1, Relaxed);
                }
            }
        } else {
            let publishers = publishers.max(1);
            let mut tasks = Vec::with_capacity(publishers);
            for first in 0..publishers {
                let fanout = self.fanout.clone();
                let tracker = Arc::clone(tracker);
                let errors = Arc::clone(&errors);
                let ids = ids.clone();
                tasks.push(tokio::spawn(async move {
                    for id in ids.skip(first).step_by(publishers) {
                        if !publish_one(&fanout, &tracker, id).await {
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                }));
            }
            for task in tasks {
                task.await?;
            }
        }
        let publish_secs = started.elapsed().as_secs_f64();
        let published = ids.len();
        let publish_errors = errors.load(Relaxed) as usize;

        let expected_for =
            |id: usize| u64::from(tracker.user_conns[id % tracker.users()].load(Relaxed));
        let expected_deliveries: u64 = ids.clone().map(expected_for).sum();
        let deadline = Instant::now() + self.loss_timeout;
        loop {
            let arrived: u64 = ids
                .clone()
                .map(|id| u64::from(tracker.received[id].load(Relaxed)).min(expected_for(id)))
                .sum();
            if arrived >= expected_deliveries || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let cpu_server = procfs::cpu_secs(Some(self.pid), self.clk_tck)? - cpu_server_before;
        let cpu_client = procfs::cpu_secs(None, self.clk_tck)? - cpu_client_before;

        let (mut delivered, mut losses, mut duplicates) = (0u64, 0u64, 0u64);
        for id in ids.clone() {
            let expected = expected_for(id);
            let got = u64::from(tracker.received[id].load(Relaxed));
            delivered += got.min(expected);
            losses += expected.saturating_sub(got);
            duplicates += got.saturating_sub(expected);
        }
        let first_sent = ids
            .clone()
            .map(|id| tracker.sent_us[id].load(Relaxed))
            .filter(|&t| t != NOT_SENT)
            .min()
            .unwrap_or(0);
        let mut last_receipt = first_sent;
        let mut samples = Vec::with_capacity(published);
        for &(id, at) in tracker.receipts.lock().unwrap().iter() {
            let id = id as usize;
            if ids.contains(&id) {
                let sent = tracker.sent_us[id].load(Relaxed);
                samples.push(at.saturating_sub(sent));
                last_receipt = last_receipt.max(at);
            }
        }
        let deliver_secs = (last_receipt - first_sent) as f64 / 1e6;
        let report = PhaseReport {
            name: name.to_owned(),
            target_rate: rate,
            published,
            publish_errors,
            publish_secs,
            publish_per_sec: published as f64 / publish_secs.max(1e-9),
            expected_deliveries,
            delivered,
            losses,
            duplicates,
            deliver_secs,
            delivered_per_sec: delivered as f64 / deliver_secs.max(1e-9),
            latency: Latency::of(samples),
            server_cpu_secs: cpu_server,
            client_cpu_secs: cpu_client,
            server_cpu_us_per_delivery: cpu_server * 1e6 / (delivered.max(1) as f64),
        };
        eprintln!(
            "{name}: {published} published in {publish_secs:.2} s ({:.0}/s), {delivered}/{expected_deliveries} delivered ({:.0}/s), p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {losses} lost, {duplicates} duplicates",
            report.publish_per_sec,
            report.delivered_per_sec,
            report.latency.p50_us as f64 / 1e3,
            report.latency.p99_us as f64 / 1e3,
            report.latency.max_us as f64 / 1e3,
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of((1..=100).collect());
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (50, 99, 100));
        assert_eq!(Latency::of(vec![]).samples, 0);
    }

    #[test]
    fn notification_id_goes_to_its_user_as_the_order_id() {
        let (user, notification) = notification(10_007, 10_000);
        assert_eq!(user.as_str(), "u7");
        assert_eq!(notification.order_id, Some(OrderId::new(10_007)));
        assert_eq!(notification.status, OrderStatus::Completed);
    }
}
