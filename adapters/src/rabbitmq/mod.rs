//! RabbitMQ as the local stand-in for Service Bus: the same [`QueueTransport`] contract as the
//! embedded `SqliteQueue`, for the server modes where the host runs as several replicas.
//!
//! Topology, declared on first use of a logical queue `q` (or by [`RabbitQueue::declare`]):
//! - `q.s0` .. `q.s{N-1}`: durable quorum queues with `x-single-active-consumer`, a delivery
//!   limit (see below) and dead-lettering to `q.dlq`. A message goes to shard
//!   `fnv1a(session id) % N` (no session: by message id). Every process on a queue must use
//!   the same N. Shards above N, left by a larger N, are drained before the others
//!   (`reshard`).
//! - `q.dlq`: a durable classic queue holding what the broker gives up on (the delivery limit)
//!   and, for a dead-letter subqueue, what its own consumer gave up on (parked).
//! - `q/$deadletterqueue`: the dead-letter subqueue, Service Bus's path, sharded like any queue
//!   so that a function can be triggered by it.
//!
//! Semantics, and how they differ from Service Bus sessions:
//! - **Per-session FIFO.** Single-active-consumer gives a shard to one consumer across all
//!   processes. That consumer has several deliveries prefetched, and its gate (`gate`) hands
//!   them out one per session at a time, in queue order: sessions sharing a shard run side by
//!   side, each in order. N caps how many replicas share a queue's work (default
//!   [`DEFAULT_SHARDS`]).
//! - **Shards spread over replicas.** Each replica keeps its active shards at its fair share
//!   and hands the rest over without breaking their order (`balance`).
//! - **Abandon** rejects with requeue, which puts the message back at the head of its shard
//!   (the delivery limit makes quorum queues do that) and raises its delivery count: at once,
//!   as Service Bus redelivers an abandoned message.
//! - **Delivery count** comes from the quorum queue's `x-delivery-count` (and 4.x's
//!   `x-acquired-count`) headers, which count earlier deliveries: + 1.
//! - **Lock expiry.** There is no time-based lock (so renewing one only checks it is still
//!   held): a delivery stays with its receiver until it is settled or the receiver's connection
//!   closes, when the broker requeues it at the head
//!   with a higher count (the broker's `consumer_timeout`, 30 min by default, closes a channel
//!   that holds one far too long).
//! - **Duplicate detection.** None: RabbitMQ has no such feature and a process-local cache
//!   would only catch retries within one replica. Consumers are idempotent (the processor keys
//!   on the correlation id), which is what makes at-least-once delivery safe anyway.
//! - **Publish** waits for the broker's confirm (persistent message, durable queue); a nack, a
//!   returned message or a lost connection is an error, so intake answers 503.
//! - **Dead letter** publishes a copy to `q/$deadletterqueue` (with the `DeadLetterReason` and
//!   `DeadLetterErrorDescription` properties, and original message id and delivery count
//!   headers), waits for its confirm, then acks the original; a subqueue's own dead letters are
//!   parked in its `.dlq`. **Replay** publishes one to its shard with the same message id and a
//!   fresh count, then acks the copy. Either can leave a duplicate behind if the process dies in
//!   between.
//! - **Reconnect.** A failed operation marks the connection broken; the next call opens a new
//!   one (and new consumers). Deliveries of the old connection can no longer be settled.

mod balance;
mod codec;
mod dead_letters;
mod gate;
mod link;
mod reshard;
mod shard;

pub use codec::shard_of;

