//! One contract for every `WorkflowState`: the same cases run on `MemoryState` (embedded mode)
//! and `RedisState` (server modes), so the twins keep exactly the same semantics.
//!
//! The Redis cases need a server, and fail (not skip) without one:
//!
//!     eval "$(tests/servers/redis.sh start)"
//!     cargo test -p orders-adapters --test state_contract
//!
//! Every case uses fresh correlation ids and keys, so they share one Redis and run in parallel.
//! The `redis_outage_*` cases start and kill their own `redis-server`.

use orders_adapters::memory::MemoryState;
use orders_adapters::redis::RedisState;
use orders_core::ports::{IdempotencyRecord, WorkflowState};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, OrderId, OrderStatus, UserId};
use orders_test_support::RedisServer;
use orders_test_support::server_url;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::sleep;

use OrderStatus::{Accepted, Completed, Failed, Processing};

const HOUR: Duration = Duration::from_secs(3600);
const ALL: [OrderStatus; 4] = [Accepted, Processing, Completed, Failed];
/// How long a call may take while Redis is down (the adapter's own bound is 2 s).
const FAIL_FAST: Duration = Duration::from_secs(3);

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Redis,
}

struct Backend {
    kind: Kind,
    state: Arc<dyn WorkflowState>,
}

impl Backend {
    async fn open(kind: Kind) -> Self {
        let state: Arc<dyn WorkflowState> = match kind {
            Kind::Memory => Arc::new(MemoryState::new()),
            Kind::Redis => Arc::new(
                RedisState::connect(&server_url("REDIS_URL", "redis.sh"))
                    .await
                    .unwrap(),
            ),
        };
        Backend { kind, state }
    }

    /// The same state as another process sees it: its own connection to Redis; in memory,
    /// there is only the one process.
    async fn another_process(&self) -> Arc<dyn WorkflowState> {
        match self.kind {
            Kind::Memory => self.state.clone(),
            Kind::Redis => Arc::new(
                RedisState::connect(&server_url("REDIS_URL", "redis.sh"))
                    .await
                    .unwrap(),
            ),
        }
    }
}

/// Runs each case once per backend: `memory_state::case` and `redis_state::case`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory_state {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::open(super::Kind::Memory).await).await;
                }
            )*
        }
        mod redis_state {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::open(super::Kind::Redis).await).await;
                }
            )*
        }
    };
}

contract!(
    track_then_status_and_owner,
    advance_agrees_with_order_status_advance_on_all_16_pairs,
    advance_only_moves_forward_and_keeps_the_order_id,
    concurrent_advances_end_at_the_highest_rank,
    keys_expire_after_their_ttl,
    advance_refreshes_both_ttls,
    idempotency_claim_complete_release,
);

fn new_cid() -> CorrelationId {
    CorrelationId::generate()
}

fn new_user() -> UserId {
    UserId::parse(format!("user-{}", CorrelationId::generate())).unwrap()
}

fn new_key() -> String {
    format!("idempotency:test:{}", CorrelationId::generate())
}

fn tracked(status: OrderStatus, order_id: Option<i64>) -> TrackedStatus {
    TrackedStatus::new(status, order_id.map(OrderId::new))
}

fn record(fingerprint: &str, response: Option<(u16, &str)>) -> IdempotencyRecord {
    IdempotencyRecord {
        fingerprint: fingerprint.into(),
        response: response.map(|(status, body)| (status, body.into())),
    }
}

