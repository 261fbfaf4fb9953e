//! Traces over OTLP: the real `functions-host` binary, pointed at an OTLP/HTTP sink run by the
//! test, turns one order into one trace (the caller's) across intake, the queue hops, both
//! functions and the hub push.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const KEY: &str = "otlp-test-signing-key-that-is-long-enough-0123";

type Received = Arc<Mutex<Vec<u8>>>;

/// Accepts `POST /v1/traces` and keeps every protobuf body.
async fn sink() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(all): State<Received>, body: Bytes| async move {
                all.lock().unwrap().extend_from_slice(&body);
                ""
            }),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, received)
}

struct Host(Child);

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[tokio::test]
async fn one_order_is_one_trace_across_every_hop() {
    let (endpoint, received) = sink().await;
    let dir = tempfile::tempdir().unwrap();
    let port = orders_test_support::free_port();
    let mut host = Host(
        Command::new(env!("CARGO_BIN_EXE_functions-host"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("PORT", port.to_string())
            .env("DATA_DIR", dir.path())
            .env("JWT_SIGNING_KEY", KEY)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "host did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token: serde_json::Value = client
        .post(format!("{base}/dev/token"))
        .json(&serde_json::json!({"userId": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["accessToken"].as_str().unwrap().to_owned();
    let accepted: serde_json::Value = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .json(&serde_json::json!({"items": [{"productId": "AZ-104", "quantity": 1}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status_url = format!("{base}{}", accepted["statusUrl"].as_str().unwrap());
    loop {
        let order: serde_json::Value = client
            .get(&status_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if order["status"] == "COMPLETED" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{order}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM: a graceful stop flushes the batch of spans.
    Command::new("kill")
        .arg(host.0.id().to_string())
        .status()
        .unwrap();
    tokio::task::spawn_blocking(move || host.0.wait())
        .await
        .unwrap()
        .unwrap();

    let all = received.lock().unwrap().clone();
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    // http + place_order; OrderProcess: trigger + http + invocation + push (PROCESSING);
    // OrderNotify: invocation + push (COMPLETED), joined through the traceparent in the
    // OrderProcessed body (the emulator's notify trigger span, like Azure's, starts its own
    // trace, as output bindings carry no properties): 8 spans carry the caller's trace id.
    assert!(
        occurrences(&all, &trace_id) >= 8,
        "{} spans in the caller's trace",
        occurrences(&all, &trace_id)
    );
    for name in ["place_order", "trigger", "invocation", "push"] {
        assert!(
            occurrences(&all, name.as_bytes()) > 0,
            "no {name} span exported"
        );
    }
}
