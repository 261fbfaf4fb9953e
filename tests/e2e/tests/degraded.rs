//! Dependencies going down degrade service; they never lose an accepted order or a notification.

use orders_adapters::redis::RedisFanout;
use orders_core::ports::{FanoutEvent, FanoutSubscription};
use orders_e2e::{Mode, System};
use orders_test_support::RedisServer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_degrades_but_loses_neither_orders_nor_notifications() {
    let mut redis = RedisServer::start();
    let prefix = format!("degraded-{}:", uuid::Uuid::new_v4().simple());
    let system = System::start_with(
        Mode::Servers,
        &[
            ("REDIS_URL", redis.url().as_str()),
            ("FANOUT_CHANNEL_PREFIX", prefix.as_str()),
        ],
    )
    .await;
    let token = system.token("grace").await;
    redis.stop();

    // Intake still accepts, and the order is persisted; its status now comes from SQL.
    let cid = system.place(&token, "AZ-104", 1).await;
    let (order, _) = system
        .wait_completed(&token, &cid, Duration::from_secs(20))
        .await;
    assert!(order["orderId"].as_i64().unwrap() > 0);

    // The notification could not be fanned out: it is dead-lettered, not dropped.
    let broker = system.broker().await;
    let dead = loop {
        if let Some(dead) = broker
            .dead_letters("order.processed", 10)
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(dead.body.contains(&cid), "{}", dead.body);
    assert_eq!(dead.reason, "MaxDeliveryCountExceeded");

    // Redis is back: replaying delivers the notification to the owner.
    redis.restart();
    let mut notifications = RedisFanout::subscribe(&redis.url(), &prefix).await.unwrap();
    assert!(
        broker
            .replay_dead_letter("order.processed", &dead.message_id)
            .await
            .unwrap()
    );
    let Some(FanoutEvent::Message(pushed)) =
        tokio::time::timeout(Duration::from_secs(20), notifications.next())
            .await
            .unwrap()
    else {
        panic!("the subscription ended or missed messages");
    };
    assert_eq!(pushed.user_id.as_str(), "grace");
    assert_eq!(pushed.notification.correlation_id.to_string(), cid);
    assert_eq!(pushed.notification.status.as_str(), "COMPLETED");
    system.stop().await;
}

/// Redis, the idempotency store, is down: a retried POST cannot be replayed, but its key fixes
/// the correlation id, so the queue's duplicate detection and the unique correlation id at
/// persistence make one order of three attempts.
async fn an_idempotency_key_makes_one_order_while_redis_is_down(mode: Mode) {
    let mut redis = RedisServer::start();
    redis.stop();
    let system = System::start_with(mode, &[("REDIS_URL", redis.url().as_str())]).await;
    let token = system.token("heidi").await;
    let mut cids = Vec::new();
    for _ in 0..3 {
        let res = system
            .client
            .post(format!("{}/api/orders", system.base()))
            .bearer_auth(&token)
            .header("Idempotency-Key", "checkout-1")
            .json(&serde_json::json!({ "items": [{ "productId": "AZ-104", "quantity": 1 }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{mode:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        cids.push(body["correlationId"].as_str().unwrap().to_owned());
    }
    assert!(cids.iter().all(|cid| *cid == cids[0]), "{mode:?}: {cids:?}");
    system
        .wait_completed(&token, &cids[0], Duration::from_secs(30))
        .await;
    // Give any duplicate message the time to be processed too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        system.sql_count("SELECT COUNT(*) FROM orders"),
        1,
        "{mode:?}"
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_one_order_on_the_embedded_queue_while_redis_is_down() {
    an_idempotency_key_makes_one_order_while_redis_is_down(Mode::EmbeddedProcesses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_one_order_on_rabbitmq_while_redis_is_down() {
    an_idempotency_key_makes_one_order_while_redis_is_down(Mode::Servers).await;
}