async fn track_then_status_and_owner(backend: Backend) {
    let state = &backend.state;
    let (cid, owner) = (new_cid(), new_user());
    assert_eq!(state.status(cid).await.unwrap(), None);
    assert_eq!(state.owner(cid).await.unwrap(), None);

    state
        .track(cid, &owner, tracked(Accepted, None), HOUR)
        .await
        .unwrap();
    assert_eq!(
        state.status(cid).await.unwrap(),
        Some(tracked(Accepted, None))
    );
    assert_eq!(state.owner(cid).await.unwrap(), Some(owner.clone()));

    let other = backend.another_process().await;
    assert_eq!(
        other.status(cid).await.unwrap(),
        Some(tracked(Accepted, None))
    );
    assert_eq!(other.owner(cid).await.unwrap(), Some(owner));

    // A JWT `sub` may hold any printable character, '|' and quotes included.
    let (cid, odd) = (
        new_cid(),
        UserId::parse("ünïcode|o'brien \"x\" 🦀").unwrap(),
    );
    let done = tracked(Completed, Some(i64::MAX));
    state.track(cid, &odd, done, HOUR).await.unwrap();
    assert_eq!(state.owner(cid).await.unwrap(), Some(odd.clone()));
    assert_eq!(state.status(cid).await.unwrap(), Some(done));

    // Tracking it again (a retried POST, same key, same correlation id) moves nothing back.
    state
        .track(cid, &odd, tracked(Accepted, None), HOUR)
        .await
        .unwrap();
    assert_eq!(state.status(cid).await.unwrap(), Some(done));
}

/// What `advance(current -> next)` must store: `OrderStatus::advance` decides, and an orderId
/// once known is kept when the next status carries none.
fn expected(current: TrackedStatus, next: TrackedStatus) -> TrackedStatus {
    match current.status.advance(next.status) {
        Ok(status) => TrackedStatus::new(status, next.order_id.or(current.order_id)),
        Err(_) => current,
    }
}

async fn advance_agrees_with_order_status_advance_on_all_16_pairs(backend: Backend) {
    let state = &backend.state;
    let ids = [
        (None, None),
        (Some(1), None),
        (None, Some(2)),
        (Some(1), Some(2)),
    ];
    for from in ALL {
        for to in ALL {
            for (from_id, to_id) in ids {
                let (cid, owner) = (new_cid(), new_user());
                let (current, next) = (tracked(from, from_id), tracked(to, to_id));
                state.track(cid, &owner, current, HOUR).await.unwrap();
                let stored = state.advance(cid, next, HOUR).await.unwrap();
                let transition = format!("{} -> {}", current.encode(), next.encode());
                assert_eq!(stored, expected(current, next), "{transition}");
                assert_eq!(
                    state.status(cid).await.unwrap(),
                    Some(stored),
                    "{transition}"
                );
            }
        }
    }
}

async fn advance_only_moves_forward_and_keeps_the_order_id(backend: Backend) {
    let state = &backend.state;
    let (cid, owner) = (new_cid(), new_user());
    state
        .track(cid, &owner, tracked(Accepted, None), HOUR)
        .await
        .unwrap();
    let steps = [
        (tracked(Processing, None), "PROCESSING"),
        (tracked(Accepted, None), "PROCESSING"),
        (tracked(Processing, None), "PROCESSING"),
        (tracked(Completed, Some(42)), "COMPLETED|42"),
        // A redelivered PROCESSING after COMPLETED.
        (tracked(Processing, None), "COMPLETED|42"),
        // The same status again without the id keeps the id.
        (tracked(Completed, None), "COMPLETED|42"),
        (tracked(Failed, None), "COMPLETED|42"),
        (tracked(Accepted, None), "COMPLETED|42"),
    ];
    for (next, after) in steps {
        let stored = state.advance(cid, next, HOUR).await.unwrap();
        assert_eq!(stored.encode(), after, "advancing to {}", next.encode());
        assert_eq!(state.status(cid).await.unwrap(), Some(stored));
    }

    // FAILED (dead-lettered) is left only for COMPLETED: a retried order that works completes,
    // and the retry's PROCESSING does not show.
    let cid = new_cid();
    state
        .track(cid, &owner, tracked(Processing, None), HOUR)
        .await
        .unwrap();
    let steps = [
        (tracked(Failed, None), "FAILED"),
        (tracked(Processing, None), "FAILED"),
        (tracked(Accepted, None), "FAILED"),
        (tracked(Completed, Some(9)), "COMPLETED|9"),
        (tracked(Failed, None), "COMPLETED|9"),
    ];
    for (next, after) in steps {
        let stored = state.advance(cid, next, HOUR).await.unwrap();
        assert_eq!(stored.encode(), after, "advancing to {}", next.encode());
    }

    // Nothing tracked (never, or expired): the status is stored as given; no owner appears.
    let cid = new_cid();
    let processing = tracked(Processing, Some(5));
    assert_eq!(
        state.advance(cid, processing, HOUR).await.unwrap(),
        processing
    );
    assert_eq!(state.status(cid).await.unwrap(), Some(processing));
    assert_eq!(state.owner(cid).await.unwrap(), None);
}

