//! Every kind of bad order input gets a problem naming the field; nothing is queued.

use crate::helpers::{TestApp, one_item, problem};
use serde_json::{Value, json};

async fn rejected(app: &TestApp, token: &str, body: &str, status: u16) -> Value {
    let res = app
        .post("/api/orders")
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    problem(res, status).await
}

#[tokio::test]
async fn malformed_or_mistyped_json_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    for (body, field) in [
        ("{\"items\": [", "body"),
        ("not json", "body"),
        (
            "{\"items\": [{\"productId\": \"AZ-104\", \"quantity\": 1}]} trailing",
            "body",
        ),
        ("[]", "body"),
        ("{}", "body"),
        ("{\"items\": \"AZ-104\"}", "items"),
        (
            "{\"items\": [{\"productId\": \"AZ-104\", \"quantity\": \"1\"}]}",
            "items[0].quantity",
        ),
        (
            "{\"items\": [{\"productId\": \"AZ-104\", \"quantity\": 1.5}]}",
            "items[0].quantity",
        ),
        (
            "{\"items\": [{\"productId\": 104, \"quantity\": 1}]}",
            "items[0].productId",
        ),
        (
            "{\"items\": [{\"productId\": \"AZ-104\", \"quantity\": 1e30}]}",
            "items[0].quantity",
        ),
        ("{\"items\": [{\"productId\": \"AZ-104\"}]}", "items[0]"),
        // serde would take these as structs; the contract says objects.
        ("[[{\"productId\": \"AZ-104\", \"quantity\": 1}]]", "body"),
        (
            "{\"items\": [{\"productId\": \"AZ-104\", \"quantity\": 1}, [\"AZ-900\", 1]]}",
            "items[1]",
        ),
    ] {
        let problem = rejected(&app, &token, body, 400).await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    assert_eq!(app.placed_count().await, 0);
}

#[tokio::test]
async fn invalid_lines_are_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({ "productId": format!("P-{i}"), "quantity": 1 }))
        .collect();
    let cases = [
        (json!({ "items": [] }), "items"),
        (json!({ "items": many }), "items"),
        (one_item("AZ-104", 0), "items[0].quantity"),
        (one_item("AZ-104", -5), "items[0].quantity"),
        (one_item("AZ-104", 1001), "items[0].quantity"),
        (one_item("AZ 104; drop table", 1), "items[0].productId"),
        (
            json!({ "items": [{ "productId": "AZ-104", "quantity": 1 }, { "productId": "az-104", "quantity": 2 }] }),
            "items[1].productId",
        ),
    ];
    for (body, field) in cases {
        let problem = rejected(&app, &token, &body.to_string(), 400).await;
        assert_eq!(problem["field"], field, "{problem}");
    }
    assert_eq!(app.placed_count().await, 0);
}

#[tokio::test]
async fn unknown_and_retired_products_are_a_404_listing_them() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let body = json!({ "items": [
        { "productId": "NOPE-1", "quantity": 1 },
        { "productId": "AZ-104", "quantity": 1 },
        { "productId": "AZ-300", "quantity": 1 }
    ] });
    let problem = rejected(&app, &token, &body.to_string(), 404).await;
    assert_eq!(problem["productIds"], json!(["NOPE-1", "AZ-300"]));
    assert_eq!(problem["field"], "items");
    assert_eq!(app.placed_count().await, 0);
}

#[tokio::test]
async fn oversized_bodies_wrong_media_types_and_bad_headers_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("alice").await;
    let padding = "x".repeat(70 * 1024);
    let huge = format!("{{\"items\": [], \"padding\": \"{padding}\"}}");
    rejected(&app, &token, &huge, 413).await;

    let res = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(one_item("AZ-104", 1).to_string())
        .send()
        .await
        .unwrap();
    problem(res, 415).await;

    let res = app
        .post("/api/orders")
        .bearer_auth(&token)
        .header("Idempotency-Key", "has spaces")
        .json(&one_item("AZ-104", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 400).await["field"], "Idempotency-Key");

    for reference in ["0", "-1", "abc", "1.5", "%FF"] {
        let res = app
            .get(&format!("/api/orders/{reference}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res, 400).await["field"], "ref", "{reference}");
    }
    let res = app
        .post("/dev/token")
        .json(&json!({ "userId": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res, 400).await["field"], "userId");
    assert_eq!(app.placed_count().await, 0);
}
