//! Workflow state in process memory: the embedded twin of the Redis adapter. Keys expire after
//! their TTL just as Redis keys do.

use async_trait::async_trait;
use orders_core::ports::{BackendError, IdempotencyRecord, WorkflowState, owner_key, status_key};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Value {
    Status(TrackedStatus),
    Owner(UserId),
    Idempotency(IdempotencyRecord),
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (Value, Instant)>,
    writes: u64,
}

impl Entries {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v)
    }

    fn set(&mut self, key: String, value: Value, ttl: Duration) {
        self.map.insert(key, (value, Instant::now() + ttl));
        self.writes += 1;
        // Expired entries are dropped in passing, so memory stays bounded by the live keys.
        if self.writes.is_multiple_of(1024) {
            let now = Instant::now();
            self.map.retain(|_, (_, expires)| *expires > now);
        }
    }
}

#[derive(Default)]
pub struct MemoryState {
    entries: Mutex<Entries>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl WorkflowState for MemoryState {
    async fn track(
        &self,
        cid: CorrelationId,
        owner: &UserId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let mut entries = self.entries();
        entries.set(owner_key(cid), Value::Owner(owner.clone()), ttl);
        if entries.get(&status_key(cid)).is_none() {
            entries.set(status_key(cid), Value::Status(status), ttl);
        }
        Ok(())
    }

    async fn advance(
        &self,
        cid: CorrelationId,
        next: TrackedStatus,
        ttl: Duration,
    ) -> Result<TrackedStatus, BackendError> {
        let mut entries = self.entries();
        let stored = match entries.get(&status_key(cid)) {
            Some(Value::Status(current)) => match current.status.advance(next.status) {
                Ok(_) => TrackedStatus {
                    status: next.status,
                    order_id: next.order_id.or(current.order_id),
                },
                Err(_) => *current,
            },
            _ => next,
        };
        entries.set(status_key(cid), Value::Status(stored), ttl);
        if let Some(Value::Owner(owner)) = entries.get(&owner_key(cid)).cloned() {
            entries.set(owner_key(cid), Value::Owner(owner), ttl);
        }
        Ok(stored)
    }

    async fn status(&self, cid: CorrelationId) -> Result<Option<TrackedStatus>, BackendError> {
        Ok(match self.entries().get(&status_key(cid)) {
            Some(Value::Status(s)) => Some(*s),
            _ => None,
        })
    }

    async fn owner(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        Ok(match self.entries().get(&owner_key(cid)) {
            Some(Value::Owner(o)) => Some(o.clone()),
            _ => None,
        })
    }

    async fn claim_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<Option<IdempotencyRecord>, BackendError> {
        let mut entries = self.entries();
        if let Some(Value::Idempotency(existing)) = entries.get(key) {
            return Ok(Some(existing.clone()));
        }
        entries.set(key.to_owned(), Value::Idempotency(record.clone()), ttl);
        Ok(None)
    }

    async fn complete_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        self.entries()
            .set(key.to_owned(), Value::Idempotency(record.clone()), ttl);
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), BackendError> {
        self.entries().map.remove(key);
        Ok(())
    }
}