async fn concurrent_advances_end_at_the_highest_rank(backend: Backend) {
    let mut processes = vec![backend.state.clone()];
    for _ in 0..3 {
        processes.push(backend.another_process().await);
    }
    let race = |cid: CorrelationId, steps: Vec<TrackedStatus>| {
        let barrier = Arc::new(tokio::sync::Barrier::new(steps.len()));
        let tasks: Vec<_> = steps
            .into_iter()
            .enumerate()
            .map(|(i, next)| {
                let (state, barrier) = (processes[i % processes.len()].clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    state.advance(cid, next, HOUR).await.unwrap()
                })
            })
            .collect();
        async move {
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        }
    };
    let owner = new_user();

    let cid = new_cid();
    backend
        .state
        .track(cid, &owner, tracked(Accepted, None), HOUR)
        .await
        .unwrap();
    let steps = [
        tracked(Accepted, None),
        tracked(Processing, None),
        tracked(Completed, Some(7)),
    ];
    race(cid, steps.into_iter().cycle().take(60).collect()).await;
    assert_eq!(
        backend.state.status(cid).await.unwrap(),
        Some(tracked(Completed, Some(7)))
    );

    // FAILED and COMPLETED racing (a dead letter's handler and a retry): COMPLETED wins whatever
    // lands first, and no caller is ever told something that was then lost backwards.
    for _ in 0..5 {
        let cid = new_cid();
        backend
            .state
            .track(cid, &owner, tracked(Processing, None), HOUR)
            .await
            .unwrap();
        let steps = [tracked(Completed, Some(7)), tracked(Failed, None)];
        let results = race(cid, steps.into_iter().cycle().take(40).collect()).await;
        let completed = tracked(Completed, Some(7));
        assert_eq!(backend.state.status(cid).await.unwrap(), Some(completed));
        assert!(
            results
                .iter()
                .all(|r| *r == completed || r.status == Failed),
            "{results:?}"
        );
    }
}

async fn keys_expire_after_their_ttl(backend: Backend) {
    let state = &backend.state;
    let ttl = Duration::from_secs(1);
    let (cid, owner, key) = (new_cid(), new_user(), new_key());
    state
        .track(cid, &owner, tracked(Accepted, None), ttl)
        .await
        .unwrap();
    let first = record("first", None);
    assert_eq!(
        state
            .claim_idempotency_key(&key, &first, ttl)
            .await
            .unwrap(),
        None
    );
    assert!(state.status(cid).await.unwrap().is_some());
    assert!(state.owner(cid).await.unwrap().is_some());

    sleep(Duration::from_millis(1500)).await;
    assert_eq!(state.status(cid).await.unwrap(), None);
    assert_eq!(state.owner(cid).await.unwrap(), None);
    // The claim lapsed, so a new one goes through.
    let second = record("second", None);
    assert_eq!(
        state
            .claim_idempotency_key(&key, &second, HOUR)
            .await
            .unwrap(),
        None
    );
}

