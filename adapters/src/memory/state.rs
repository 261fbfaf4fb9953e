//! Workflow state in process memory: the embedded twin of the Redis adapter. Keys expire after
//! their TTL just as Redis keys do.

use async_trait::async_trait;
use orders_core::ports::{BackendError, IdempotencyRecord, WorkflowState, owner_key, status_key};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, UserId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Value {
    Status(TrackedStatus),
    Owner(UserId),
    Idempotency(IdempotencyRecord),
}

/// Keys kept at most. The workflow state only fronts SQL (statuses, owner maps, idempotency
/// answers), so when full, the entries closest to expiring go first: a status or owner then
/// comes from SQL, and a retried POST still makes one order (its key fixes the correlation id).
pub const DEFAULT_CAPACITY: usize = 200_000;

struct Entries {
    map: HashMap<String, (Value, Instant)>,
    /// (expiry, key) of every write, soonest first. A key written again leaves a stale pair
    /// behind, skipped when it comes up.
    expiries: BinaryHeap<Reverse<(Instant, String)>>,
    capacity: usize,
}

impl Entries {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v)
    }

    fn set(&mut self, key: String, value: Value, ttl: Duration) {
        let now = Instant::now();
        let expires = now + ttl;
        self.map.insert(key.clone(), (value, expires));
        self.expiries.push(Reverse((expires, key)));
        self.evict(now);
    }

    /// Drops what has expired and, past capacity, what expires soonest: a few heap pops per
    /// write, never a scan of the whole map under the lock.
    fn evict(&mut self, now: Instant) {
        while let Some(Reverse((expires, _))) = self.expiries.peek() {
            if *expires > now && self.map.len() <= self.capacity {
                break;
            }
            let Some(Reverse((expires, key))) = self.expiries.pop() else {
                break;
            };
            if self.map.get(&key).is_some_and(|(_, at)| *at == expires) {
                self.map.remove(&key);
            }
        }
        if self.expiries.len() > 2 * self.map.len() + 1024 {
            self.expiries = self
                .map
                .iter()
                .map(|(key, (_, expires))| Reverse((*expires, key.clone())))
                .collect();
        }
    }
}

pub struct MemoryState {
    entries: Mutex<Entries>,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryState {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                expiries: BinaryHeap::new(),
                capacity: capacity.max(1),
            }),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keys held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.entries().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::OrderStatus;

    fn track(state: &MemoryState, ttl: Duration) -> CorrelationId {
        let cid = CorrelationId::new_random();
        let owner = UserId::parse("u").unwrap();
        let status = TrackedStatus::new(OrderStatus::Accepted, None);
        futures::executor::block_on(state.track(cid, &owner, status, ttl)).unwrap();
        cid
    }

    #[test]
    fn holds_at_most_its_capacity_dropping_what_expires_soonest() {
        let state = MemoryState::with_capacity(100);
        let early = track(&state, Duration::from_secs(60));
        let late: Vec<_> = (0..1000)
            .map(|_| track(&state, Duration::from_secs(3600)))
            .collect();
        assert!(state.len() <= 100, "{}", state.len());
        let status = |cid| futures::executor::block_on(state.status(cid)).unwrap();
        // The soonest to expire went first; the last written are still there.
        assert_eq!(status(early), None);
        assert!(status(*late.last().unwrap()).is_some());
    }

    #[test]
    fn drops_expired_keys_as_it_goes() {
        let state = MemoryState::with_capacity(1_000);
        for _ in 0..50 {
            track(&state, Duration::ZERO);
        }
        track(&state, Duration::from_secs(60));
        // Each track writes two keys; only the live order's two remain.
        assert_eq!(state.len(), 2);
    }
}
