//! One contract for every `NotificationFanout` and its `FanoutSubscription` (the port the hub
//! reads): a published notification reaches every subscriber (hub replica) exactly once, in
//! order, with the exact payload and an increasing cursor, and each user's recent notifications
//! can be read back after a cursor (`NotificationHistory`). On Redis a failed publish is also an
//! error (so the notifier's message is retried), and a subscriber cut off from Redis gets, once
//! it is back, what was published meanwhile.
//!
//! The Redis cases need a server, and fail (not skip) without one:
//!
//!     eval "$(tests/servers/redis.sh start)"
//!     cargo test -p orders-adapters --test fanout_contract
//!
//! Each case uses its own channel prefix, so they share one Redis and run in parallel. The
//! `redis_outage_*` cases start, kill and restart their own `redis-server`.

use orders_adapters::memory::MemoryFanout;
use orders_adapters::redis::{DEFAULT_PREFIX, RedisFanout};
use orders_core::cursor::Cursor;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{
    FanoutEvent, FanoutSubscription, NotificationFanout, NotificationHistory,
};
use orders_core::{CorrelationId, OrderId, OrderStatus, UserId};
use orders_test_support::RedisServer;
use orders_test_support::server_url;
use std::time::{Duration, Instant};
use tokio::time::{sleep, timeout};

/// How long a message may take to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// How long to listen for a duplicate that must not come.
const QUIET: Duration = Duration::from_millis(300);
/// How long a publish may take while Redis is down (the adapter's own bound is 2 s).
const FAIL_FAST: Duration = Duration::from_secs(3);

fn unique_prefix() -> String {
    format!("test-{}:", CorrelationId::generate())
}

fn message(order_id: i64) -> FanoutMessage {
    FanoutMessage {
        user_id: UserId::parse(format!("user-{}", CorrelationId::generate())).unwrap(),
        notification: Notification {
            correlation_id: CorrelationId::generate(),
            status: OrderStatus::Completed,
            order_id: Some(OrderId::new(order_id)),
            cursor: None,
        },
        traceparent: None,
    }
}

async fn publish(fanout: &dyn NotificationFanout, message: &FanoutMessage) {
    fanout
        .publish(&message.user_id, &message.notification)
        .await
        .unwrap();
}

/// The next message, with its cursor taken off (checked to be there) for comparing.
async fn next(hub: &mut dyn FanoutSubscription) -> FanoutMessage {
    next_with_cursor(hub).await.0
}

