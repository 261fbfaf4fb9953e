//! A port whose adapter is still connecting, so that an app can serve before its servers answer
//! (the Functions host gives a custom handler about 30 s to bind its port; a paused serverless
//! Azure SQL takes a minute to resume).
//!
//! [`Deferred::connect`] starts a background task that tries to open the adapter, with capped
//! exponential backoff, until it succeeds. Until then every call answers
//! `BackendError("{name}: not connected yet")` (the API maps it to 503 with `Retry-After`);
//! afterwards every call goes to the adapter, without a restart.

use async_trait::async_trait;
use orders_core::events::Notification;
use orders_core::ids::{CorrelationId, OrderId, OrderRef, UserId};
use orders_core::order::{FailedOrder, FailureRecorded, NewOrder, Order, SavedOrder};
use orders_core::paging::{Page, PageRequest};
use orders_core::ports::{
    BackendError, Backlog, DeadLetter, Delivery, IdempotencyRecord, MessagePublisher,
    NotificationFanout, OrderStore, OutboundMessage, QueueTransport, Settlement, WorkflowState,
};
use orders_core::status::TrackedStatus;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The wait after the first failed attempt; it doubles after each further one.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// An attempt (connect, migrate, load) still running after this has failed.
/// Generous: a serverless Azure SQL takes about a minute to resume, and migrations follow.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(180);

/// `T` (a port: `dyn OrderStore`, ...) once the background task has opened it.
pub struct Deferred<T: ?Sized> {
    name: &'static str,
    cell: Arc<OnceCell<Arc<T>>>,
}

