//! Ports: the small traits the functions depend on. Adapters (SQLite, SQL Server, Redis,
//! RabbitMQ, memory, ...) implement them; the functions never name an adapter.

use crate::events::Notification;
use crate::ids::{CorrelationId, OrderId, OrderRef, UserId};
use crate::order::{NewOrder, Order, SavedOrder};
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
}

impl BackendError {
    pub fn new(backend: &'static str, cause: impl std::fmt::Display) -> Self {
        BackendError {
            backend,
            message: cause.to_string(),
        }
    }
}

/// The system of record (SQL).
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Persists the order and its lines in one transaction keyed by the correlation id. A second
    /// call with the same correlation id writes nothing and returns the first order's id.
    async fn save_order(&self, order: &NewOrder) -> Result<SavedOrder, BackendError>;
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

/// Short-lived workflow state (Redis in the server modes, in-process when embedded).
/// Every key written here expires after the given TTL.
#[async_trait]
pub trait WorkflowState: Send + Sync {
    /// Records the status and the correlationId -> userId map of a newly accepted order.
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