async fn advance_refreshes_both_ttls(backend: Backend) {
    let state = &backend.state;
    let ttl = Duration::from_secs(2);
    let (cid, owner) = (new_cid(), new_user());
    state
        .track(cid, &owner, tracked(Accepted, None), ttl)
        .await
        .unwrap();
    sleep(Duration::from_millis(1200)).await;
    state
        .advance(cid, tracked(Processing, None), ttl)
        .await
        .unwrap();
    sleep(Duration::from_millis(1200)).await;
    // 2.4 s after `track`: alive only because `advance` refreshed both keys.
    assert_eq!(
        state.status(cid).await.unwrap(),
        Some(tracked(Processing, None))
    );
    assert_eq!(state.owner(cid).await.unwrap(), Some(owner.clone()));

    // An advance that keeps the current status refreshes too: the work is still in flight.
    state
        .advance(cid, tracked(Accepted, None), ttl)
        .await
        .unwrap();
    sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        state.status(cid).await.unwrap(),
        Some(tracked(Processing, None))
    );
    assert_eq!(state.owner(cid).await.unwrap(), Some(owner));
}

async fn idempotency_claim_complete_release(backend: Backend) {
    let state = &backend.state;
    let key = new_key();
    let first = record("fingerprint-1", None);
    assert_eq!(
        state
            .claim_idempotency_key(&key, &first, HOUR)
            .await
            .unwrap(),
        None
    );
    // A second claim, whatever its body, gets the first record back and stores nothing.
    let other = record("fingerprint-2", None);
    assert_eq!(
        state
            .claim_idempotency_key(&key, &other, HOUR)
            .await
            .unwrap(),
        Some(first.clone())
    );

    let answer = record(
        "fingerprint-1",
        Some((202, "{\"correlationId\":\"x\",\"note\":\"ünï|\\n\"}")),
    );
    state
        .complete_idempotency_key(&key, &answer, HOUR)
        .await
        .unwrap();
    assert_eq!(
        state
            .claim_idempotency_key(&key, &other, HOUR)
            .await
            .unwrap(),
        Some(answer)
    );

    state.release_idempotency_key(&key).await.unwrap();
    assert_eq!(
        state
            .claim_idempotency_key(&key, &other, HOUR)
            .await
            .unwrap(),
        None
    );
    // Releasing a key nobody holds is fine.
    state.release_idempotency_key(&new_key()).await.unwrap();
    // Keys are independent.
    assert_eq!(
        state
            .claim_idempotency_key(&new_key(), &first, HOUR)
            .await
            .unwrap(),
        None
    );
}

// Redis only: what the keys look like and how long they live, read with raw commands.

