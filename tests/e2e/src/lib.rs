//! Helpers for end-to-end tests: a whole Contoso Orders system on random ports, in one of the
//! local modes, driven over HTTP.

mod handler;

pub use handler::{HandlerProcess, LoggedProcess, closed_port, handler_binary, workspace_binary};

use functions_host::{HostSettings, RunningHost};
use orders_core::ports::QueueTransport;
use orders_core::secret::Secret;
use orders_functions::Settings;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const SIGNING_KEY: &str = "e2e-signing-key-that-is-long-enough-0123456789";

/// Which local mode to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One process: host, handler, SQLite queue and store, in-process state.
    Embedded,
    /// The host with the handler as a child process, still on the SQLite queue.
    EmbeddedProcesses,
    /// Two host+handler replicas on RabbitMQ and Redis (started by scripts/test), SQLite store.
    Servers,
}

pub struct System {
    pub mode: Mode,
    bases: Vec<String>,
    next: AtomicUsize,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub settings: Settings,
    env: Vec<(String, String)>,
    hosts: Vec<RunningHost>,
}

async fn spawn_hosts(
    mode: Mode,
    env: &[(String, String)],
    settings: &Settings,
) -> Vec<RunningHost> {
    let replicas = if mode == Mode::Servers { 2 } else { 1 };
    let mut hosts = Vec::new();
    for _ in 0..replicas {
        let host_settings = HostSettings {
            root: repo_root(),
            host: [127, 0, 0, 1].into(),
            port: 0,
            in_process: mode == Mode::Embedded,
            handler_bin: None,
            max_delivery_count: 10,
            workers: (mode == Mode::Servers).then_some(2),
            handler_env: env
                .iter()
                .map(|(name, value)| (name.clone(), Secret::new(value.as_str())))
                .collect(),
            // The shop is served only when a test names its build folder.
            web_dist: env
                .iter()
                .find(|(name, _)| name == "WEB_DIST")
                .map(|(_, dir)| PathBuf::from(dir)),
            hub_limits: Default::default(),
            https: None,
        };
        hosts.push(
            functions_host::start(host_settings, settings.clone())
                .await
                .expect("host starts"),
        );
    }
    hosts
}

