//! One shard's consumer on a connection: what it has handed out, whether it is being given
//! back to another replica ([`super::balance`]), and the gate that keeps its sessions FIFO with
//! several deliveries prefetched ([`super::gate`]).

use super::codec;
use super::gate::{Gate, Session};
use lapin::message::Delivery as AmqpDelivery;
use lapin::{Acker, Channel};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A shard that delivered within this window counts as active here.
const ACTIVE_WINDOW: Duration = Duration::from_secs(3);

/// What a shard consumer passes to the inbox.
pub(super) type Incoming = (Arc<ShardConsumer>, AmqpDelivery);

pub(super) struct ShardConsumer {
    pub(super) queue: String,
    /// The queue's inbox, which `receive` takes deliveries from.
    inbox: mpsc::UnboundedSender<Incoming>,
    /// Deliveries handed out and not yet settled (counted by [`Held`]).
    pub(super) in_flight: AtomicUsize,
    /// Being given back: its deliveries are no longer handed out.
    releasing: AtomicBool,
    last_delivery: Mutex<Option<Instant>>,
    /// Its channel while it is subscribed; closed to give the shard back.
    channel: tokio::sync::Mutex<Option<Channel>>,
    gate: Mutex<Gate>,
    /// Counts the channels it has consumed on, so a settle from an earlier one is told apart.
    generation: AtomicU64,
}

impl ShardConsumer {
    pub(super) fn new(queue: String, inbox: mpsc::UnboundedSender<Incoming>) -> Arc<Self> {
        Arc::new(ShardConsumer {
            queue,
            inbox,
            in_flight: AtomicUsize::new(0),
            releasing: AtomicBool::new(false),
            last_delivery: Mutex::new(None),
            channel: tokio::sync::Mutex::new(None),
            gate: Mutex::default(),
            generation: AtomicU64::new(0),
        })
    }

    pub(super) fn releasing(&self) -> bool {
        self.releasing.load(Ordering::SeqCst)
    }

    pub(super) fn set_releasing(&self, releasing: bool) {
        self.releasing.store(releasing, Ordering::SeqCst);
    }

    /// Starts consuming on `channel`: nothing of an earlier channel is held any more.
    pub(super) async fn subscribed(&self, channel: Channel) {
        self.gate().clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let earlier = self.channel.lock().await.replace(channel);
        if let Some(earlier) = earlier {
            // Never two subscriptions: what the earlier one holds would be stranded.
            let _ = earlier.close(200, "subscribed again".into()).await;
        }
    }

    /// Closes its channel, which requeues whatever it holds for the next consumer; it counts
    /// as inactive until it subscribes again.
    pub(super) async fn unsubscribe(&self) {
        if let Some(channel) = self.channel.lock().await.take() {
            let _ = channel.close(200, "rebalancing".into()).await;
        }
        *self.last_delivery.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub(super) async fn is_subscribed(&self) -> bool {
        self.channel.lock().await.is_some()
    }

    /// Holds none of its deliveries: none handed out, none parked.
    pub(super) fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && self.gate().is_empty()
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A delivery from the broker: to the inbox now, or once its session's turn comes. False
    /// if the inbox is gone.
    pub(super) fn delivered(self: &Arc<Self>, delivery: AmqpDelivery) -> bool {
        *self.last_delivery.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let session = codec::session_id(&delivery);
        let admitted = self.gate().admit(session, delivery);
        admitted.is_none_or(|delivery| self.forward(delivery))
    }

    fn forward(self: &Arc<Self>, delivery: AmqpDelivery) -> bool {
        self.inbox.send((Arc::clone(self), delivery)).is_ok()
    }

    pub(super) fn active(&self, now: Instant) -> bool {
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
    session: Session,
    tag: u64,
    generation: u64,
}

impl Held {
    /// `None` when the shard is being given back: the delivery stays unacked, and closing the
    /// channel requeues it for the next owner. (Counted before the check, so a release waiting
    /// for the count to drop cannot miss it.)
    pub(super) fn take(
        shard: Arc<ShardConsumer>,
        raw: &AmqpDelivery,
        session: Session,
    ) -> Option<Held> {
        shard.in_flight.fetch_add(1, Ordering::SeqCst);
        let held = Held {
            acker: raw.acker.clone(),
            generation: shard.generation.load(Ordering::SeqCst),
            session,
            tag: raw.delivery_tag,
            shard,
        };
        (!held.shard.releasing()).then_some(held)
    }

    /// Its session may go on: with the next delivery, or (`abandoned`: the id of this message,
    /// back in the queue) once this one has come back.
    pub(super) fn done(&self, abandoned: Option<&str>) {
        let Some(session) = &self.session else { return };
        if self.generation != self.shard.generation.load(Ordering::SeqCst) {
            return;
        }
        let next = self.shard.gate().settled(session, self.tag, abandoned);
        if let Some(delivery) = next {
            self.shard.forward(delivery);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shard.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
