//! Ports: the small traits the functions depend on. Adapters (SQLite, SQL Server, Redis,
//! RabbitMQ, memory, ...) implement them; the functions never name an adapter.

use crate::cursor::Cursor;
use crate::events::{FanoutMessage, Notification};
use crate::ids::{CorrelationId, OrderId, OrderRef, UserId};
use crate::order::{FailedOrder, FailureRecorded, NewOrder, Order, SavedOrder};
use crate::paging::{Page, PageRequest};
use crate::product::Product;
use crate::status::TrackedStatus;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;
use thiserror::Error;

/// A dependency failed; the message names which and why, for logs (never for clients).
#[derive(Debug, Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: &'static str,
    pub message: String,
    pub kind: ErrorKind,
    /// The error that caused it, when there is one (logs print the chain).
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Whether trying the same thing again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The dependency is down, busy or slow: a retry may work (HTTP 503 with Retry-After).
    Transient,
    /// It refused this request and always will: a constraint, data that does not decode
    /// (HTTP 500: retrying the same request is pointless).
    Permanent,
}

impl BackendError {
    /// A transient failure described by `cause`.
    pub fn new(backend: &'static str, cause: impl std::fmt::Display) -> Self {
        BackendError {
            backend,
            message: cause.to_string(),
            kind: ErrorKind::Transient,
            source: None,
        }
    }

