//! The order pipeline end to end: intake -> order.accepted -> OrderProcess -> SQL +
//! order.processed -> OrderNotify, through the local Functions host, in each local mode.

use orders_core::events::{IntegrationEvent, OrderAccepted};
use orders_core::order::OrderLine;
use orders_core::ports::OutboundMessage;
use orders_core::product::BillingPeriod;
use orders_core::{CorrelationId, Money, ProductId, UserId};
use orders_e2e::System;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// An order of one `product` at 10.00 a month (whatever the catalog says: the message is made up).
fn accepted(user: &str, product: &str) -> OrderAccepted {
    OrderAccepted {
        correlation_id: CorrelationId::generate(),
        user_id: UserId::parse(user).unwrap(),
        items: vec![OrderLine {
            product_id: ProductId::parse(product).unwrap(),
            product_name: format!("{product} prep"),
            unit_price: Money::from_cents(1000),
            quantity: 1,
            billing_period: BillingPeriod::Monthly,
        }],
        accepted_at: chrono::Utc::now(),
        traceparent: None,
    }
}

fn message(event: &OrderAccepted, message_id: &str) -> OutboundMessage {
    OutboundMessage {
        message_id: message_id.into(),
        session_id: Some(event.user_id.to_string()),
        body: event.to_json(),
        properties: BTreeMap::from([("correlationId".into(), event.correlation_id.to_string())]),
    }
}

async fn an_order_placed_over_http_is_completed_with_its_id_and_items(system: System) {
    let token = system.token("alice").await;
    let cid = system.place(&token, "AZ-104", 2).await;
    let (order, took) = system
        .wait_completed(&token, &cid, Duration::from_secs(5))
        .await;
    println!("{:?}: POST -> COMPLETED visible in {took:?}", system.mode);
    assert!(order["orderId"].as_i64().unwrap() > 0);
    assert_eq!(order["items"][0]["productId"], "AZ-104");
    assert_eq!(order["items"][0]["quantity"], 2);
    let (_, by_id) = system.order(&token, &order["orderId"].to_string()).await;
    assert_eq!(by_id["correlationId"], cid.as_str());
    system.stop().await;
}

