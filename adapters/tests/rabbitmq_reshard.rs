//! RabbitMQ only: lowering `RABBITMQ_SHARDS` strands nothing. A queue published to with 4 shards,
//! then with 2, delivers every message of both layouts to two replicas on 2 shards, each session
//! in order: the surplus shards (`q.s2`, `q.s3`) are drained before the regular ones. Needs a
//! broker (fails without one):
//!
//!     eval "$(tests/servers/rabbitmq.sh start)"
//!     cargo test -p orders-adapters --test rabbitmq_reshard

use orders_adapters::rabbitmq::{RabbitQueue, shard_of};
use orders_core::ports::{MessagePublisher, OutboundMessage, QueueTransport, Settlement};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SESSIONS: usize = 16;
/// Messages per session under each layout.
const EACH: usize = 5;

async fn publish(queue: &RabbitQueue, name: &str, sequence: std::ops::Range<usize>) {
    for n in sequence {
        for session in 0..SESSIONS {
            let message = OutboundMessage {
                message_id: format!("{session}:{n}"),
                session_id: Some(format!("user-{session}")),
                body: format!("{session}:{n}"),
                properties: Default::default(),
            };
            queue.publish(name, message).await.expect("publish");
        }
    }
}

/// Takes and completes messages of `name` until `log` holds `total`, logging each before its
/// completion as (session, sequence).
async fn consume(queue: Arc<RabbitQueue>, name: String, log: Log, total: usize) {
    while log.lock().unwrap().len() < total {
        let batch = queue
            .receive(&name, 16, Duration::from_millis(200))
            .await
            .expect("receive");
        for delivery in batch {
            let (session, n) = delivery.body.split_once(':').expect("session:n");
            let entry = (session.parse().unwrap(), n.parse().unwrap());
            log.lock().unwrap().push(entry);
            queue.complete(&delivery, vec![]).await.expect("complete");
        }
    }
}

type Log = Arc<Mutex<Vec<(usize, usize)>>>;

/// Two replicas on 2 shards, so the surplus is drained by whichever takes each surplus shard
/// while the other waits for it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_shards_drain_the_dropped_ones_first_keeping_each_session_in_order() {
    let url = orders_test_support::server_url("RABBITMQ_URL", "rabbitmq.sh");
    let name = format!("test.reshard.{}", uuid::Uuid::new_v4().simple());
    let before = RabbitQueue::connect(&url, 4).await.expect("connect");
    publish(&before, &name, 0..EACH).await;
    let after = RabbitQueue::connect(&url, 2).await.expect("connect");
    publish(&after, &name, EACH..2 * EACH).await;

    let total = SESSIONS * 2 * EACH;
    let waiting = after.backlog(&name).await.expect("backlog").depth;
    assert_eq!(
        waiting, total as u64,
        "the backlog counts the surplus shards"
    );

    let log = Log::default();
    let other = RabbitQueue::connect(&url, 2).await.expect("connect");
    let replicas = [Arc::new(after), Arc::new(other)];
    let running = replicas
        .iter()
        .map(|queue| consume(Arc::clone(queue), name.clone(), Arc::clone(&log), total));
    let all = futures::future::join_all(running);
    if tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .is_err()
    {
        panic!("stranded: got {:?}", log.lock().unwrap());
    }

    let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (session, n) in log.lock().unwrap().iter() {
        seen.entry(*session).or_default().push(*n);
    }
    let in_order: Vec<usize> = (0..2 * EACH).collect();
    for (session, got) in &seen {
        assert_eq!(
            got, &in_order,
            "session {session} out of order or duplicated"
        );
    }
    assert_eq!(seen.len(), SESSIONS);
    assert_eq!(replicas[0].backlog(&name).await.expect("backlog").depth, 0);
}

/// Dead letters left on the subqueue's dropped shards are still listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_dropped_shards_stay_listed() {
    let url = orders_test_support::server_url("RABBITMQ_URL", "rabbitmq.sh");
    let name = format!("test.reshard.dlq.{}", uuid::Uuid::new_v4().simple());
    let before = RabbitQueue::connect(&url, 4).await.expect("connect");
    publish(&before, &name, 0..1).await;
    let dropped = (0..SESSIONS)
        .filter(|s| shard_of(&format!("user-{s}"), 4) >= 2)
        .count();
    assert!(dropped > 0, "some sessions must hash to the shards dropped");
    let mut dead = 0;
    while dead < SESSIONS {
        let batch = before
            .receive(&name, 16, Duration::from_secs(5))
            .await
            .expect("receive");
        assert!(!batch.is_empty(), "only {dead} of {SESSIONS} delivered");
        for delivery in batch {
            let settlement = Settlement::DeadLetter {
                reason: "test".into(),
                description: "dead-lettered under 4 shards".into(),
            };
            before
                .settle(&delivery, settlement)
                .await
                .expect("dead-letter");
            dead += 1;
        }
    }

    let after = RabbitQueue::connect(&url, 2).await.expect("connect");
    let listed = after.dead_letters(&name, 100).await.expect("list");
    assert_eq!(
        listed.len(),
        SESSIONS,
        "{dropped} were on the dropped shards"
    );
}
