use crate::helpers::{TestApp, one_item, problem};
use orders_adapters::sqlite::SqliteQueue;
use orders_core::ports::QueueTransport;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn placing_an_order_answers_202_with_location_and_queues_it() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let res = app.place_order(&token, json!({ "items": [{ "productId": "AZ-104", "quantity": 1 }, { "productId": "SAA-C03", "quantity": 2 }] })).await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let cid = body["correlationId"].as_str().unwrap();
    assert_eq!(body["status"], "ACCEPTED");
    assert_eq!(location, format!("/api/orders/{cid}"));
    assert_eq!(body["statusUrl"], location);
    assert_eq!(app.queued("order.accepted").await, 1);

    let status: Value = app
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "ACCEPTED");
    assert_eq!(status["orderId"], Value::Null);
    assert_eq!(status["correlationId"], cid);
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_replays_the_first_answer() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let send = |body: Value, key: &'static str| {
        app.post("/api/orders")
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send(one_item("AZ-104", 1), "checkout-1").await.unwrap();
    assert_eq!(first.status(), 202);
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    // Same meaning, different spacing and case: still the same request.
    let again = send(
        json!({ "items": [ { "quantity": 1, "productId": "az-104" } ] }),
        "checkout-1",
    )
    .await
    .unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.queued("order.accepted").await, 1, "one order, not two");

    let body = problem(
        send(one_item("AZ-104", 2), "checkout-1").await.unwrap(),
        422,
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("different request body")
    );

    // Keys are per user: bob's "checkout-1" is his own.
    let bob = app.token("bob").await;
    let res = app
        .post("/api/orders")
        .bearer_auth(&bob)
        .header("Idempotency-Key", "checkout-1")
        .json(&one_item("AZ-104", 2))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(app.queued("order.accepted").await, 2);
}

