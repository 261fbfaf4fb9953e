//! `TestApp::spawn()`: the real handler on a random port with a throwaway data directory.

use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_core::catalog::Catalog;
use orders_core::order::{NewOrder, OrderLine};
use orders_core::ports::OrderStore;
use orders_core::{CorrelationId, Money, OrderId, ProductId, UserId};
use orders_functions::{App, Settings};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

pub const SIGNING_KEY: &str = "test-signing-key-that-is-long-enough-0123456789";
pub const ISSUER: &str = "contoso-orders-dev";
pub const AUDIENCE: &str = "contoso-orders-api";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// Dev mode with a known signing key.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[("JWT_SIGNING_KEY", SIGNING_KEY)]).await
    }

    pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("PORT".into(), "0".into());
        env.insert("DATA_DIR".into(), dir.path().display().to_string());
        let settings =
            Settings::from_lookup(&|name| env.get(name).cloned()).expect("test settings are valid");
        let app = App::build(settings).await.expect("app starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.serve(std::future::pending()));
        TestApp {
            base,
            client: reqwest::Client::new(),
            dir,
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(format!("{}{path}", self.base))
    }

    /// A dev token for `user`, from the app's own endpoint.
    pub async fn token(&self, user: &str) -> String {
        let res = self
            .post("/dev/token")
            .json(&json!({ "userId": user }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn place_order(&self, token: &str, body: Value) -> Response {
        self.post("/api/orders")
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A second connection to the app's database, as the processor would use it.
    pub async fn store(&self) -> SqliteStore {
        SqliteStore::open(
            &self.dir.path().join("orders.db"),
            orders_adapters::seed::products(),
        )
        .await
        .unwrap()
    }

    pub async fn queued(&self, queue: &str) -> u64 {
        SqliteQueue::new(self.store().await)
            .depth(queue)
            .await
            .unwrap()
    }

    /// Orders intake has handed to the queue.
    pub async fn placed_count(&self) -> u64 {
        self.queued("order.accepted").await
    }

    /// Persists an order directly, standing in for the processor.
    pub async fn persist_order(
        &self,
        user: &str,
        product: &str,
        quantity: u32,
    ) -> (OrderId, CorrelationId) {
        let product_id = ProductId::parse(product).unwrap();
        let billing_period = Catalog::new(orders_adapters::seed::products())
            .get(&product_id)
            .expect("a seeded product")
            .billing_period;
        let cid = CorrelationId::generate();
        let order = NewOrder {
            correlation_id: cid,
            user_id: UserId::parse(user).unwrap(),
            lines: vec![OrderLine {
                product_id,
                product_name: format!("{product} prep"),
                unit_price: Money::from_cents(1999),
                quantity,
                billing_period,
            }],
            accepted_at: chrono::Utc::now(),
        };
        let saved = self.store().await.save_order(&order).await.unwrap();
        (saved.order_id, cid)
    }
}

/// Asserts an RFC 9457 problem with this status, returning its body.
pub async fn problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status(), status, "unexpected status");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
        "{body}"
    );
    body
}

pub fn one_item(product: &str, quantity: i64) -> Value {
    json!({ "items": [{ "productId": product, "quantity": quantity }] })
}