impl<T: ?Sized> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred {
            name: self.name,
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<T: ?Sized + Send + Sync + 'static> Deferred<T> {
    /// Calls `attempt(context.clone())` in a background task until it succeeds: at once, then
    /// after 250 ms, 500 ms, ... at most 10 s apart, with a warning naming `name` and the error
    /// after each failure. The task ends when it succeeds or when every clone of the returned
    /// handle is gone. Needs a Tokio runtime.
    pub fn connect<C, F, Fut>(name: &'static str, context: C, attempt: F) -> Self
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Arc<T>, BackendError>> + Send + 'static,
    {
        let cell = Arc::new(OnceCell::new());
        let target = Arc::downgrade(&cell);
        tokio::spawn(keep_trying(name, target, move || attempt(context.clone())));
        Deferred { name, cell }
    }
}

impl<T: ?Sized> Deferred<T> {
    /// The adapter, or `BackendError("{name}: not connected yet")`.
    pub fn get(&self) -> Result<&Arc<T>, BackendError> {
        self.cell
            .get()
            .ok_or_else(|| BackendError::new(self.name, "not connected yet"))
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

async fn keep_trying<T, Fut>(
    name: &'static str,
    target: Weak<OnceCell<Arc<T>>>,
    attempt: impl Fn() -> Fut,
) where
    T: ?Sized,
    Fut: Future<Output = Result<Arc<T>, BackendError>>,
{
    let mut delay = FIRST_RETRY_DELAY;
    for attempts in 1u32.. {
        if target.strong_count() == 0 {
            return; // nobody is left to use the connection
        }
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt())
            .await
            .unwrap_or_else(|_| {
                Err(BackendError::new(
                    name,
                    format_args!("no answer within {ATTEMPT_TIMEOUT:?}"),
                ))
            });
        match outcome {
            Ok(port) => {
                tracing::info!(dependency = name, attempts, "{name}: connected");
                if let Some(cell) = target.upgrade() {
                    let _ = cell.set(port);
                }
                return;
            }
            Err(err) => tracing::warn!(
                dependency = name,
                attempt = attempts,
                error = %err,
                retry_in = ?delay,
                "{name}: not connected; retrying"
            ),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Whether a dependency is connected yet, whatever its port (for readiness).
pub trait Connection: Send + Sync {
    fn is_connected(&self) -> bool;
}

impl<T: ?Sized + Send + Sync> Connection for Deferred<T> {
    fn is_connected(&self) -> bool {
        self.cell.initialized()
    }
}

#[async_trait]
impl<T: OrderStore + ?Sized> OrderStore for Deferred<T> {
    async fn save_order(&self, order: &NewOrder) -> Result<SavedOrder, BackendError> {
        self.get()?.save_order(order).await
    }
    async fn find_order(
        &self,
        owner: &UserId,
        order: OrderRef,
    ) -> Result<Option<Order>, BackendError> {
        self.get()?.find_order(owner, order).await
    }
    async fn list_orders(
        &self,
        owner: &UserId,
        page: PageRequest,
    ) -> Result<Page<Order>, BackendError> {
        self.get()?.list_orders(owner, page).await
    }
    async fn delete_order(&self, owner: &UserId, order: OrderId) -> Result<bool, BackendError> {
        self.get()?.delete_order(owner, order).await
    }
    async fn owner_of(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        self.get()?.owner_of(cid).await
    }
    async fn record_failure(&self, failed: &FailedOrder) -> Result<FailureRecorded, BackendError> {
        self.get()?.record_failure(failed).await
    }
    async fn find_failure(
        &self,
        owner: &UserId,
        cid: CorrelationId,
    ) -> Result<Option<FailedOrder>, BackendError> {
        self.get()?.find_failure(owner, cid).await
    }
    async fn failures(&self, limit: usize) -> Result<Vec<FailedOrder>, BackendError> {
        self.get()?.failures(limit).await
    }
    async fn ping(&self) -> Result<(), BackendError> {
        self.get()?.ping().await
    }
}

#[async_trait]
impl<T: WorkflowState + ?Sized> WorkflowState for Deferred<T> {
    async fn track(
        &self,
        cid: CorrelationId,
        owner: &UserId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        self.get()?.track(cid, owner, status, ttl).await
    }
    async fn advance(
        &self,
        cid: CorrelationId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<TrackedStatus, BackendError> {
        self.get()?.advance(cid, status, ttl).await
    }
    async fn status(&self, cid: CorrelationId) -> Result<Option<TrackedStatus>, BackendError> {
        self.get()?.status(cid).await
    }
    async fn owner(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        self.get()?.owner(cid).await
    }
    async fn claim_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<Option<IdempotencyRecord>, BackendError> {
        self.get()?.claim_idempotency_key(key, record, ttl).await
    }
    async fn complete_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        self.get()?.complete_idempotency_key(key, record, ttl).await
    }
    async fn release_idempotency_key(&self, key: &str) -> Result<(), BackendError> {
        self.get()?.release_idempotency_key(key).await
    }
}

#[async_trait]
impl<T: NotificationFanout + ?Sized> NotificationFanout for Deferred<T> {
    async fn publish(
        &self,
        user: &UserId,
        notification: &Notification,
    ) -> Result<(), BackendError> {
        self.get()?.publish(user, notification).await
    }
}

#[async_trait]
impl<T: MessagePublisher + ?Sized> MessagePublisher for Deferred<T> {
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        self.get()?.publish(queue, message).await
    }
}

#[async_trait]
impl<T: QueueTransport + ?Sized> QueueTransport for Deferred<T> {
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        self.get()?.receive(queue, max, wait).await
    }
    async fn complete(
        &self,
        delivery: &Delivery,
        outputs: Vec<(String, OutboundMessage)>,
    ) -> Result<(), BackendError> {
        self.get()?.complete(delivery, outputs).await
    }
    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<(), BackendError> {
        self.get()?.settle(delivery, settlement).await
    }
    async fn renew_lock(&self, delivery: &Delivery) -> Result<(), BackendError> {
        self.get()?.renew_lock(delivery).await
    }
    async fn backlog(&self, queue: &str) -> Result<Backlog, BackendError> {
        self.get()?.backlog(queue).await
    }
    async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError> {
        self.get()?.dead_letters(queue, limit).await
    }
    async fn replay_dead_letter(
        &self,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, BackendError> {
        self.get()?.replay_dead_letter(queue, message_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryState;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    /// A connect that fails `failures` times (like a server still down), then opens real
    /// in-process workflow state.
    fn flaky(
        failures: u32,
    ) -> (
        Deferred<dyn WorkflowState>,
        Arc<AtomicU32>,
        Arc<MemoryState>,
    ) {
        let attempts = Arc::new(AtomicU32::new(0));
        let state = Arc::new(MemoryState::new());
        let deferred = Deferred::connect(
            "redis",
            (Arc::clone(&attempts), Arc::clone(&state)),
            move |(attempts, state)| async move {
                if attempts.fetch_add(1, Ordering::SeqCst) < failures {
                    Err(BackendError::new("redis", "connect: Connection refused"))
                } else {
                    Ok(state as Arc<dyn WorkflowState>)
                }
            },
        );
        (deferred, attempts, state)
    }

    #[tokio::test]
    async fn answers_not_connected_until_the_background_connect_succeeds_then_delegates() {
        let started = Instant::now();
        let (deferred, attempts, state) = flaky(2);
        let cid = CorrelationId::generate();
        let err = deferred.status(cid).await.unwrap_err();
        assert_eq!(err.to_string(), "redis: not connected yet");
        assert!(!deferred.is_connected());

        while !deferred.is_connected() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never connected"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Two failures: waits of 250 ms then 500 ms before the third, successful attempt.
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_millis(750));

        let owner = UserId::parse("ada").unwrap();
        let accepted = TrackedStatus::new(orders_core::OrderStatus::Accepted, None);
        deferred
            .track(cid, &owner, accepted, Duration::from_secs(60))
            .await
            .unwrap();
        // The call reached the adapter behind it.
        assert_eq!(state.owner(cid).await.unwrap(), Some(owner));
        assert_eq!(deferred.status(cid).await.unwrap(), Some(accepted));
    }

    #[tokio::test]
    async fn stops_trying_once_every_handle_is_dropped() {
        let (deferred, attempts, _state) = flaky(u32::MAX);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(deferred);
        let tried = attempts.load(Ordering::SeqCst);
        assert_eq!(tried, 1, "the second attempt comes after 250 ms");
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), tried);
    }
}
