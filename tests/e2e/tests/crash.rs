//! kill -9 during an unpaced flood: every order a host answered 202 for is persisted exactly
//! once, after the killed host is started again on the same data. The real `functions-host`
//! binary, so that the kill takes the whole process: the embedded SQLite queue and store in the
//! embedded mode; a replica and its handler child in the servers mode (the other replica
//! carries on and takes the shards over).
//!
//! Needs the binaries built: `cargo build --workspace --bins` (scripts/test does).

use orders_e2e::{SIGNING_KEY, dev_token, repo_root, workspace_binary};
use orders_test_support::{free_port, server_url};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const USERS: usize = 20;
const CONNECTIONS: usize = 32;
/// How long the flood runs before the kill.
const FLOOD: Duration = Duration::from_millis(2500);

/// A `functions-host` process on `port`.
async fn start_host(port: u16, data: &Path, env: &[(String, String)]) -> Child {
    let mut command = Command::new(workspace_binary("functions-host", "functions-host", None));
    command
        .env("PORT", port.to_string())
        .env("APP_ROOT", repo_root())
        .env("DATA_DIR", data)
        .env("AUTH_MODE", "dev")
        .env("JWT_SIGNING_KEY", SIGNING_KEY)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("functions-host runs");
    let live = format!("http://127.0.0.1:{port}/api/health/live");
    let started = Instant::now();
    while reqwest::get(&live).await.is_err() {
        assert!(child.try_wait().unwrap().is_none(), "functions-host exited");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not live in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// Posts orders from `CONNECTIONS` tasks until `stop`; the correlation ids answered 202.
fn flood(
    bases: Vec<String>,
    tokens: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Arc<Mutex<Vec<String>>> {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    for task in 0..CONNECTIONS {
        let (client, bases, tokens) = (client.clone(), bases.clone(), tokens.clone());
        let (stop, accepted) = (Arc::clone(&stop), Arc::clone(&accepted));
        tokio::spawn(async move {
            let mut n = task;
            while !stop.load(Ordering::Relaxed) {
                n += CONNECTIONS;
                let body =
                    serde_json::json!({ "items": [{ "productId": "AZ-900", "quantity": 1 }] });
                let sent = client
                    .post(format!("{}/api/orders", bases[n % bases.len()]))
                    .bearer_auth(&tokens[n % tokens.len()])
                    .json(&body)
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                // A refused or cut request was not accepted (it may still be persisted, once).
                let Ok(res) = sent else { continue };
                if res.status() == 202 {
                    let answer: serde_json::Value = res.json().await.unwrap();
                    let cid = answer["correlationId"].as_str().unwrap().to_owned();
                    accepted.lock().unwrap().push(cid);
                }
            }
        });
    }
    accepted
}

/// (orders, distinct correlation ids, how many of `cids` are persisted).
fn persisted(db: &Path, cids: &[String]) -> (i64, i64, usize) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the store");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let (rows, distinct) = (
        count("SELECT COUNT(*) FROM orders"),
        count("SELECT COUNT(DISTINCT correlation_id) FROM orders"),
    );
    let mut stmt = conn
        .prepare("SELECT 1 FROM orders WHERE correlation_id = ?1")
        .unwrap();
    let found = cids
        .iter()
        .filter(|cid| stmt.exists([cid]).unwrap())
        .count();
    (rows, distinct, found)
}

/// Floods `ports` (the hosts), kills `hosts[0]` with SIGKILL, starts it again, and checks
/// that every accepted order is persisted exactly once.
async fn kill_during_a_flood(env: Vec<(String, String)>, replicas: usize) {
    let data = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
    let mut hosts = Vec::new();
    for &port in &ports {
        hosts.push(start_host(port, data.path(), &env).await);
    }
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for user in 0..USERS {
        tokens.push(
            dev_token(
                &client,
                &bases[user % bases.len()],
                &format!("flood-{user}"),
            )
            .await,
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = flood(bases, tokens, Arc::clone(&stop));
    tokio::time::sleep(FLOOD).await;
    hosts[0].start_kill().unwrap();
    hosts[0].wait().await.unwrap();
    let at_kill = accepted.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    hosts[0] = start_host(ports[0], data.path(), &env).await;

    let cids = accepted.lock().unwrap().clone();
    println!(
        "{} orders accepted ({at_kill} when the host was killed)",
        cids.len()
    );
    assert!(
        at_kill > 50,
        "too few orders before the kill to mean anything: {at_kill}"
    );
    let db = data.path().join("orders.db");
    let deadline = Instant::now() + Duration::from_secs(180);
    let (rows, distinct, found) = loop {
        let (rows, distinct, found) = persisted(&db, &cids);
        if found == cids.len() || Instant::now() > deadline {
            break (rows, distinct, found);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(found, cids.len(), "accepted orders lost");
    assert_eq!(rows, distinct, "an order persisted twice");
    println!(
        "{rows} orders persisted ({} accepted, the rest cut off mid-request)",
        cids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_host_killed_during_a_flood_keeps_every_accepted_order_once() {
    kill_during_a_flood(vec![("HOST_MODE".into(), "embedded".into())], 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_replica_killed_during_a_flood_keeps_every_accepted_order_once() {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let env = vec![
        ("HOST_MODE".into(), "process".into()),
        ("QUEUE_TRANSPORT".into(), "rabbitmq".into()),
        (
            "RABBITMQ_URL".into(),
            server_url("RABBITMQ_URL", "rabbitmq.sh"),
        ),
        ("REDIS_URL".into(), server_url("REDIS_URL", "redis.sh")),
        ("QUEUE_NAMESPACE".into(), format!("crash-{unique}")),
        ("FANOUT_CHANNEL_PREFIX".into(), format!("crash-{unique}:")),
    ];
    kill_during_a_flood(env, 2).await;
}
