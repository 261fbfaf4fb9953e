//! How far behind each queue trigger is, for operators: the number of messages waiting and the
//! age of the oldest one, per queue, read from the transport at each request.
//!
//! - `GET /metrics`: Prometheus text format (`functions_host_queue_depth`,
//!   `functions_host_queue_oldest_message_age_seconds`, labelled by queue).
//! - `GET /admin/host/status`: the same as JSON, at the real host's status path.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use orders_core::ports::{Backlog, QueueTransport};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

pub struct Backlogs {
    transport: Arc<dyn QueueTransport>,
    queues: Vec<String>,
    registry: Registry,
    depth: Family<Labels, Gauge>,
    oldest_age: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// One queue's backlog as read now.
struct Reading {
    queue: String,
    backlog: Result<Backlog, String>,
}

impl Backlogs {
    pub fn new(transport: Arc<dyn QueueTransport>, mut queues: Vec<String>) -> Self {
        queues.sort();
        queues.dedup();
        let mut registry = Registry::with_prefix("functions_host_queue");
        let depth = Family::<Labels, Gauge>::default();
        let oldest_age = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register("depth", "Messages waiting on the queue.", depth.clone());
        registry.register(
            "oldest_message_age_seconds",
            "Age of the oldest message waiting on the queue (where the broker tells it).",
            oldest_age.clone(),
        );
        Backlogs {
            transport,
            queues,
            registry,
            depth,
            oldest_age,
        }
    }

    async fn read(&self) -> Vec<Reading> {
        let mut readings = Vec::with_capacity(self.queues.len());
        for queue in &self.queues {
            let backlog = self
                .transport
                .backlog(queue)
                .await
                .map_err(|e| e.to_string());
            readings.push(Reading {
                queue: queue.clone(),
                backlog,
            });
        }
        readings
    }
}

fn age_seconds(backlog: &Backlog) -> Option<f64> {
    backlog
        .oldest
        .map(|at| (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0)
}

pub fn router(backlogs: Arc<Backlogs>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/host/status", get(status))
        .with_state(backlogs)
}

async fn metrics(State(backlogs): State<Arc<Backlogs>>) -> Response {
    backlogs.depth.clear();
    backlogs.oldest_age.clear();
    for reading in backlogs.read().await {
        // A queue that cannot be read is left out: no figure rather than a wrong one.
        let Ok(backlog) = reading.backlog else {
            continue;
        };
        let labels = vec![("queue".to_owned(), reading.queue)];
        backlogs
            .depth
            .get_or_create(&labels)
            .set(backlog.depth as i64);
        if let Some(age) = age_seconds(&backlog) {
            backlogs.oldest_age.get_or_create(&labels).set(age);
        }
    }
    let mut text = String::new();
    encode(&mut text, &backlogs.registry).expect("writing to a String cannot fail");
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

async fn status(State(backlogs): State<Arc<Backlogs>>) -> Response {
    let queues: Vec<_> = backlogs
        .read()
        .await
        .into_iter()
        .map(|reading| match reading.backlog {
            Ok(backlog) => serde_json::json!({
                "queue": reading.queue,
                "depth": backlog.depth,
                "oldestMessageAgeSeconds": age_seconds(&backlog),
            }),
            Err(error) => serde_json::json!({ "queue": reading.queue, "error": error }),
        })
        .collect();
    axum::Json(serde_json::json!({ "state": "Running", "queues": queues })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
    use orders_core::ports::{MessagePublisher, OutboundMessage};
    use tower::ServiceExt;

    async fn get(router: &Router, path: &str) -> String {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn depth_and_oldest_age_per_queue_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("orders.db"), Vec::new())
            .await
            .unwrap();
        let queue = Arc::new(SqliteQueue::new(store));
        for id in ["m-1", "m-2"] {
            let message = OutboundMessage {
                message_id: id.into(),
                session_id: Some("alice".into()),
                body: "{}".into(),
                properties: Default::default(),
            };
            queue.publish("order.accepted", message).await.unwrap();
        }
        let queues = vec!["order.accepted".into(), "order.processed".into()];
        let router = router(Arc::new(Backlogs::new(queue, queues)));

        let text = get(&router, "/metrics").await;
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        };
        assert_eq!(
            line(r#"functions_host_queue_depth{queue="order.accepted"}"#).as_deref(),
            Some(r#"functions_host_queue_depth{queue="order.accepted"} 2"#)
        );
        assert!(
            line(r#"functions_host_queue_depth{queue="order.processed"} 0"#).is_some(),
            "{text}"
        );
        let age =
            line(r#"functions_host_queue_oldest_message_age_seconds{queue="order.accepted"}"#)
                .expect("an age for a queue with messages");
        let age: f64 = age.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.0..60.0).contains(&age), "{age}");
        assert!(
            line(r#"functions_host_queue_oldest_message_age_seconds{queue="order.processed"}"#)
                .is_none()
        );

        let status: serde_json::Value =
            serde_json::from_str(&get(&router, "/admin/host/status").await).unwrap();
        assert_eq!(status["queues"][0]["queue"], "order.accepted");
        assert_eq!(status["queues"][0]["depth"], 2);
        assert!(
            status["queues"][0]["oldestMessageAgeSeconds"]
                .as_f64()
                .is_some()
        );
        assert_eq!(status["queues"][1]["depth"], 0);
        assert!(status["queues"][1]["oldestMessageAgeSeconds"].is_null());
    }
}
