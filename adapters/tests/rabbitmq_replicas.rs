//! RabbitMQ only: replicas share a queue's shards, and the shards move when a replica joins or
//! leaves, each session staying in order throughout. Needs a broker (fails without one):
//!
//!     eval "$(tests/servers/rabbitmq.sh start)"
//!     cargo test -p orders-adapters --test rabbitmq_replicas

use orders_adapters::rabbitmq::RabbitQueue;
use orders_core::ports::{MessagePublisher, OutboundMessage, QueueTransport};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: usize = 8;
const SESSIONS: usize = 40;
/// Offered load, and each replica's work per message (one at a time: at most 200/s each).
const EVERY: Duration = Duration::from_millis(8);
const WORK: Duration = Duration::from_millis(5);

/// (replica, session, sequence within the session, when).
type Log = Arc<Mutex<Vec<(usize, usize, u64, Instant)>>>;

async fn connect(url: &str) -> Arc<RabbitQueue> {
    Arc::new(RabbitQueue::connect(url, SHARDS).await.expect("connect"))
}

/// A replica: takes batches and processes each message for `WORK`, logging it, then completes it.
fn replica(
    id: usize,
    queue: Arc<RabbitQueue>,
    name: String,
    log: Log,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let batch = queue
                .receive(&name, SHARDS, Duration::from_millis(200))
                .await
                .expect("receive");
            for delivery in batch {
                tokio::time::sleep(WORK).await;
                let (session, n) = delivery.body.split_once(':').expect("session:n");
                let entry = (
                    id,
                    session.parse().unwrap(),
                    n.parse().unwrap(),
                    Instant::now(),
                );
                // Logged once processed, before it is settled: an abort can land after the ack
                // went out but before `complete` returned, and that message is done, not lost.
                log.lock().unwrap().push(entry);
                queue.complete(&delivery, vec![]).await.expect("complete");
            }
        }
    })
}

/// Each replica's share of the messages completed in the last `window`.
fn shares(log: &Log, window: Duration) -> HashMap<usize, f64> {
    let since = Instant::now() - window;
    let log = log.lock().unwrap();
    let recent: Vec<_> = log.iter().filter(|(_, _, _, at)| *at >= since).collect();
    let mut counts = HashMap::new();
    for (replica, ..) in &recent {
        *counts.entry(*replica).or_insert(0.0) += 1.0;
    }
    let total = recent.len().max(1) as f64;
    counts.values_mut().for_each(|c| *c /= total);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_the_shards_and_take_them_over() {
    let url = orders_test_support::server_url("RABBITMQ_URL", "rabbitmq.sh");
    let name = format!("test.replicas.{}", uuid::Uuid::new_v4().simple());
    let publisher = connect(&url).await;
    publisher.declare(&name).await.unwrap();
    let sent = Arc::new(Mutex::new(vec![0u64; SESSIONS]));
    let load = {
        let (publisher, name, sent) = (Arc::clone(&publisher), name.clone(), Arc::clone(&sent));
        tokio::spawn(async move {
            for i in 0usize.. {
                let session = i % SESSIONS;
                let n = i as u64 / SESSIONS as u64;
                let message = OutboundMessage {
                    message_id: format!("{session}:{n}"),
                    session_id: Some(format!("user-{session}")),
                    body: format!("{session}:{n}"),
                    properties: BTreeMap::new(),
                };
                publisher.publish(&name, message).await.expect("publish");
                sent.lock().unwrap()[session] = n + 1;
                tokio::time::sleep(EVERY).await;
            }
        })
    };
    let log: Log = Arc::default();
    let a = replica(0, connect(&url).await, name.clone(), Arc::clone(&log));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        shares(&log, Duration::from_secs(2)).get(&0),
        Some(&1.0),
        "A alone takes all"
    );

    // B joins: within a few seconds each does a fair share.
    let b_queue = connect(&url).await;
    let b = replica(1, Arc::clone(&b_queue), name.clone(), Arc::clone(&log));
    tokio::time::sleep(Duration::from_secs(7)).await;
    let split = shares(&log, Duration::from_secs(3));
    for replica in [0, 1] {
        let share = split.get(&replica).copied().unwrap_or(0.0);
        assert!(
            share >= 0.25,
            "replica {replica} did {share:.2} of the work: {split:?}"
        );
    }

    // B leaves: A takes everything over at once.
    b.abort();
    let _ = b.await;
    drop(b_queue);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = shares(&log, Duration::from_secs(2));
    assert_eq!(after.get(&0), Some(&1.0), "A alone again: {after:?}");

    // Nothing lost, every session in order.
    load.abort();
    let _ = load.await;
    let sent = sent.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut firsts: Vec<Vec<u64>>;
    loop {
        firsts = vec![Vec::new(); SESSIONS];
        for &(_, session, n, _) in log.lock().unwrap().iter() {
            // A handover can repeat a message (at least once); its first completion counts.
            if !firsts[session].contains(&n) {
                firsts[session].push(n);
            }
        }
        let done = firsts
            .iter()
            .zip(&sent)
            .all(|(got, &sent)| got.len() as u64 >= sent);
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.abort();
    for (session, got) in firsts.iter().enumerate() {
        let expected: Vec<u64> = (0..sent[session]).collect();
        assert_eq!(got, &expected, "session {session}: lost or out of order");
    }
}