use async_trait::async_trait;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use lapin::types::AMQPValue;
use link::{Link, shard_for};
use orders_core::ports::{
    BackendError, Backlog, DEAD_LETTER_DESCRIPTION, DEAD_LETTER_REASON, DEAD_LETTER_SUFFIX,
    DeadLetter, Delivery, MessagePublisher, OutboundMessage, QueueTransport, Settlement,
    dead_letter_queue,
};
use shard::{Held, ShardConsumer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Shards per queue unless told otherwise: the units a queue's work is spread over replicas in.
/// Few, busy quorum queues cost the broker less per message than many idle ones (its log
/// writes batch what a queue has in flight): 8 against 32 cut its CPU per order by a sixth.
pub const DEFAULT_SHARDS: usize = 8;

pub(crate) fn rabbit_err(cause: impl std::fmt::Display) -> BackendError {
    BackendError::new("rabbitmq", cause)
}

/// Publishes to, and delivers from, sharded RabbitMQ queues.
pub struct RabbitQueue {
    url: String,
    shards: usize,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
    /// Unsettled deliveries by lock token; the acker knows the channel and delivery tag.
    locks: Mutex<HashMap<String, Held>>,
}

impl RabbitQueue {
    /// Connects to `url` (`amqp://user:pass@host:port/vhost`) with `shards` shards per queue.
    pub async fn connect(url: &str, shards: usize) -> Result<Self, BackendError> {
        if shards == 0 {
            return Err(rabbit_err("shards must be at least 1"));
        }
        let queue = RabbitQueue {
            url: url.to_owned(),
            shards,
            link: tokio::sync::Mutex::new(None),
            locks: Mutex::default(),
        };
        queue.link().await?;
        Ok(queue)
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Declares the shards and the dead-letter queue of `queue` now rather than on first use.
    pub async fn declare(&self, queue: &str) -> Result<(), BackendError> {
        self.link().await?.declare(queue).await
    }

    /// The live connection, opening a new one if there is none or the last one broke.
    async fn link(&self) -> Result<Arc<Link>, BackendError> {
        let mut current = self.link.lock().await;
        if let Some(link) = current.as_ref().filter(|link| link.usable()) {
            return Ok(Arc::clone(link));
        }
        *current = None;
        let link = Arc::new(Link::open(&self.url, self.shards).await?);
        *current = Some(Arc::clone(&link));
        Ok(link)
    }

    /// The delivery of `raw`, its acker kept under a fresh lock token until it is settled;
    /// `None` if its shard is being given to another replica.
    fn hold(&self, queue: &str, shard: Arc<ShardConsumer>, raw: AmqpDelivery) -> Option<Delivery> {
        let token = uuid::Uuid::new_v4().to_string();
        let delivery = codec::delivery(queue, &raw, token.clone());
        let held = Held::take(shard, &raw, delivery.session_id.clone())?;
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks.len() > 4096 {
            locks.retain(|_, held| held.acker.usable());
        }
        locks.insert(token, held);
        Some(delivery)
    }

    fn take_lock(&self, token: &str) -> Result<Held, BackendError> {
        let held = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
        held.filter(|held| held.acker.usable()).ok_or_else(|| {
            rabbit_err("the delivery's lock was lost (settled, or its connection closed)")
        })
    }

    /// Publishes the delivery to its queue's dead-letter subqueue (a queue like any other, so a
    /// function can be triggered by it), with the reason as Service Bus records it. A delivery
    /// of a subqueue is parked in the subqueue's classic `.dlq` instead: no longer delivered.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        reason: String,
        description: String,
    ) -> Result<(), BackendError> {
        let parked = delivery.queue.ends_with(DEAD_LETTER_SUFFIX);
        let mut properties = delivery.properties.clone();
        if !parked {
            properties.insert(DEAD_LETTER_REASON.into(), reason.clone());
            properties.insert(DEAD_LETTER_DESCRIPTION.into(), description);
        }
        let message = OutboundMessage {
            message_id: delivery.message_id.clone(),
            session_id: delivery.session_id.clone(),
            body: delivery.body.clone(),
            properties,
        };
        let extra = vec![
            (
                codec::DEAD_LETTER_REASON,
                AMQPValue::LongString(reason.into()),
            ),
            (
                codec::ORIGINAL_MESSAGE_ID,
                AMQPValue::LongString(delivery.message_id.as_str().into()),
            ),
            (
                codec::DEAD_LETTER_DELIVERY_COUNT,
                AMQPValue::LongLongInt(delivery.delivery_count.into()),
            ),
        ];
        let properties = codec::properties(&message, extra)?;
        let link = self.link().await?;
        let target = if parked {
            link.declare(&delivery.queue).await?;
            link::parking_queue(&delivery.queue)
        } else {
            let dlq = dead_letter_queue(&delivery.queue);
            link.declare(&dlq).await?;
            shard_for(
                &dlq,
                message.session_id.as_deref(),
                &message.message_id,
                self.shards,
            )
        };
        link.publish(&target, message.body.as_bytes(), properties)
            .await
    }
}

/// Acks `held`; then its session goes on.
async fn ack(held: &Held) -> Result<(), BackendError> {
    settled(held.acker.ack(BasicAckOptions::default()).await)?;
    held.done(None);
    Ok(())
}

fn settled(result: Result<bool, lapin::Error>) -> Result<(), BackendError> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(rabbit_err(
            "the delivery's lock was lost (its channel closed)",
        )),
        Err(e) => Err(rabbit_err(e)),
    }
}