#[tokio::test]
async fn a_failed_request_does_not_burn_its_idempotency_key() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let res = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .json(&one_item("NOPE-1", 1))
        .send()
        .await
        .unwrap();
    problem(res, 404).await;
    let res = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("Idempotency-Key", "k")
        .json(&one_item("AZ-104", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn persisted_orders_are_served_from_sql_with_their_items() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let (order_id, cid) = app.persist_order("alice", "AZ-104", 3).await;
    for reference in [order_id.to_string(), cid.to_string()] {
        let res = app
            .get(&format!("/api/orders/{reference}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["orderId"], order_id.get());
        assert_eq!(order["correlationId"], cid.to_string());
        assert_eq!(order["status"], "COMPLETED");
        assert_eq!(order["total"], "59.97");
        assert_eq!(order["totalCents"], 5997);
        assert_eq!(order["dueToday"], "59.97");
        assert_eq!(order["dueTodayCents"], 5997);
        assert_eq!(
            order["recurring"],
            json!([{ "billingPeriod": "monthly", "amount": "59.97", "amountCents": 5997 }])
        );
        assert!(order["createdAt"].is_string() && order["completedAt"].is_string());
        assert_eq!(
            order["items"],
            json!([{ "productId": "AZ-104", "productName": "AZ-104 prep", "unitPrice": "19.99", "unitPriceCents": 1999, "quantity": 3, "billingPeriod": "monthly" }])
        );
    }
}

async fn order(app: &TestApp, token: &str, reference: &str) -> Value {
    let res = app
        .get(&format!("/api/orders/{reference}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Invokes `function` with `event` on its trigger `binding`, as the Functions host does.
async fn invoke(app: &TestApp, function: &str, binding: &str, event: &str) {
    let res = app
        .post(&format!("/{function}"))
        .json(&json!({ "Data": { binding: event }, "Metadata": { "DeliveryCount": 1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{function}");
}

#[tokio::test]
async fn an_order_says_what_is_due_today_and_what_recurs_per_billing_period() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    // Final unit prices: AZ-104 26.99 and AZ-900 19.99 monthly, AZ-305 119.99 quarterly,
    // SAA-C03 199.99 yearly, AZ-500 14.24 one-time.
    let items = json!({ "items": [
        { "productId": "SAA-C03", "quantity": 1 },
        { "productId": "AZ-500", "quantity": 1 },
        { "productId": "AZ-104", "quantity": 2 },
        { "productId": "AZ-305", "quantity": 1 },
        { "productId": "AZ-900", "quantity": 1 },
    ] });
    let accepted: Value = app.place_order(&token, items).await.json().await.unwrap();
    let cid = accepted["correlationId"].as_str().unwrap();

    let in_flight = order(&app, &token, cid).await;
    assert_eq!(in_flight["status"], "ACCEPTED");
    assert_eq!(in_flight["dueToday"], Value::Null);
    assert_eq!(in_flight["dueTodayCents"], Value::Null);
    assert_eq!(in_flight["recurring"], json!([]));

    let queue = SqliteQueue::new(app.store().await);
    let delivery = queue
        .receive("order.accepted", 1, Duration::from_secs(1))
        .await
        .unwrap()
        .remove(0);
    invoke(&app, "OrderProcess", "order", &delivery.body).await;

    let completed = order(&app, &token, cid).await;
    assert_eq!(completed["status"], "COMPLETED");
    let periods: Vec<&Value> = completed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["billingPeriod"])
        .collect();
    assert_eq!(
        periods,
        ["yearly", "one-time", "monthly", "quarterly", "monthly"]
    );
    let due_today = 19_999 + 1_424 + 2 * 2_699 + 11_999 + 1_999;
    assert_eq!(completed["dueTodayCents"], due_today);
    assert_eq!(completed["dueToday"], "408.19");
    assert_eq!(
        completed["totalCents"], due_today,
        "total is what is due today"
    );
    assert_eq!(
        completed["recurring"],
        json!([
            { "billingPeriod": "monthly", "amount": "73.97", "amountCents": 7_397 },
            { "billingPeriod": "quarterly", "amount": "119.99", "amountCents": 11_999 },
            { "billingPeriod": "yearly", "amount": "199.99", "amountCents": 19_999 },
        ])
    );
}

#[tokio::test]
async fn a_failed_order_is_priced_from_its_message_where_lines_without_a_period_are_one_time() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let cid = orders_core::CorrelationId::generate().to_string();
    // The first line is as an older intake enqueued it: no billingPeriod.
    let event = json!({
        "type": "OrderAccepted", "version": 1, "correlationId": cid, "userId": "alice",
        "acceptedAt": "2026-11-25T10:00:00Z",
        "items": [
            { "productId": "AZ-104", "productName": "Azure Administrator", "unitPriceCents": 2699, "quantity": 2 },
            { "productId": "SAA-C03", "productName": "Solutions Architect", "unitPriceCents": 19999, "quantity": 1, "billingPeriod": "yearly" },
        ]
    });
    invoke(&app, "OrderFailed", "failed", &event.to_string()).await;

    let failed = order(&app, &token, &cid).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["items"][0]["billingPeriod"], "one-time");
    assert_eq!(failed["items"][1]["billingPeriod"], "yearly");
    assert_eq!(failed["dueToday"], "253.97");
    assert_eq!(failed["dueTodayCents"], 25_397);
    assert_eq!(
        failed["recurring"],
        json!([{ "billingPeriod": "yearly", "amount": "199.99", "amountCents": 19_999 }])
    );
}

#[tokio::test]
async fn another_users_order_is_not_found_anywhere() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice").await;
    let mallory = app.token("mallory").await;
    let (order_id, cid) = app.persist_order("alice", "AZ-104", 1).await;
    let accepted: Value = app
        .place_order(&alice, one_item("AZ-104", 1))
        .await
        .json()
        .await
        .unwrap();
    let in_flight = accepted["correlationId"].as_str().unwrap();
    for reference in [order_id.to_string(), cid.to_string(), in_flight.to_owned()] {
        let path = format!("/api/orders/{reference}");
        problem(
            app.get(&path).bearer_auth(&mallory).send().await.unwrap(),
            404,
        )
        .await;
        problem(
            app.delete(&path)
                .bearer_auth(&mallory)
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
    }
    let list: Value = app
        .get("/api/orders")
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
    let still_there = app
        .get(&format!("/api/orders/{order_id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(still_there.status(), 200);
}

#[tokio::test]
async fn lists_the_callers_orders_newest_first_with_paging() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.persist_order("alice", "SC-200", 1).await.0.get());
    }
    app.persist_order("bob", "SC-200", 1).await;
    let page: Value = app
        .get("/api/orders?size=2")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3);
    let got: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[2], ids[1]]);
    let rest: Value = app
        .get("/api/orders?size=2&offset=2")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["orderId"], ids[0]);
}

#[tokio::test]
async fn soft_delete_hides_the_order_from_its_owner() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let (order_id, cid) = app.persist_order("alice", "AZ-104", 1).await;
    let res = app
        .delete(&format!("/api/orders/{order_id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    problem(
        app.get(&format!("/api/orders/{cid}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    problem(
        app.delete(&format!("/api/orders/{order_id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let list: Value = app
        .get("/api/orders")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn orders_need_a_token() {
    let app = TestApp::spawn().await;
    for res in [
        app.get("/api/orders").send().await.unwrap(),
        app.post("/api/orders")
            .json(&one_item("AZ-104", 1))
            .send()
            .await
            .unwrap(),
        app.get("/api/orders/1").send().await.unwrap(),
        app.delete("/api/orders/1").send().await.unwrap(),
    ] {
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        problem(res, 401).await;
    }
    assert_eq!(app.queued("order.accepted").await, 0);
}

#[tokio::test]
async fn health_openapi_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let health: Value = app
        .get("/api/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["catalogProducts"], 145);
    // The embedded mode's dependencies are local: connected from the start.
    for (role, backend) in [
        ("sql", "sqlite"),
        ("state", "memory"),
        ("fanout", "memory"),
        ("queue", "embedded"),
    ] {
        let dependency = &health["dependencies"][role];
        assert_eq!(dependency["backend"], backend, "{health}");
        assert_eq!(dependency["connected"], true, "{health}");
    }
    let doc: Value = app
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"]["/api/orders"]["post"].is_object(),
        "the document describes intake"
    );
    problem(app.get("/api/nothing-here").send().await.unwrap(), 404).await;
    problem(
        app.client
            .put(format!("{}/api/orders", app.base))
            .send()
            .await
            .unwrap(),
        405,
    )
    .await;
}

#[tokio::test]
async fn an_unconfirmed_publish_is_a_503_and_frees_the_idempotency_key() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    // Break the embedded queue underneath the running app.
    let db = rusqlite::Connection::open(app.dir.path().join("orders.db")).unwrap();
    db.execute_batch("ALTER TABLE queue_messages RENAME TO queue_messages_away")
        .unwrap();
    let send = || {
        app.post("/api/orders")
            .bearer_auth(&token)
            .header("Idempotency-Key", "retry-me")
            .json(&one_item("AZ-104", 1))
            .send()
    };
    let res = send().await.unwrap();
    assert_eq!(res.headers()["retry-after"], "5");
    problem(res, 503).await;

    db.execute_batch("ALTER TABLE queue_messages_away RENAME TO queue_messages")
        .unwrap();
    let retried = send().await.unwrap();
    assert_eq!(
        retried.status(),
        202,
        "the retry runs afresh instead of replaying the failure"
    );
    assert!(!retried.headers().contains_key("idempotent-replayed"));
    assert_eq!(app.placed_count().await, 1);
}

#[tokio::test]
async fn cross_origin_calls_only_from_the_configured_spa_origin() {
    let spa = "https://shop.contoso.example";
    let app = TestApp::spawn_with(&[("API_CORS_ORIGINS", spa)]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/orders", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let allowed = preflight(spa).await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], spa);
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The SPA can read what it needs from a real answer.
    let token = app.token("alice").await;
    let placed = app
        .post("/api/orders")
        .header("origin", spa)
        .bearer_auth(&token)
        .json(&serde_json::json!({"items": [{"productId": "AZ-104", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 202);
    let exposed = placed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in [
        "location",
        "retry-after",
        "x-request-id",
        "idempotent-replayed",
    ] {
        assert!(exposed.contains(header), "{header} not in {exposed}");
    }
}

#[tokio::test]
async fn without_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn().await;
    let answer = app
        .get("/api/products")
        .header("origin", "https://shop.contoso.example")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