async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(server_url("REDIS_URL", "redis.sh"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn pttl(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(redis)
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_keys_are_named_and_encoded_as_the_design_says() {
    let state = RedisState::connect(&server_url("REDIS_URL", "redis.sh"))
        .await
        .unwrap();
    let mut redis = raw_redis().await;
    let (cid, owner, key) = (new_cid(), new_user(), new_key());
    state
        .track(cid, &owner, tracked(Completed, Some(42)), HOUR)
        .await
        .unwrap();
    let get = |key: String| redis::cmd("GET").arg(key).to_owned();
    let status: String = get(format!("order:status:{cid}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(status, "COMPLETED|42");
    let map: String = get(format!("order:map:{cid}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(map, owner.as_str());

    let answer = record("fp", Some((202, "{}")));
    state
        .complete_idempotency_key(&key, &answer, HOUR)
        .await
        .unwrap();
    let stored: String = get(key).query_async(&mut redis).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"fingerprint": "fp", "response": {"status": 202, "body": "{}"}})
    );
}

#[tokio::test]
async fn redis_every_write_sets_a_ttl_and_advance_refreshes_both_keys() {
    let state = RedisState::connect(&server_url("REDIS_URL", "redis.sh"))
        .await
        .unwrap();
    let mut redis = raw_redis().await;
    let (cid, owner, key) = (new_cid(), new_user(), new_key());
    let (status_key, map_key) = (format!("order:status:{cid}"), format!("order:map:{cid}"));
    let secs = Duration::from_secs;

    state
        .track(cid, &owner, tracked(Accepted, None), secs(10))
        .await
        .unwrap();
    for key in [&status_key, &map_key] {
        assert!(
            (9_000..=10_000).contains(&pttl(&mut redis, key).await),
            "{key}"
        );
    }
    state
        .advance(cid, tracked(Processing, None), secs(60))
        .await
        .unwrap();
    for key in [&status_key, &map_key] {
        assert!(
            (59_000..=60_000).contains(&pttl(&mut redis, key).await),
            "{key}"
        );
    }
    // Kept status, refreshed all the same.
    state
        .advance(cid, tracked(Accepted, None), secs(120))
        .await
        .unwrap();
    for key in [&status_key, &map_key] {
        assert!(
            (119_000..=120_000).contains(&pttl(&mut redis, key).await),
            "{key}"
        );
    }

    state
        .claim_idempotency_key(&key, &record("fp", None), secs(30))
        .await
        .unwrap();
    assert!((29_000..=30_000).contains(&pttl(&mut redis, &key).await));
    state
        .complete_idempotency_key(&key, &record("fp", Some((201, ""))), secs(90))
        .await
        .unwrap();
    assert!((89_000..=90_000).contains(&pttl(&mut redis, &key).await));
}

#[tokio::test]
async fn redis_outage_connect_fails_fast_when_unreachable() {
    let started = Instant::now();
    assert!(RedisState::connect("redis://127.0.0.1:1").await.is_err());
    assert!(
        started.elapsed() < FAIL_FAST,
        "took {:?}",
        started.elapsed()
    );
    assert!(RedisState::connect("not a url").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_calls_fail_fast_while_down_and_work_again_after() {
    let mut server = RedisServer::start();
    let state = RedisState::connect(&server.url()).await.unwrap();
    let (cid, owner) = (new_cid(), new_user());
    state
        .track(cid, &owner, tracked(Accepted, None), HOUR)
        .await
        .unwrap();

    server.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let advanced = state.advance(cid, tracked(Processing, None), HOUR).await;
        assert!(advanced.is_err(), "attempt {attempt}: {advanced:?}");
        let status = state.status(cid).await;
        assert!(status.is_err(), "attempt {attempt}: {status:?}");
        let claimed = state
            .claim_idempotency_key(&new_key(), &record("fp", None), HOUR)
            .await;
        assert!(claimed.is_err(), "attempt {attempt}: {claimed:?}");
        // Three calls, each within the bound.
        assert!(
            started.elapsed() < FAIL_FAST * 3,
            "took {:?}",
            started.elapsed()
        );
    }

    server.restart();
    // The connection manager reconnects by itself; the call that finds the old connection dead
    // may still fail. The server kept nothing (no persistence), so the order is unknown now.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match state.status(cid).await {
            Ok(status) => {
                assert_eq!(status, None);
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "no reconnect within 10 s: {e}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
    state
        .track(cid, &owner, tracked(Accepted, None), HOUR)
        .await
        .unwrap();
    // The new server has no cached advance script: EVALSHA falls back to EVAL.
    assert_eq!(
        state
            .advance(cid, tracked(Processing, None), HOUR)
            .await
            .unwrap(),
        tracked(Processing, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_calls_time_out_when_redis_hangs() {
    let server = RedisServer::start();
    let state = RedisState::connect(&server.url()).await.unwrap();
    let cid = new_cid();
    assert_eq!(state.status(cid).await.unwrap(), None);

    server.pause();
    let started = Instant::now();
    let advanced = state.advance(cid, tracked(Processing, None), HOUR).await;
    assert!(advanced.is_err(), "{advanced:?}");
    assert!(
        started.elapsed() < FAIL_FAST,
        "took {:?}",
        started.elapsed()
    );

    server.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = state.status(cid).await {
        assert!(
            Instant::now() < deadline,
            "not answering again within 10 s: {e}"
        );
        sleep(Duration::from_millis(100)).await;
    }
}