    /// A failure of `kind` caused by `source`, kept for the chain.
    pub fn caused_by(
        backend: &'static str,
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BackendError {
            backend,
            message: source.to_string(),
            kind,
            source: Some(Box::new(source)),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

/// The system of record (SQL).
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Persists the order and its lines in one transaction keyed by the correlation id. A second
    /// call with the same correlation id writes nothing and returns the first order's id. A
    /// recorded failure of the same order is cleared in the same transaction (a retry worked).
    async fn save_order(&self, order: &NewOrder) -> Result<SavedOrder, BackendError>;
    /// Records that the order's message was dead-lettered, unless the order was persisted
    /// after all. Recording it again replaces the reason.
    async fn record_failure(&self, failed: &FailedOrder) -> Result<FailureRecorded, BackendError>;
    /// The owner's failed order with this correlation id; another user's is `None`.
    async fn find_failure(
        &self,
        owner: &UserId,
        correlation_id: CorrelationId,
    ) -> Result<Option<FailedOrder>, BackendError>;
    /// Failed orders, oldest first, for operators.
    async fn failures(&self, limit: usize) -> Result<Vec<FailedOrder>, BackendError>;
    /// The owner's order, unless deleted. Another user's order is `None`.
    async fn find_order(
        &self,
        owner: &UserId,
        order: OrderRef,
    ) -> Result<Option<Order>, BackendError>;
    /// The owner's orders, newest first, deleted ones left out.
    async fn list_orders(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, BackendError>;
    /// Soft-deletes the owner's order; false when there is no such order for this owner.
    async fn delete_order(&self, owner: &UserId, order: OrderId) -> Result<bool, BackendError>;
    /// Who placed the order with this correlation id (the notifier's fallback).
    async fn owner_of(&self, correlation_id: CorrelationId)
    -> Result<Option<UserId>, BackendError>;
    /// Readiness probe.
    async fn ping(&self) -> Result<(), BackendError>;
}

/// Where the catalog is loaded from at start-up.
#[async_trait]
pub trait CatalogSource: Send + Sync {
    async fn load_products(&self) -> Result<Vec<Product>, BackendError>;
}

/// A stored answer to a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Hash of the request body: the same key with another body is refused.
    pub fingerprint: String,
    /// The first answer (status and body), once there is one.
    pub response: Option<(u16, String)>,
}

/// The workflow-state key of an order's status (`order:status:{cid}`), the same in every
/// adapter and readable by anything that shares the store (the hub, operators).
pub fn status_key(cid: CorrelationId) -> String {
    format!("order:status:{cid}")
}

/// The workflow-state key of an order's owner (`order:map:{cid}`).
pub fn owner_key(cid: CorrelationId) -> String {
    format!("order:map:{cid}")
}

/// Short-lived workflow state (Redis in the server modes, in-process when embedded).
/// Every key written here expires after the given TTL.
#[async_trait]
pub trait WorkflowState: Send + Sync {
    /// Records the status and the correlationId -> userId map of a newly accepted order. An
    /// order already tracked keeps its status: a retry with the same Idempotency-Key derives
    /// the same correlation id, and statuses only move forward.
    async fn track(
        &self,
        cid: CorrelationId,
        owner: &UserId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<(), BackendError>;
    /// Moves the status forward (never back) and refreshes the TTLs; returns what is stored after.
    async fn advance(
        &self,
        cid: CorrelationId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<TrackedStatus, BackendError>;
    async fn status(&self, cid: CorrelationId) -> Result<Option<TrackedStatus>, BackendError>;
    async fn owner(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError>;
    /// Stores `record` under `key` unless the key exists; returns the existing record if it does.
    async fn claim_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<Option<IdempotencyRecord>, BackendError>;
    /// Replaces the record under `key` (to add the answer).
    async fn complete_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<(), BackendError>;
    /// Forgets a claim whose request failed, so a retry can go through.
    async fn release_idempotency_key(&self, key: &str) -> Result<(), BackendError>;
}

/// A message for a queue: the body plus the properties the broker carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub message_id: String,
    /// Messages of one session are delivered one at a time, in order.
    pub session_id: Option<String>,
    pub body: String,
    /// Application properties: correlationId, traceparent, ...
    pub properties: BTreeMap<String, String>,
}

/// Publishes messages to a named queue. `Ok` means the broker has the message durably.
#[async_trait]
pub trait MessagePublisher: Send + Sync {
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError>;
}

/// Fans a notification out to every hub replica, which delivers it to the user's connections.
#[async_trait]
pub trait NotificationFanout: Send + Sync {
    async fn publish(&self, user: &UserId, notification: &Notification)
    -> Result<(), BackendError>;
}

/// Each user's recent notifications, kept by the backplane so that a client which reconnects
/// (to any replica, after a hub restart too) is sent what it missed.
#[async_trait]
pub trait NotificationHistory: Send + Sync {
    /// The user's notifications after `after`, oldest first; bounded in count and age by the
    /// backplane, each with its cursor.
    async fn since(&self, user: &UserId, after: Cursor) -> Result<Vec<Notification>, BackendError>;
}

/// What a hub replica reads from its fan-out subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutEvent {
    Message(FanoutMessage),
    /// This many messages were published but dropped before this subscriber read them (it fell
    /// behind a bounded buffer).
    Missed(u64),
}

/// The hub's side of [`NotificationFanout`]: every message published after it subscribed, in
/// publication order, each with its cursor. Each backend keeps the subscription alive by itself:
/// Redis resumes after an outage from the last position it read, so nothing published meanwhile
/// is lost.
#[async_trait]
pub trait FanoutSubscription: Send {
    /// The next event; `None` once the subscription has ended for good.
    async fn next(&mut self) -> Option<FanoutEvent>;
    /// Messages received and not read yet.
    fn backlog(&self) -> usize;
    /// The backend, for health checks: "memory" or "redis".
    fn backend(&self) -> &'static str;
}

/// A message received from a queue, locked for its receiver until settled or until the
/// transport's lock expires (then it is delivered again, with `delivery_count` one higher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub queue: String,
    pub message_id: String,
    pub session_id: Option<String>,
    pub body: String,
    pub properties: BTreeMap<String, String>,
    /// 1 on the first delivery.
    pub delivery_count: u32,
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
    /// Identifies this delivery (not the message) when settling it.
    pub lock_token: String,
}

/// What to do with a delivery once its function has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Done: remove the message.
    Complete,
    /// Failed: deliver it again at once, still first of its session (Service Bus abandon).
    Abandon,
    /// Give up: move it to its queue's dead-letter subqueue ([`dead_letter_queue`]), recording
    /// why as Service Bus does (`DeadLetterReason`, `DeadLetterErrorDescription` properties).
    /// A message of a dead-letter subqueue cannot be dead-lettered again: it stays there,
    /// no longer delivered, for an operator.
    DeadLetter { reason: String, description: String },
}

/// Where a queue's dead letters go, and where a function can be triggered by them:
/// `{queue}/$deadletterqueue`, Service Bus's path for the dead-letter subqueue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}{DEAD_LETTER_SUFFIX}")
}

