//! One contract for every `QueueTransport`: the same cases run on the embedded SQLite queue and
//! on RabbitMQ. The RabbitMQ cases need a broker and fail (never skip) without one:
//!
//!     eval "$(tests/servers/rabbitmq.sh start)"
//!     cargo test -p orders-adapters --test queue_contract
//!     tests/servers/rabbitmq.sh stop
//!
//! Each case uses its own queue, so the cases share one broker and run in parallel.

use orders_adapters::rabbitmq::{DEFAULT_SHARDS, RabbitQueue, shard_of};
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_core::ports::{
    DEAD_LETTER_DESCRIPTION, DEAD_LETTER_REASON, Delivery, OutboundMessage, QueueTransport,
    Settlement, dead_letter_queue,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The SQLite lock: short, so the vanished-receiver case does not wait long.
const SQLITE_LOCK: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(10);
const NOTHING: Duration = Duration::from_millis(400);

enum Kind {
    Sqlite,
    Rabbit { url: String, shards: usize },
}

struct Backend {
    queue: Arc<dyn QueueTransport>,
    kind: Kind,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("orders.db"),
        orders_adapters::seed::products(),
    )
    .await
    .unwrap();
    Backend {
        queue: Arc::new(SqliteQueue::with_lock(store, SQLITE_LOCK)),
        kind: Kind::Sqlite,
        _dir: Some(dir),
    }
}

async fn rabbitmq() -> Backend {
    let url = orders_test_support::server_url("RABBITMQ_URL", "rabbitmq.sh");
    let shards = DEFAULT_SHARDS;
    let queue = RabbitQueue::connect(&url, shards)
        .await
        .unwrap_or_else(|e| panic!("{e} (start one with tests/servers/rabbitmq.sh start)"));
    Backend {
        queue: Arc::new(queue),
        kind: Kind::Rabbit { url, shards },
        _dir: None,
    }
}

impl Backend {
    /// Another receiver on the same queues: another process, as far as RabbitMQ can tell.
    async fn second_receiver(&self) -> Arc<dyn QueueTransport> {
        match &self.kind {
            Kind::Sqlite => Arc::clone(&self.queue),
            Kind::Rabbit { url, shards } => {
                Arc::new(RabbitQueue::connect(url, *shards).await.unwrap())
            }
        }
    }

    /// `n` fresh session ids. On RabbitMQ they all land on one shard, whose consumer has
    /// several of them prefetched: it is the shard's gate that hands them out one message per
    /// session at a time, each session in order and neither waiting for the other.
    fn sessions(&self, prefixes: &[&str]) -> Vec<String> {
        let mut shard = None;
        prefixes
            .iter()
            .map(|prefix| {
                loop {
                    let session = format!("{prefix}-{}", uuid::Uuid::new_v4());
                    let Kind::Rabbit { shards, .. } = &self.kind else {
                        break session;
                    };
                    let this = shard_of(&session, *shards);
                    if *shard.get_or_insert(this) == this {
                        break session;
                    }
                }
            })
            .collect()
    }
}

fn queue_name(case: &str) -> String {
    format!("test.{case}.{}", uuid::Uuid::new_v4().simple())
}

fn message(id: &str, session: Option<&str>, body: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: id.to_owned(),
        session_id: session.map(str::to_owned),
        body: body.to_owned(),
        properties: BTreeMap::from([
            ("correlationId".to_owned(), format!("cid-{id}")),
            (
                "traceparent".to_owned(),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
            ),
        ]),
    }
}

async fn publish(b: &Backend, queue: &str, id: &str, session: Option<&str>) {
    b.queue
        .publish(queue, message(id, session, &format!("{{\"id\":\"{id}\"}}")))
        .await
        .unwrap();
}

/// One delivery, or none once `wait` has passed.
async fn receive_one(q: &dyn QueueTransport, queue: &str, wait: Duration) -> Option<Delivery> {
    let mut got = q.receive(queue, 1, wait).await.unwrap();
    assert!(got.len() <= 1, "asked for one, got {got:?}");
    got.pop()
}

async fn receive(q: &dyn QueueTransport, queue: &str) -> Delivery {
    receive_one(q, queue, WAIT)
        .await
        .expect("a delivery within the wait")
}

async fn assert_empty(q: &dyn QueueTransport, queue: &str) {
    let got = receive_one(q, queue, NOTHING).await;
    assert!(got.is_none(), "expected nothing, got {got:?}");
}