async fn next_with_cursor(hub: &mut dyn FanoutSubscription) -> (FanoutMessage, Cursor) {
    match timeout(WAIT, hub.next())
        .await
        .expect("no message within 5 s")
    {
        Some(FanoutEvent::Message(mut message)) => {
            let cursor = message.notification.cursor.take().expect("a cursor");
            (message, cursor)
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

async fn assert_no_more(hub: &mut dyn FanoutSubscription) {
    if let Ok(event) = timeout(QUIET, hub.next()).await {
        panic!("expected nothing more, got {event:?}");
    }
}

/// The contract: each subscriber gets each message once, in publication order, the cursors
/// increasing and the same for every subscriber; the history gives a user's messages after a
/// cursor and nobody else's.
async fn every_subscriber_gets_each_message_once_in_order<F>(
    fanout: &F,
    mut hubs: Vec<Box<dyn FanoutSubscription>>,
) where
    F: NotificationFanout + NotificationHistory,
{
    let mut sent: Vec<_> = (10..15).map(message).collect();
    // Two more for the last user: the history keeps them apart from the others'.
    let user = sent[4].user_id.clone();
    for n in 15..17 {
        sent.push(FanoutMessage {
            user_id: user.clone(),
            ..message(n)
        });
    }
    for m in &sent {
        publish(fanout, m).await;
    }
    let mut cursors = Vec::new();
    for hub in &mut hubs {
        let mut received = Vec::new();
        for m in &sent {
            let (message, cursor) = next_with_cursor(hub.as_mut()).await;
            assert_eq!(message, *m);
            received.push(cursor);
        }
        assert!(received.is_sorted_by(|a, b| a < b), "{received:?}");
        assert_no_more(hub.as_mut()).await;
        cursors.push(received);
    }
    assert!(cursors.windows(2).all(|w| w[0] == w[1]), "{cursors:?}");
    let history = fanout.since(&user, cursors[0][4]).await.unwrap();
    let replayed: Vec<_> = history
        .iter()
        .map(|n| (n.cursor.unwrap(), n.order_id))
        .collect();
    assert_eq!(
        replayed,
        [
            (cursors[0][5], Some(OrderId::new(15))),
            (cursors[0][6], Some(OrderId::new(16)))
        ]
    );
    let everything = fanout.since(&user, Cursor::default()).await.unwrap();
    assert_eq!(everything.len(), 3);
}

#[tokio::test]
async fn memory_publish_reaches_every_subscriber_exactly_once() {
    let fanout = MemoryFanout::new();
    // Nobody listening: nobody to tell, and not an error.
    publish(&fanout, &message(1)).await;
    let hubs: Vec<Box<dyn FanoutSubscription>> =
        vec![Box::new(fanout.subscribe()), Box::new(fanout.subscribe())];
    assert_eq!(hubs[0].backend(), "memory");
    every_subscriber_gets_each_message_once_in_order(&fanout, hubs).await;
}

#[tokio::test]
async fn memory_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let fanout = MemoryFanout::new();
    let mut hub = fanout.subscribe();
    for i in 0..1100 {
        publish(&fanout, &message(i)).await;
    }
    assert_eq!(hub.next().await, Some(FanoutEvent::Missed(76)));
    assert_eq!(
        next(&mut hub).await.notification.order_id,
        Some(OrderId::new(76))
    );
}

#[test]
fn fanout_messages_are_camel_case_json() {
    let sent = message(42);
    let json = serde_json::to_value(&sent).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "userId": sent.user_id.as_str(),
            "notification": {
                "correlationId": sent.notification.correlation_id.to_string(),
                "status": "COMPLETED",
                "orderId": 42,
            },
        })
    );
    assert_eq!(serde_json::from_value::<FanoutMessage>(json).unwrap(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_publish_reaches_every_subscriber_exactly_once() {
    let (url, prefix) = (server_url("REDIS_URL", "redis.sh"), unique_prefix());
    let fanout = RedisFanout::connect(&url, &prefix).await.unwrap();
    assert_eq!(fanout.stream(), format!("{prefix}notifications"));
    // Published before anyone subscribed: a new subscriber starts after it.
    publish(&fanout, &message(1)).await;

    let hubs: Vec<Box<dyn FanoutSubscription>> = vec![
        Box::new(RedisFanout::subscribe(&url, &prefix).await.unwrap()),
        Box::new(RedisFanout::subscribe(&url, &prefix).await.unwrap()),
    ];
    assert_eq!(hubs[0].backend(), "redis");
    every_subscriber_gets_each_message_once_in_order(&fanout, hubs).await;

    let mut hub_a = RedisFanout::subscribe(&url, &prefix).await.unwrap();
    let sent = message(42);
    publish(&fanout, &sent).await;
    let (received, cursor) = next_with_cursor(&mut hub_a).await;
    assert_eq!(received, sent);
    // On the wire: the stream entry's id is the cursor, its one field `m` the message's JSON.
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(fanout.stream())
        .arg(cursor.to_string())
        .arg("+")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, cursor.to_string());
    assert_eq!(entries[0].1[0], "m");
    let json: serde_json::Value = serde_json::from_str(&entries[0].1[1]).unwrap();
    assert_eq!(json, serde_json::to_value(&sent).unwrap());

    // Another prefix is another channel: nothing crosses over.
    let elsewhere = RedisFanout::connect(&url, &unique_prefix()).await.unwrap();
    publish(&elsewhere, &message(7)).await;
    assert_no_more(&mut hub_a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscriber_skips_messages_it_cannot_read() {
    let (url, prefix) = (server_url("REDIS_URL", "redis.sh"), unique_prefix());
    let fanout = RedisFanout::connect(&url, &prefix).await.unwrap();
    let mut hub = RedisFanout::subscribe(&url, &prefix).await.unwrap();
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (field, junk) in [
        ("m", "not json"),
        ("m", "{\"userId\":\"\",\"notification\":{}}"),
        ("other", "{}"),
    ] {
        redis::cmd("XADD")
            .arg(fanout.stream())
            .arg("*")
            .arg(field)
            .arg(junk)
            .exec_async(&mut raw)
            .await
            .unwrap();
    }
    let sent = message(3);
    publish(&fanout, &sent).await;
    assert_eq!(next(&mut hub).await, sent);
    assert_no_more(&mut hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_publish_fails_fast() {
    // Unreachable from the start: refused at connect and at subscribe.
    let started = Instant::now();
    assert!(
        RedisFanout::connect("redis://127.0.0.1:1", DEFAULT_PREFIX)
            .await
            .is_err()
    );
    assert!(
        RedisFanout::subscribe("redis://127.0.0.1:1", DEFAULT_PREFIX)
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < FAIL_FAST,
        "took {:?}",
        started.elapsed()
    );

    // Gone after connecting: publish fails, so the notifier fails and its message is retried.
    let mut server = RedisServer::start();
    let fanout = RedisFanout::connect(&server.url(), DEFAULT_PREFIX)
        .await
        .unwrap();
    publish(&fanout, &message(1)).await;
    server.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let sent = message(2);
        let published = fanout.publish(&sent.user_id, &sent.notification).await;
        assert!(published.is_err(), "attempt {attempt}: {published:?}");
        assert!(
            started.elapsed() < FAIL_FAST,
            "took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_subscriber_gets_what_was_published_before_it_reconnected() {
    let mut server = RedisServer::start();
    let url = server.url();
    let fanout = RedisFanout::connect(&url, DEFAULT_PREFIX).await.unwrap();
    let mut hub = RedisFanout::subscribe(&url, DEFAULT_PREFIX).await.unwrap();
    let before = message(1);
    publish(&fanout, &before).await;
    assert_eq!(next(&mut hub).await, before);

    server.stop();
    let lost = message(2);
    assert!(
        fanout
            .publish(&lost.user_id, &lost.notification)
            .await
            .is_err()
    );
    // Down long enough for the subscriber's reconnect backoff to grow.
    sleep(Duration::from_secs(3)).await;
    server.restart();

    // Published as soon as Redis answers, before the subscriber is back: pub/sub would drop
    // these (nobody subscribed); the stream keeps them. The call that finds the publisher's old
    // connection dead may fail, so each is retried, as the notifier's message would be.
    let sent: Vec<_> = (3..13).map(message).collect();
    for m in &sent {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = fanout.publish(&m.user_id, &m.notification).await {
            assert!(Instant::now() < deadline, "publish still failing: {e}");
            sleep(Duration::from_millis(20)).await;
        }
    }
    for m in &sent {
        assert_eq!(next(&mut hub).await, *m);
    }
    assert_no_more(&mut hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_publish_times_out_and_subscriber_recovers_when_redis_hangs() {
    let server = RedisServer::start();
    let url = server.url();
    let fanout = RedisFanout::connect(&url, DEFAULT_PREFIX).await.unwrap();
    let mut hub = RedisFanout::subscribe(&url, DEFAULT_PREFIX).await.unwrap();

    server.pause();
    let started = Instant::now();
    let stuck = message(1);
    let published = fanout.publish(&stuck.user_id, &stuck.notification).await;
    assert!(published.is_err(), "{published:?}");
    assert!(
        started.elapsed() < FAIL_FAST,
        "took {:?}",
        started.elapsed()
    );
    // Long enough for the subscriber's blocking read (5 s, plus 2 s to answer) to time out and
    // drop the connection.
    sleep(Duration::from_secs(13)).await;
    server.resume();

    let after = message(2);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // A publish that timed out may still land when the server wakes: at least once.
        if fanout
            .publish(&after.user_id, &after.notification)
            .await
            .is_ok()
            && let Ok(Some(FanoutEvent::Message(mut received))) =
                timeout(Duration::from_millis(500), hub.next()).await
        {
            received.notification.cursor = None;
            if received == after {
                break;
            }
            assert_eq!(received, stuck);
        }
        assert!(
            Instant::now() < deadline,
            "no delivery within 15 s of resuming"
        );
        sleep(Duration::from_millis(100)).await;
    }
    // A paused server keeps its sockets, so the old connection would have worked again too:
    // only a reading connection younger than the pause proves the timeout dropped the silent one.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut connection)
        .await
        .unwrap();
    let ages: Vec<u64> = clients
        .lines()
        .filter(|client| client.contains(" cmd=xread "))
        .flat_map(|client| client.split_whitespace())
        .filter_map(|field| field.strip_prefix("age="))
        .map(|age| age.parse().unwrap())
        .collect();
    assert_eq!(ages.len(), 1, "{clients}");
    assert!(ages[0] < 13, "the subscription was not renewed: {clients}");
}