#[async_trait]
impl MessagePublisher for RabbitQueue {
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        let properties = codec::properties(&message, vec![])?;
        let target = shard_for(
            queue,
            message.session_id.as_deref(),
            &message.message_id,
            self.shards,
        );
        let link = self.link().await?;
        link.declare(queue).await?;
        link.publish(&target, message.body.as_bytes(), properties)
            .await
    }
}

#[async_trait]
impl QueueTransport for RabbitQueue {
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        let link = self.link().await?;
        let inbox = link.inbox(queue).await?;
        let mut inbox = inbox.deliveries.lock().await;
        let deadline = tokio::time::Instant::now() + wait;
        let mut taken = Vec::new();
        while taken.len() < max.max(1) {
            // Wait for the first; then take only what the consumers have already buffered.
            let raw = if taken.is_empty() {
                match tokio::time::timeout_at(deadline, inbox.recv()).await {
                    Err(_elapsed) => break,
                    Ok(raw) => raw,
                }
            } else {
                match inbox.try_recv() {
                    Ok(raw) => Some(raw),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            let Some(raw) = raw else {
                link.mark_broken();
                if taken.is_empty() {
                    return Err(rabbit_err("the connection to RabbitMQ was lost"));
                }
                break;
            };
            // Buffered before its channel closed: the broker has already requeued it.
            let (shard, raw) = raw;
            if raw.acker.usable() {
                taken.extend(self.hold(queue, shard, raw));
            }
        }
        Ok(taken)
    }

    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<(), BackendError> {
        let held = self.take_lock(&delivery.lock_token)?;
        let requeue = BasicRejectOptions { requeue: true };
        match settlement {
            Settlement::Complete => ack(&held).await,
            Settlement::Abandon => {
                // Before the reject: the message may be back before the reject has returned.
                held.done(Some(&delivery.message_id));
                settled(held.acker.reject(requeue).await)
            }
            Settlement::DeadLetter {
                reason,
                description,
            } => {
                // Keep the lock until the copy is confirmed; give it back if that fails.
                if let Err(e) = self.dead_letter(delivery, reason, description).await {
                    self.locks
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(delivery.lock_token.clone(), held);
                    return Err(e);
                }
                ack(&held).await
            }
        }
    }

    /// No time-based lock to extend: the delivery is held while its channel lives.
    async fn renew_lock(&self, delivery: &Delivery) -> Result<(), BackendError> {
        let locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        match locks.get(&delivery.lock_token) {
            Some(held) if held.acker.usable() => Ok(()),
            _ => Err(rabbit_err(
                "the delivery's lock was lost (settled, or its connection closed)",
            )),
        }
    }

    /// The ready messages of every shard; the broker tells no message's age without a get.
    async fn backlog(&self, queue: &str) -> Result<Backlog, BackendError> {
        let depth = self.link().await?.depth(queue).await?;
        Ok(Backlog {
            depth,
            oldest: None,
        })
    }

    async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError> {
        dead_letters::list(&*self.link().await?, queue, limit, self.shards).await
    }

    async fn replay_dead_letter(
        &self,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, BackendError> {
        dead_letters::replay(&*self.link().await?, queue, message_id, self.shards).await
    }
}
