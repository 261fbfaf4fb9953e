//! Dependencies going down degrade service; they never lose an accepted order or a notification.

use orders_adapters::redis::RedisFanout;
use orders_adapters::redis::testing::RedisServer;
use orders_e2e::{Mode, System};
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
    let pushed = tokio::time::timeout(Duration::from_secs(20), notifications.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pushed.user_id.as_str(), "grace");
    assert_eq!(pushed.notification.correlation_id.to_string(), cid);
    assert_eq!(pushed.notification.status.as_str(), "COMPLETED");
    system.stop().await;
}