async fn complete(q: &dyn QueueTransport, d: &Delivery) {
    q.settle(d, Settlement::Complete).await.unwrap();
}

async fn publish_receive_complete(b: Backend) {
    let queue = queue_name("basic");
    let session = &b.sessions(&["alice"])[0];
    let sent = message("m-1", Some(session), "{\"order\":1}");
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    b.queue.publish(&queue, sent.clone()).await.unwrap();

    let d = receive(&*b.queue, &queue).await;
    assert_eq!(d.queue, queue);
    assert_eq!(d.message_id, sent.message_id);
    assert_eq!(d.session_id, sent.session_id);
    assert_eq!(d.body, sent.body);
    assert_eq!(d.properties, sent.properties);
    assert_eq!(d.delivery_count, 1);
    assert!(d.enqueued_at >= before && d.enqueued_at <= chrono::Utc::now());
    assert!(!d.lock_token.is_empty());
    complete(&*b.queue, &d).await;
    assert_empty(&*b.queue, &queue).await;

    // No session at all round-trips as none.
    publish(&b, &queue, "m-2", None).await;
    let d = receive(&*b.queue, &queue).await;
    assert_eq!(
        (d.message_id.as_str(), d.session_id.as_deref()),
        ("m-2", None)
    );
    complete(&*b.queue, &d).await;
    assert_empty(&*b.queue, &queue).await;
}

async fn abandon_redelivers_at_once(b: Backend) {
    let queue = queue_name("abandon");
    let session = &b.sessions(&["bob"])[0];
    publish(&b, &queue, "m-1", Some(session)).await;

    let mut delivery = receive(&*b.queue, &queue).await;
    for count in 2..=3 {
        let abandoned_at = Instant::now();
        b.queue
            .settle(&delivery, Settlement::Abandon)
            .await
            .unwrap();
        delivery = receive(&*b.queue, &queue).await;
        let waited = abandoned_at.elapsed();
        assert!(
            waited < Duration::from_millis(500),
            "redelivered only after {waited:?}"
        );
        assert_eq!(
            (delivery.message_id.as_str(), delivery.delivery_count),
            ("m-1", count)
        );
    }
    complete(&*b.queue, &delivery).await;
    assert_empty(&*b.queue, &queue).await;
}

/// Tracks what the receivers hold, failing if a session ever has two messages out at once.
#[derive(Default)]
struct Ledger {
    held: Mutex<HashSet<String>>,
    order: Mutex<HashMap<String, Vec<String>>>,
    seen: Mutex<Vec<String>>,
}

impl Ledger {
    fn take(&self, d: &Delivery) {
        let session = d.session_id.clone().unwrap_or_default();
        assert!(
            self.held.lock().unwrap().insert(session.clone()),
            "two messages of {session} held at once"
        );
        self.order
            .lock()
            .unwrap()
            .entry(session)
            .or_default()
            .push(d.message_id.clone());
        self.seen.lock().unwrap().push(d.message_id.clone());
    }