/// Waits until every replica's handler has its queue connected, as a readiness probe would: a
/// handler answers at once but refuses orders (503) until then, and on a busy broker connecting
/// can take seconds. (Redis may be down on purpose in some tests, so only the queue counts.)
async fn wait_for_queue(bases: &[String]) {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for base in bases {
        loop {
            let health: Option<Value> = match client.get(format!("{base}/api/health")).send().await
            {
                Ok(res) => res.json().await.ok(),
                Err(_) => None,
            };
            let connected = health
                .as_ref()
                .is_some_and(|h| h["dependencies"]["queue"]["connected"] == true);
            if connected {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{base}: the queue is not connected after 60 s: {health:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn bases(hosts: &[RunningHost]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| format!("http://127.0.0.1:{}", h.port))
        .collect()
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub use orders_test_support::server_url;

/// A golden invocation payload of tests/conformance/payloads: what the Functions host POSTs.
pub fn golden(name: &str) -> Value {
    let path = repo_root().join("tests/conformance/payloads").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A dev token for `user` from `POST {base}/dev/token`.
pub async fn dev_token(client: &reqwest::Client, base: &str, user: &str) -> String {
    let res = client
        .post(format!("{base}/dev/token"))
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

/// Places an order at `base`, expecting 202 ACCEPTED; returns its correlation id.
pub async fn place_order(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    product: &str,
    quantity: u32,
) -> String {
    let body = json!({ "items": [{ "productId": product, "quantity": quantity }] });
    let res = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        202,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "ACCEPTED");
    accepted["correlationId"].as_str().unwrap().to_owned()
}

impl System {
    pub async fn start(mode: Mode) -> System {
        System::start_with(mode, &[]).await
    }

    /// `mode` with some settings overridden (e.g. a test's own `REDIS_URL`).
    pub async fn start_with(mode: Mode, overrides: &[(&str, &str)]) -> System {
        let dir = tempfile::tempdir().unwrap();
        let mut env: Vec<(String, String)> = vec![
            ("DATA_DIR".into(), dir.path().display().to_string()),
            ("JWT_SIGNING_KEY".into(), SIGNING_KEY.into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        if mode == Mode::Servers {
            env.extend([
                ("QUEUE_TRANSPORT".into(), "rabbitmq".into()),
                (
                    "RABBITMQ_URL".into(),
                    server_url("RABBITMQ_URL", "rabbitmq.sh"),
                ),
                ("REDIS_URL".into(), server_url("REDIS_URL", "redis.sh")),
                // Each test its own queues on the shared broker.
                (
                    "QUEUE_NAMESPACE".into(),
                    format!("e2e-{}", uuid::Uuid::new_v4().simple()),
                ),
                (
                    "FANOUT_CHANNEL_PREFIX".into(),
                    format!("e2e-{}:", uuid::Uuid::new_v4().simple()),
                ),
            ]);
        }
        for (name, value) in overrides {
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value.to_string()));
        }
        let map: HashMap<String, String> = env.iter().cloned().collect();
        let settings =
            Settings::from_lookup(&|name| map.get(name).cloned()).expect("valid settings");
        let hosts = spawn_hosts(mode, &env, &settings).await;
        wait_for_queue(&bases(&hosts)).await;
        System {
            mode,
            bases: bases(&hosts),
            next: AtomicUsize::new(0),
            client: reqwest::Client::new(),
            dir,
            settings,
            env,
            hosts,
        }
    }

    /// Stops every replica gracefully and starts them again on the same data and queues, as
    /// a redeploy would.
    pub async fn restart(&mut self) {
        for host in std::mem::take(&mut self.hosts) {
            host.stop().await;
        }
        self.hosts = spawn_hosts(self.mode, &self.env, &self.settings).await;
        self.bases = bases(&self.hosts);
        wait_for_queue(&self.bases).await;
    }

    /// The next replica's base URL: requests spread over all replicas, no stickiness.
    pub fn base(&self) -> &str {
        &self.bases[self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len()]
    }

    pub async fn token(&self, user: &str) -> String {
        dev_token(&self.client, self.base(), user).await
    }

    /// Places an order and returns its correlation id.
    pub async fn place(&self, token: &str, product: &str, quantity: u32) -> String {
        place_order(&self.client, self.base(), token, product, quantity).await
    }

    pub async fn order(&self, token: &str, reference: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}/api/orders/{reference}", self.base()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Polls until the order is COMPLETED; returns it and how long that took.
    pub async fn wait_completed(
        &self,
        token: &str,
        cid: &str,
        within: Duration,
    ) -> (Value, Duration) {
        self.wait_status(token, cid, "COMPLETED", within).await
    }

    /// Polls until the order has `wanted` status; returns it and how long that took.
    pub async fn wait_status(
        &self,
        token: &str,
        cid: &str,
        wanted: &str,
        within: Duration,
    ) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let (status, order) = self.order(token, cid).await;
            if status == 200 && order["status"] == wanted {
                return (order, started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "order {cid} not {wanted} within {within:?}: {order}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs a workspace tool (e.g. `deadletters`) with this system's settings.
    pub fn tool(&self, name: &str, args: &[&str]) -> std::process::Output {
        std::process::Command::new(workspace_binary(name, "functions-host", None))
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap_or_else(|e| panic!("{name} runs: {e}"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("orders.db")
    }

    /// Another handle on this system's broker, as a separate client would have.
    pub async fn broker(&self) -> Arc<dyn QueueTransport> {
        orders_functions::app::open_broker(&self.settings)
            .await
            .expect("broker")
    }

    pub fn sql_count(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.db_path())
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// The first replica's handler process (not in the embedded mode).
    pub fn handler_pid(&self) -> Option<u32> {
        self.hosts.first().and_then(RunningHost::handler_pid)
    }

    pub async fn stop(self) {
        for host in self.hosts {
            host.stop().await;
        }
    }
}