pub const DEAD_LETTER_SUFFIX: &str = "/$deadletterqueue";

/// The application properties Service Bus sets on a dead-lettered message
/// (Azure/azure-sdk-for-net `sdk/servicebus/Azure.Messaging.ServiceBus/src/Amqp/AmqpMessageConstants.cs`
/// at 34ae4ccff29d6b7cad9e956711ab877249b62bc9: `DeadLetterReasonHeader`,
/// `DeadLetterErrorDescriptionHeader`, "stored in the ServiceBusReceivedMessage.ApplicationProperties").
/// The `$deadletterqueue` path: MicrosoftDocs/azure-docs `service-bus-dead-letter-queues.md`.
pub const DEAD_LETTER_REASON: &str = "DeadLetterReason";
pub const DEAD_LETTER_DESCRIPTION: &str = "DeadLetterErrorDescription";

/// A dead-lettered message, as the dead-letter tool lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub queue: String,
    pub message_id: String,
    pub session_id: Option<String>,
    pub body: String,
    pub properties: BTreeMap<String, String>,
    pub delivery_count: u32,
    pub reason: String,
}

/// How far behind a queue's receivers are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Messages waiting on the queue (a dead-letter subqueue's parked ones left out).
    pub depth: u64,
    /// When the oldest of them was enqueued, where the broker can tell without taking it.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

/// A queue broker as the local Functions host drives it: at-least-once delivery with locks,
/// delivery counts, per-session FIFO (one message of a session in flight at a time, in order),
/// and a dead-letter store. The embedded SQLite queue and RabbitMQ implement it.
#[async_trait]
pub trait QueueTransport: MessagePublisher {
    /// Up to `max` deliverable messages of `queue` (at least one unless `wait` passes first),
    /// each locked for this receiver. One round trip serves them all, like a Service Bus
    /// receive of a batch; messages of one session still come one at a time.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError>;
    /// Settles a delivery. Settling a delivery whose lock has expired is an error.
    async fn settle(&self, delivery: &Delivery, settlement: Settlement)
    -> Result<(), BackendError>;
    /// Completes a delivery and publishes what its function output, as the host does after a
    /// successful invocation. A transport that can do both in one transaction (the embedded
    /// queue: an outbox in the same file) does; otherwise the outputs are published first, so
    /// a crash in between repeats them (their message ids are derived from the input's) rather
    /// than losing them.
    async fn complete(
        &self,
        delivery: &Delivery,
        outputs: Vec<(String, OutboundMessage)>,
    ) -> Result<(), BackendError> {
        for (queue, message) in outputs {
            self.publish(&queue, message).await?;
        }
        self.settle(delivery, Settlement::Complete).await
    }
    /// Extends the lock of a delivery still being processed, as the Functions host renews
    /// locks up to `maxAutoLockRenewalDuration`. An error when the lock is already lost.
    async fn renew_lock(&self, delivery: &Delivery) -> Result<(), BackendError>;
    /// How many messages wait on `queue`, and since when.
    async fn backlog(&self, queue: &str) -> Result<Backlog, BackendError>;
    /// Dead-lettered messages of `queue`, oldest first.
    async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError>;
    /// Moves a dead-lettered message back onto its queue with a fresh delivery count; false when
    /// there is no such dead letter.
    async fn replay_dead_letter(&self, queue: &str, message_id: &str)
    -> Result<bool, BackendError>;
}
