//! Workflow state in process memory: the embedded twin of the Redis adapter. Keys expire after
//! their TTL just as Redis keys do.

use async_trait::async_trait;
use orders_core::hash::fnv1a;
use orders_core::ports::{BackendError, IdempotencyRecord, WorkflowState, owner_key, status_key};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, UserId};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone)]
enum Value {
    Status(TrackedStatus),
    Owner(UserId),
    Idempotency(IdempotencyRecord),
}

/// Keys kept at most. The workflow state only fronts SQL (statuses, owner maps, idempotency
/// answers), so when full the oldest writes go first: a status or owner written that long ago
/// belongs, at these rates, to an order long persisted, which SQL then answers for; and a
/// retried POST still makes one order (its key fixes the correlation id). 500,000 keys is about
/// two hours of a flood at the embedded mode's full rate.
pub const DEFAULT_CAPACITY: usize = 500_000;

/// The map is split in this many shards, each under its own lock. A hash map grows by moving
/// every key to a table twice the size; whole, at a few hundred thousand keys, that held the
/// one lock (and so every request) for about 60 ms. A shard's growth is a 64th of that, and
/// stalls only the keys of that shard.
const SHARDS: usize = 64;

struct Entries {
    /// Each key's value, expiry, and the number of the write that set it.
    map: HashMap<String, (Value, Instant, u64)>,
    /// Keys in the order they were written, with that write's number; a key written again
    /// leaves its older pair behind, skipped when it comes up.
    written: VecDeque<(u64, String)>,
    writes: u64,
    capacity: usize,
}

impl Entries {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map
            .get(key)
            .filter(|(_, expires, _)| *expires > Instant::now())
            .map(|(v, _, _)| v)
    }

    fn set(&mut self, key: String, value: Value, ttl: Duration) {
        let now = Instant::now();
        self.writes += 1;
        self.map
            .insert(key.clone(), (value, now + ttl, self.writes));
        self.written.push_back((self.writes, key));
        self.evict(now);
    }

    /// Drops, oldest write first, what has expired, and what is past capacity: a few pops per
    /// write, never a scan of the map under the lock.
    fn evict(&mut self, now: Instant) {
        while let Some((write, key)) = self.written.front() {
            let current = self.map.get(key).filter(|(_, _, at)| at == write);
            let Some((_, expires, _)) = current else {
                self.written.pop_front();
                continue;
            };
            if *expires > now && self.map.len() <= self.capacity {
                break;
            }
            self.map.remove(key);
            self.written.pop_front();
        }
    }
}

/// An order's keys (status, owner) share its correlation id's shard, so one lock covers a
/// call that reads one and writes the other.
pub struct MemoryState {
    shards: Box<[Mutex<Entries>]>,
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

    /// At most `capacity` keys (each shard holds its share of them).
    pub fn with_capacity(capacity: usize) -> Self {
        let shard = || {
            Mutex::new(Entries {
                map: HashMap::new(),
                written: VecDeque::new(),
                writes: 0,
                capacity: (capacity / SHARDS).max(1),
            })
        };
        MemoryState {
            shards: (0..SHARDS).map(|_| shard()).collect(),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Entries> {
        self.shards[(hash % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shard of an order's keys.
    fn order(&self, cid: CorrelationId) -> std::sync::MutexGuard<'_, Entries> {
        self.shard(fnv1a(cid.as_uuid().as_bytes()))
    }

    /// The shard of an idempotency key.
    fn keyed(&self, key: &str) -> std::sync::MutexGuard<'_, Entries> {
        self.shard(fnv1a(key.as_bytes()))
    }

    /// Keys held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
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
        let mut entries = self.order(cid);
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
        let mut entries = self.order(cid);
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
        Ok(match self.order(cid).get(&status_key(cid)) {
            Some(Value::Status(s)) => Some(*s),
            _ => None,
        })
    }

    async fn owner(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        Ok(match self.order(cid).get(&owner_key(cid)) {
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
        let mut entries = self.keyed(key);
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
        self.keyed(key)
            .set(key.to_owned(), Value::Idempotency(record.clone()), ttl);
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), BackendError> {
        self.keyed(key).map.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::OrderStatus;

    fn track(state: &MemoryState, ttl: Duration) -> CorrelationId {
        let cid = CorrelationId::generate();
        let owner = UserId::parse("u").unwrap();
        let status = TrackedStatus::new(OrderStatus::Accepted, None);
        futures::executor::block_on(state.track(cid, &owner, status, ttl)).unwrap();
        cid
    }

    #[test]
    fn holds_at_most_its_capacity_dropping_the_oldest_writes() {
        let state = MemoryState::with_capacity(1_000);
        let first = track(&state, Duration::from_secs(3600));
        let later: Vec<_> = (0..10_000)
            .map(|_| track(&state, Duration::from_secs(3600)))
            .collect();
        assert!(state.len() <= 1_000, "{}", state.len());
        assert!(state.len() >= 900, "every shard is full: {}", state.len());
        let status = |cid| futures::executor::block_on(state.status(cid)).unwrap();
        assert_eq!(status(first), None);
        assert!(status(*later.last().unwrap()).is_some());
        // A short-lived entry just written (an idempotency claim's lease) is not the one to go.
        let claim = IdempotencyRecord {
            fingerprint: "f".into(),
            response: None,
        };
        let lease = Duration::from_secs(60);
        let claimed = |state: &MemoryState| {
            futures::executor::block_on(state.claim_idempotency_key("k", &claim, lease)).unwrap()
        };
        assert_eq!(claimed(&state), None);
        // Fewer writes than a shard holds, so whichever shard they land in, older keys go first.
        for _ in 0..4 {
            track(&state, Duration::from_secs(3600));
        }
        assert_eq!(claimed(&state), Some(claim.clone()));
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