async fn the_same_order_delivered_twice_is_persisted_once(system: System) {
    let token = system.token("bob").await;
    let event = accepted("bob", "SC-200");
    let broker = system.broker().await;
    // Two different messages carrying one order: duplicate detection cannot help, idempotent
    // persistence must.
    broker
        .publish("order.accepted", message(&event, "first"))
        .await
        .unwrap();
    broker
        .publish("order.accepted", message(&event, "second"))
        .await
        .unwrap();
    system
        .wait_completed(
            &token,
            &event.correlation_id.to_string(),
            Duration::from_secs(10),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // let the second delivery finish too
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM orders"), 1);
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM order_items"), 1);
    system.stop().await;
}

/// A poison order: every delivery fails, the host dead-letters it, `OrderFailed` (triggered by
/// `order.accepted/$deadletterqueue`) records it FAILED with the broker's reason and tells its
/// owner; meanwhile other orders flow. Once the cause is fixed, `deadletters retry` completes it.
async fn a_poison_order_ends_failed_for_its_owner_and_completes_when_retried(system: System) {
    let (carol, dave) = (system.token("carol").await, system.token("dave").await);
    // An order for a product SQL does not know: every delivery fails.
    let poison = accepted("carol", "NEW-1");
    let cid = poison.correlation_id.to_string();
    let broker = system.broker().await;
    broker
        .publish("order.accepted", message(&poison, &cid))
        .await
        .unwrap();
    let healthy = system.place(&dave, "AZ-900", 1).await;
    system
        .wait_completed(&dave, &healthy, Duration::from_secs(10))
        .await;

    let (failed, took) = system
        .wait_status(&carol, &cid, "FAILED", Duration::from_secs(20))
        .await;
    println!("{:?}: published -> FAILED in {took:?}", system.mode);
    // What Service Bus records: redelivered at once after each failure, then dead-lettered by
    // the service after the queue's maxDeliveryCount (10, as in Azure).
    assert_eq!(
        failed["failure"]["reason"],
        "MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts."
    );
    assert_eq!(failed["items"][0]["productId"], "NEW-1");
    assert_eq!(failed["totalCents"], 1000);
    assert_eq!(
        failed["recurring"],
        json!([{ "billingPeriod": "monthly", "amount": "10.00", "amountCents": 1000 }])
    );
    assert_eq!(failed["orderId"], Value::Null);
    assert_eq!(
        system.order(&dave, &cid).await.0,
        404,
        "only its owner sees it"
    );
    // OrderFailed consumed the dead letter; the order is kept FAILED in SQL for the retry.
    assert!(
        broker
            .dead_letters("order.accepted", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = system.tool("deadletters", &["failed"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&cid),
        "{listed:?}"
    );

    // Fix it (the product appears), then retry: processed exactly once.
    rusqlite::Connection::open(system.db_path())
        .unwrap()
        .execute_batch(
            "INSERT INTO products (product_id, name, category, vendor, image_url, price_cents, discount_percent,
                 billing_period, is_subscription, is_active)
             VALUES ('NEW-1', 'New exam', 'Cloud', 'Microsoft', '', 1000, 0, 'monthly', 1, 1)",
        )
        .unwrap();
    let retried = system.tool("deadletters", &["retry", &cid]);
    assert!(retried.status.success(), "{retried:?}");
    let (completed, _) = system
        .wait_completed(&carol, &cid, Duration::from_secs(10))
        .await;
    assert_eq!(completed["failure"], Value::Null);
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM orders"), 2);
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM failed_orders"), 0);
    assert_eq!(
        system.tool("deadletters", &["retry", &cid]).status.code(),
        Some(1)
    );
    system.stop().await;
}

async fn one_users_orders_are_persisted_in_submission_order(system: System) {
    let token = system.token("erin").await;
    let mut cids = Vec::new();
    for _ in 0..200 {
        cids.push(system.place(&token, "AZ-104", 1).await);
    }
    system
        .wait_completed(&token, cids.last().unwrap(), Duration::from_secs(60))
        .await;
    let conn = rusqlite::Connection::open(system.db_path()).unwrap();
    let persisted: Vec<String> = conn
        .prepare("SELECT correlation_id FROM orders ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        persisted, cids,
        "per-session FIFO: SQL ids follow submission order"
    );
    system.stop().await;
}

async fn a_thousand_orders_from_fifty_users_end_as_a_thousand_completed_rows(system: System) {
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(system.token(&format!("user-{i}")).await);
    }
    let system_ref = &system;
    let per_user = futures::future::join_all(users.iter().map(|token| async move {
        let mut mine = Vec::new();
        for _ in 0..20 {
            mine.push((token.clone(), system_ref.place(token, "SAA-C03", 1).await));
        }
        mine
    }))
    .await;
    let placed: Vec<(String, String)> = per_user.into_iter().flatten().collect();
    assert_eq!(placed.len(), 1000);
    for (token, cid) in &placed {
        system
            .wait_completed(token, cid, Duration::from_secs(120))
            .await;
    }
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM orders"), 1000);
    assert_eq!(
        system.sql_count("SELECT COUNT(DISTINCT correlation_id) FROM orders"),
        1000
    );
    system.stop().await;
}

async fn a_handler_killed_mid_stream_loses_and_duplicates_nothing(system: System) {
    let token = system.token("frank").await;
    let mut cids = Vec::new();
    for _ in 0..40 {
        cids.push(system.place(&token, "AZ-305", 1).await);
    }
    // Kill the handler once orders are flowing: whatever it held is redelivered.
    system
        .wait_completed(&token, &cids[2], Duration::from_secs(10))
        .await;
    let pid = system
        .handler_pid()
        .expect("the handler runs as a child process");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for cid in &cids {
        system
            .wait_completed(&token, cid, Duration::from_secs(60))
            .await;
    }
    assert_ne!(
        system.handler_pid(),
        Some(pid),
        "the host restarted its handler"
    );
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM orders"), 40);
    system.stop().await;
}

async fn a_graceful_restart_keeps_every_accepted_order(mut system: System) {
    let token = system.token("heidi").await;
    let mut cids = Vec::new();
    for _ in 0..60 {
        cids.push(system.place(&token, "AZ-204", 1).await);
    }
    // Stop while orders are still queued or in flight: in-flight invocations finish and settle,
    // the rest waits in the durable queue for the next start.
    system.restart().await;
    let token = system.token("heidi").await;
    for cid in &cids {
        system
            .wait_completed(&token, cid, Duration::from_secs(60))
            .await;
    }
    assert_eq!(system.sql_count("SELECT COUNT(*) FROM orders"), 60);
    system.stop().await;
}

/// One `#[tokio::test]` per (mode, case).
macro_rules! e2e {
    ($mode:ident: $($case:ident),+ $(,)?) => {
        #[allow(non_snake_case)]
        mod $mode {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(orders_e2e::System::start(orders_e2e::Mode::$mode).await).await;
                }
            )+
        }
    };
}

e2e!(Embedded:
    an_order_placed_over_http_is_completed_with_its_id_and_items,
    the_same_order_delivered_twice_is_persisted_once,
    a_poison_order_ends_failed_for_its_owner_and_completes_when_retried,
    one_users_orders_are_persisted_in_submission_order,
    a_thousand_orders_from_fifty_users_end_as_a_thousand_completed_rows,
    a_graceful_restart_keeps_every_accepted_order,
);
e2e!(EmbeddedProcesses: a_handler_killed_mid_stream_loses_and_duplicates_nothing);
e2e!(Servers:
    an_order_placed_over_http_is_completed_with_its_id_and_items,
    the_same_order_delivered_twice_is_persisted_once,
    a_poison_order_ends_failed_for_its_owner_and_completes_when_retried,
    one_users_orders_are_persisted_in_submission_order,
    a_thousand_orders_from_fifty_users_end_as_a_thousand_completed_rows,
    a_handler_killed_mid_stream_loses_and_duplicates_nothing,
    a_graceful_restart_keeps_every_accepted_order,
);
