//! Spreading a queue's shards fairly over the replicas that consume it.
//!
//! Single active consumer keeps each shard FIFO across processes, but it hands a shard to
//! whichever consumer subscribed first and never moves it while that consumer lives: the first
//! replica to start would take every shard, and a second one would add intake but no processing.
//! So each replica watches how many replicas there are and how many shards it is active on, and
//! gives back what it holds above its fair share (`ceil(shards / replicas)`):
//!
//! - **Replicas** are counted by the broker: each one keeps a consumer on `{queue}.members`, an
//!   auto-delete queue no message is ever published to, whose declare-ok carries the consumer
//!   count. A replica that dies leaves it with its connection.
//! - **Active shards** are those that delivered here recently or have a delivery in hand (the
//!   broker does not tell a consumer that it has become active).
//! - **Giving a shard back** keeps it FIFO: stop handing out its deliveries, wait until those
//!   in hand are settled, then close its channel. The broker requeues what was prefetched, at
//!   the head, and activates the next waiting consumer: another replica. This one subscribes
//!   again a little later, at the back of the line.
//!
//! A replica that dies hands its shards over at once (its waiting peers take them). One that
//! joins gets its share within a few seconds, once the others next look.

use super::link::Link;
use lapin::message::Delivery as AmqpDelivery;
use lapin::{Acker, Channel};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often a replica compares its active shards with its fair share.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// A shard that delivered within this window counts as active here.
const ACTIVE_WINDOW: Duration = Duration::from_secs(3);
/// How long a given-back shard waits before subscribing again (behind the new owner).
const REJOIN_AFTER: Duration = Duration::from_secs(2);

/// What a shard consumer passes to the inbox.
pub(super) type Incoming = (Arc<ShardConsumer>, AmqpDelivery);

/// One shard's consumer on this connection.
pub(super) struct ShardConsumer {
    pub(super) queue: String,
    /// Deliveries handed out and not yet settled (counted by [`Held`]).
    in_flight: AtomicUsize,
    /// Being given back: its deliveries are no longer handed out.
    releasing: AtomicBool,
    last_delivery: Mutex<Option<Instant>>,
    /// Its channel, closed to give the shard back.
    pub(super) channel: tokio::sync::Mutex<Option<Channel>>,
}

impl ShardConsumer {
    pub(super) fn new(queue: String) -> Arc<Self> {
        Arc::new(ShardConsumer {
            queue,
            in_flight: AtomicUsize::new(0),
            releasing: AtomicBool::new(false),
            last_delivery: Mutex::new(None),
            channel: tokio::sync::Mutex::new(None),
        })
    }

    pub(super) fn releasing(&self) -> bool {
        self.releasing.load(Ordering::SeqCst)
    }

    /// Notes a delivery from the broker.
    pub(super) fn delivered(&self) {
        *self.last_delivery.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn active(&self, now: Instant) -> bool {
        let recent = self
            .last_delivery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| now.duration_since(at) < ACTIVE_WINDOW);
        !self.releasing() && (recent || self.in_flight.load(Ordering::SeqCst) > 0)
    }
}

/// A delivery handed out and not yet settled: its acker, and its shard's count while it lives.
pub(super) struct Held {
    pub(super) acker: Acker,
    shard: Arc<ShardConsumer>,
}

impl Held {
    /// `None` when the shard is being given back: the delivery stays unacked, and closing the
    /// channel requeues it for the next owner. (Counted before the check, so a release waiting
    /// for the count to drop cannot miss it.)
    pub(super) fn take(shard: Arc<ShardConsumer>, acker: Acker) -> Option<Held> {
        shard.in_flight.fetch_add(1, Ordering::SeqCst);
        let held = Held { acker, shard };
        (!held.shard.releasing()).then_some(held)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shard.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps this replica's active shards of `queue` at its fair share, until the link goes.
pub(super) async fn keep_fair(
    link: Weak<Link>,
    queue: String,
    shards: Vec<Arc<ShardConsumer>>,
    inbox: mpsc::UnboundedSender<Incoming>,
) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let Some(strong) = link.upgrade() else { return };
        let replicas = match strong.replicas(&queue).await {
            Ok(n) => n.max(1),
            Err(err) => {
                tracing::debug!(queue, error = %err, "could not count the replicas");
                continue;
            }
        };
        drop(strong);
        let fair = shards.len().div_ceil(replicas);
        let now = Instant::now();
        let mut active: Vec<&Arc<ShardConsumer>> =
            shards.iter().filter(|s| s.active(now)).collect();
        if active.len() <= fair {
            continue;
        }
        // Those with nothing in hand go first: they can be handed over at once.
        active.sort_by_key(|s| s.in_flight.load(Ordering::SeqCst));
        tracing::info!(
            queue,
            replicas,
            active = active.len(),
            fair,
            "giving shards back to the other replicas"
        );
        for shard in &active[..active.len() - fair] {
            tokio::spawn(give_back(link.clone(), Arc::clone(shard), inbox.clone()));
        }
    }
}

/// Hands `shard` to the next waiting replica once nothing of it is in hand, then queues up again.
async fn give_back(
    link: Weak<Link>,
    shard: Arc<ShardConsumer>,
    inbox: mpsc::UnboundedSender<Incoming>,
) {
    shard.releasing.store(true, Ordering::SeqCst);
    while shard.in_flight.load(Ordering::SeqCst) > 0 {
        if link.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some(channel) = shard.channel.lock().await.take() {
        let _ = channel.close(200, "rebalancing".into()).await;
    }
    tokio::time::sleep(REJOIN_AFTER).await;
    *shard
        .last_delivery
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = None;
    shard.releasing.store(false, Ordering::SeqCst);
    let Some(link) = link.upgrade() else { return };
    if let Err(err) = link.consume(Arc::clone(&shard), inbox).await {
        tracing::warn!(shard = shard.queue, error = %err, "could not subscribe to the shard again");
        link.mark_broken();
    }
}
