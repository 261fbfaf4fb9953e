//! The custom-handler invocation contract of the queue-triggered functions, as the Functions host
//! sends it: the message body as a JSON string or as an object, metadata beside it.

use crate::helpers::TestApp;
use serde_json::{Value, json};

fn accepted_event(user: &str) -> Value {
    json!({
        "type": "OrderAccepted", "version": 1,
        "correlationId": uuid_v4(), "userId": user, "acceptedAt": "2026-11-25T10:00:00Z",
        "items": [{ "productId": "AZ-104", "productName": "Azure Administrator", "unitPriceCents": 2699, "quantity": 2 }]
    })
}

fn uuid_v4() -> String {
    orders_core::CorrelationId::generate().to_string()
}

fn metadata(delivery_count: u32) -> Value {
    json!({ "MessageId": "m-1", "DeliveryCount": delivery_count, "SessionId": "alice",
            "ApplicationProperties": { "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } })
}

#[tokio::test]
async fn order_process_accepts_the_body_as_string_or_object_and_emits_order_processed() {
    let app = TestApp::spawn().await;
    for (event, as_string) in [
        (accepted_event("alice"), true),
        (accepted_event("alice"), false),
    ] {
        let body = if as_string {
            Value::String(event.to_string())
        } else {
            event.clone()
        };
        let res = app
            .post("/OrderProcess")
            .json(&json!({ "Data": { "order": body }, "Metadata": metadata(1) }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let answer: Value = res.json().await.unwrap();
        let processed: Value =
            serde_json::from_str(answer["Outputs"]["processed"].as_str().unwrap()).unwrap();
        assert_eq!(processed["type"], "OrderProcessed");
        assert_eq!(processed["correlationId"], event["correlationId"]);
        assert!(processed["orderId"].as_i64().unwrap() > 0);
        // The output binding carries only the body, so the trace context rides in it.
        let trace = processed["traceparent"].as_str().unwrap();
        assert!(
            trace.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{trace}"
        );
        assert!(
            !trace.contains("00f067aa0ba902b7"),
            "a new span id: {trace}"
        );
        assert!(answer["Logs"].is_array() && answer["ReturnValue"].is_null());
        // A redelivery re-emits the same order id.
        let again: Value = app
            .post("/OrderProcess")
            .json(&json!({ "Data": { "order": body }, "Metadata": metadata(2) }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let again: Value =
            serde_json::from_str(again["Outputs"]["processed"].as_str().unwrap()).unwrap();
        assert_eq!(again["orderId"], processed["orderId"]);
    }
}

#[tokio::test]
async fn bad_invocations_fail_with_a_non_2xx_answer() {
    let app = TestApp::spawn().await;
    let cases = [
        json!({ "Data": { "order": "{not json" }, "Metadata": {} }),
        json!({ "Data": { "order": { "type": "OrderAccepted", "version": 2 } }, "Metadata": {} }),
        json!({ "Data": {}, "Metadata": {} }),
    ];
    for payload in cases {
        let res = app
            .post("/OrderProcess")
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{payload}");
    }
    // The notifier cannot find an owner for an order nobody placed: fail, so it is retried.
    let unknown = json!({ "type": "OrderProcessed", "version": 1, "correlationId": uuid_v4(), "orderId": 99 });
    let res = app
        .post("/OrderNotify")
        .json(&json!({ "Data": { "processed": unknown.to_string() }, "Metadata": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn order_notify_succeeds_for_a_persisted_order_found_through_sql() {
    let app = TestApp::spawn().await;
    let (order_id, cid) = app.persist_order("alice", "AZ-104", 1).await;
    let event = json!({ "type": "OrderProcessed", "version": 1, "correlationId": cid.to_string(), "orderId": order_id.get() });
    let res = app
        .post("/OrderNotify")
        .json(&json!({ "Data": { "processed": event }, "Metadata": metadata(1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert!(answer["Logs"][0].as_str().unwrap().contains("alice"));
}