    fn release(&self, d: &Delivery) {
        self.held
            .lock()
            .unwrap()
            .remove(d.session_id.as_deref().unwrap_or_default());
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// `receivers` concurrent receivers take and complete messages until `total` were seen.
async fn drain(
    q: Arc<dyn QueueTransport>,
    queue: &str,
    receivers: usize,
    total: usize,
) -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::default());
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks: Vec<_> = (0..receivers)
        .map(|_| {
            let (q, queue, ledger) = (Arc::clone(&q), queue.to_owned(), Arc::clone(&ledger));
            tokio::spawn(async move {
                while ledger.count() < total && Instant::now() < deadline {
                    let Some(d) = receive_one(&*q, &queue, Duration::from_millis(200)).await else {
                        continue;
                    };
                    ledger.take(&d);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    // Released before settling: the next of the session cannot come before.
                    ledger.release(&d);
                    q.settle(&d, Settlement::Complete).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    ledger
}

async fn sessions_are_fifo_one_at_a_time(b: Backend) {
    let queue = queue_name("fifo");
    let sessions = b.sessions(&["a", "b"]);
    let (a, bs) = (&sessions[0], &sessions[1]);
    for i in 1..=3 {
        publish(&b, &queue, &format!("a{i}"), Some(a)).await;
        publish(&b, &queue, &format!("b{i}"), Some(bs)).await;
    }
    let ledger = drain(Arc::clone(&b.queue), &queue, 2, 6).await;
    let order = ledger.order.lock().unwrap().clone();
    assert_eq!(order[a], ["a1", "a2", "a3"]);
    assert_eq!(order[bs], ["b1", "b2", "b3"]);
    assert_empty(&*b.queue, &queue).await;

    // An abandoned head comes back at once (Service Bus has no delay on abandon), still ahead
    // of the rest of its session.
    // Meanwhile the other session (on RabbitMQ, on the same shard) goes on.
    publish(&b, &queue, "a4", Some(a)).await;
    publish(&b, &queue, "b4", Some(bs)).await;
    publish(&b, &queue, "a5", Some(a)).await;
    let head = receive(&*b.queue, &queue).await;
    assert_eq!(head.message_id, "a4");
    b.queue.settle(&head, Settlement::Abandon).await.unwrap();
    let mut next = Vec::new();
    while next.len() < 2 {
        let d = receive(&*b.queue, &queue).await;
        next.push((d.message_id.clone(), d.delivery_count));
        complete(&*b.queue, &d).await;
    }
    next.sort();
    assert_eq!(next, [("a4".to_owned(), 2), ("b4".to_owned(), 1)]);
    let last = receive(&*b.queue, &queue).await;
    assert_eq!(last.message_id, "a5");
    complete(&*b.queue, &last).await;
    assert_empty(&*b.queue, &queue).await;
}

async fn a_batch_holds_one_message_per_session(b: Backend) {
    let queue = queue_name("batch");
    let sessions = b.sessions(&["a", "b"]);
    let (a, bs) = (&sessions[0], &sessions[1]);
    publish(&b, &queue, "a1", Some(a)).await;
    publish(&b, &queue, "a2", Some(a)).await;
    publish(&b, &queue, "b1", Some(bs)).await;
    // RabbitMQ's consumers buffer what arrives: ask until both heads are in hand.
    let mut batch = Vec::new();
    let deadline = Instant::now() + WAIT;
    while batch.len() < 2 && Instant::now() < deadline {
        batch.extend(b.queue.receive(&queue, 10, NOTHING).await.unwrap());
    }
    let mut ids: Vec<&str> = batch.iter().map(|d| d.message_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a1", "b1"], "one head per session");
    assert_empty(&*b.queue, &queue).await;
    for d in &batch {
        complete(&*b.queue, d).await;
    }
    let next = receive(&*b.queue, &queue).await;
    assert_eq!(next.message_id, "a2");
    complete(&*b.queue, &next).await;
    assert_empty(&*b.queue, &queue).await;
}

async fn complete_publishes_the_outputs(b: Backend) {
    let (queue, next) = (queue_name("outbox"), queue_name("outbox-next"));
    publish(&b, &queue, "m-1", None).await;
    let d = receive(&*b.queue, &queue).await;
    let output = message("m-1:out", None, "{\"out\":1}");
    b.queue
        .complete(&d, vec![(next.clone(), output.clone())])
        .await
        .unwrap();
    assert_empty(&*b.queue, &queue).await;
    let out = receive(&*b.queue, &next).await;
    assert_eq!(
        (&out.message_id, &out.body),
        (&output.message_id, &output.body)
    );
    complete(&*b.queue, &out).await;

    // A completion without the lock fails. The embedded queue does both in one transaction,
    // so its outputs are not published either; a broker publishes them first (see the port).
    publish(&b, &queue, "m-2", None).await;
    let d = receive(&*b.queue, &queue).await;
    complete(&*b.queue, &d).await;
    let late = b
        .queue
        .complete(&d, vec![(next.clone(), message("m-2:out", None, "{}"))])
        .await;
    assert!(late.is_err(), "completed without the lock");
    if let Kind::Sqlite = b.kind {
        assert_empty(&*b.queue, &next).await;
    }
}

async fn the_backlog_counts_waiting_messages(b: Backend) {
    let queue = queue_name("backlog");
    assert_eq!(b.queue.backlog(&queue).await.unwrap().depth, 0);
    let sessions = b.sessions(&["a", "b"]);
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    publish(&b, &queue, "m-1", Some(&sessions[0])).await;
    publish(&b, &queue, "m-2", Some(&sessions[0])).await;
    publish(&b, &queue, "m-3", Some(&sessions[1])).await;
    let backlog = b.queue.backlog(&queue).await.unwrap();
    assert_eq!(backlog.depth, 3);
    match b.kind {
        Kind::Sqlite => {
            let oldest = backlog.oldest.expect("the oldest message's time");
            assert!(oldest >= before && oldest <= chrono::Utc::now());
        }
        // A broker tells no message's age without taking it.
        Kind::Rabbit { .. } => assert_eq!(backlog.oldest, None),
    }
}

async fn dead_letters_are_listed_and_replayed(b: Backend) {
    let queue = queue_name("dlq");
    let session = &b.sessions(&["carol"])[0];
    publish(&b, &queue, "m-1", Some(session)).await;
    let first = receive(&*b.queue, &queue).await;
    b.queue.settle(&first, Settlement::Abandon).await.unwrap();
    let second = receive(&*b.queue, &queue).await;
    let reason = "poison: the body is not an order".to_owned();
    b.queue
        .settle(
            &second,
            Settlement::DeadLetter {
                reason: reason.clone(),
                description: "failed twice".into(),
            },
        )
        .await
        .unwrap();
    assert_empty(&*b.queue, &queue).await;

    let dead = b.queue.dead_letters(&queue, 10).await.unwrap();
    let mut recorded = message("m-1", Some(session), "").properties;
    recorded.insert(DEAD_LETTER_REASON.into(), reason.clone());
    recorded.insert(DEAD_LETTER_DESCRIPTION.into(), "failed twice".into());
    assert_eq!(dead.len(), 1, "{dead:?}");
    let sent = message("m-1", Some(session), "{\"id\":\"m-1\"}");
    assert_eq!(dead[0].queue, queue);
    assert_eq!(dead[0].message_id, "m-1");
    assert_eq!(dead[0].session_id, sent.session_id);
    assert_eq!(dead[0].body, sent.body);
    assert_eq!(dead[0].properties, recorded);
    assert_eq!(dead[0].delivery_count, 2);
    assert_eq!(dead[0].reason, reason);
    // Listing does not consume.
    assert_eq!(b.queue.dead_letters(&queue, 10).await.unwrap().len(), 1);

    assert!(
        !b.queue
            .replay_dead_letter(&queue, "no-such-message")
            .await
            .unwrap()
    );
    assert!(b.queue.replay_dead_letter(&queue, "m-1").await.unwrap());
    assert!(b.queue.dead_letters(&queue, 10).await.unwrap().is_empty());
    let again = receive(&*b.queue, &queue).await;
    assert_eq!(
        (again.message_id.as_str(), again.delivery_count),
        ("m-1", 1)
    );
    assert_eq!(
        (again.body.as_str(), &again.properties),
        (sent.body.as_str(), &sent.properties)
    );
    assert_eq!(again.session_id, sent.session_id);
    complete(&*b.queue, &again).await;
    assert_empty(&*b.queue, &queue).await;
    assert!(!b.queue.replay_dead_letter(&queue, "m-1").await.unwrap());
}

/// Service Bus's `{queue}/$deadletterqueue`: a function can be triggered by the dead letters
/// of a queue; what it completes is gone; what it gives up on stays there, parked (listed and
/// replayable, never delivered again: Service Bus cannot dead-letter from a DLQ, what it does
/// instead is not verified). The properties follow Azure/azure-sdk-for-net
/// `sdk/servicebus/Azure.Messaging.ServiceBus/src/Amqp/AmqpMessageConstants.cs` at
/// 34ae4ccff29d6b7cad9e956711ab877249b62bc9; the path and the reason table MicrosoftDocs/azure-docs
/// `articles/service-bus-messaging/service-bus-dead-letter-queues.md`.
async fn the_dead_letter_subqueue_delivers_and_parks(b: Backend) {
    let queue = queue_name("dlq-trigger");
    let dlq = dead_letter_queue(&queue);
    let session = &b.sessions(&["dave"])[0];
    for id in ["m-1", "m-2"] {
        publish(&b, &queue, id, Some(session)).await;
        let d = receive(&*b.queue, &queue).await;
        let dead = Settlement::DeadLetter {
            reason: "MaxDeliveryCountExceeded".into(),
            description: "too many deliveries".into(),
        };
        b.queue.settle(&d, dead).await.unwrap();
    }
    let first = receive(&*b.queue, &dlq).await;
    assert_eq!(
        (first.message_id.as_str(), first.delivery_count),
        ("m-1", 1)
    );
    assert_eq!(
        first.properties[DEAD_LETTER_REASON],
        "MaxDeliveryCountExceeded"
    );
    assert_eq!(
        first.properties[DEAD_LETTER_DESCRIPTION],
        "too many deliveries"
    );
    assert_eq!(first.session_id.as_deref(), Some(session.as_str()));
    complete(&*b.queue, &first).await;

    let second = receive(&*b.queue, &dlq).await;
    assert_eq!(second.message_id, "m-2");
    let give_up = Settlement::DeadLetter {
        reason: "handler failed".into(),
        description: String::new(),
    };
    b.queue.settle(&second, give_up).await.unwrap();
    assert_empty(&*b.queue, &dlq).await;
    let parked = b.queue.dead_letters(&queue, 10).await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].message_id, "m-2");
    assert_eq!(parked[0].reason, "MaxDeliveryCountExceeded");

    assert!(b.queue.replay_dead_letter(&queue, "m-2").await.unwrap());
    let replayed = receive(&*b.queue, &queue).await;
    assert_eq!(replayed.message_id, "m-2");
    assert!(!replayed.properties.contains_key(DEAD_LETTER_REASON));
    complete(&*b.queue, &replayed).await;
    assert!(b.queue.dead_letters(&queue, 10).await.unwrap().is_empty());
}

async fn settling_twice_or_an_unknown_token_fails(b: Backend) {
    let queue = queue_name("settle");
    publish(&b, &queue, "m-1", None).await;
    let d = receive(&*b.queue, &queue).await;
    let mut unknown = d.clone();
    unknown.lock_token = "no-such-token".to_owned();
    assert!(
        b.queue
            .settle(&unknown, Settlement::Complete)
            .await
            .is_err()
    );
    complete(&*b.queue, &d).await;
    assert!(b.queue.settle(&d, Settlement::Complete).await.is_err());
    assert!(b.queue.settle(&d, Settlement::Abandon).await.is_err());
    assert_empty(&*b.queue, &queue).await;
}

async fn a_vanished_receivers_message_comes_back(b: Backend) {
    let queue = queue_name("vanish");
    let session = &b.sessions(&["dave"])[0];
    publish(&b, &queue, "m-1", Some(session)).await;
    let other = b.second_receiver().await;
    let lost = receive(&*other, &queue).await;
    assert_eq!(lost.delivery_count, 1);
    // SQLite: the lock expires. RabbitMQ: the connection closes and the broker requeues.
    drop(other);
    let back = receive_one(&*b.queue, &queue, SQLITE_LOCK + WAIT)
        .await
        .expect("redelivered");
    assert_eq!((back.message_id.as_str(), back.delivery_count), ("m-1", 2));
    complete(&*b.queue, &back).await;
    assert!(
        b.queue.settle(&lost, Settlement::Complete).await.is_err(),
        "the lost lock is void"
    );
    assert_empty(&*b.queue, &queue).await;
}

async fn many_sessions_many_receivers_exactly_once_in_order(b: Backend) {
    let queue = queue_name("many");
    let sessions: Vec<String> = (0..10)
        .map(|i| format!("user{i}-{}", uuid::Uuid::new_v4()))
        .collect();
    let per_session = 12;
    for n in 0..per_session {
        for s in &sessions {
            publish(&b, &queue, &format!("{s}#{n:02}"), Some(s)).await;
        }
    }
    let total = sessions.len() * per_session;
    let ledger = drain(Arc::clone(&b.queue), &queue, 4, total).await;
    let seen = ledger.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), total, "every message once");
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        total,
        "no duplicates"
    );
    for (session, ids) in ledger.order.lock().unwrap().iter() {
        let expected: Vec<String> = (0..per_session)
            .map(|n| format!("{session}#{n:02}"))
            .collect();
        assert_eq!(ids, &expected, "order of {session}");
    }
    assert_empty(&*b.queue, &queue).await;
}

macro_rules! contract {
    ($backend:ident) => {
        mod $backend {
            contract!(@cases $backend
                publish_receive_complete,
                abandon_redelivers_at_once,
                sessions_are_fifo_one_at_a_time,
                a_batch_holds_one_message_per_session,
                complete_publishes_the_outputs,
                the_backlog_counts_waiting_messages,
                dead_letters_are_listed_and_replayed,
                the_dead_letter_subqueue_delivers_and_parks,
                settling_twice_or_an_unknown_token_fails,
                a_vanished_receivers_message_comes_back,
                many_sessions_many_receivers_exactly_once_in_order
            );
        }
    };
    (@cases $backend:ident $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(super::$backend().await).await;
            }
        )+
    };
}

contract!(sqlite);
contract!(rabbitmq);
