//! Cold start: the real `handler` binary, started as the Functions host starts it, listens on
//! `FUNCTIONS_CUSTOMHANDLER_PORT` within a second whatever state SQL and Redis are in, serves
//! what it can meanwhile (503 + Retry-After for the rest), and picks its dependencies up when
//! they come, without a restart.
//!
//! Needs the handler built: `cargo build -p orders-functions --bin handler` (scripts/test does).

use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_e2e::{HandlerProcess as Handler, closed_port, golden};
use orders_test_support::RedisServer;
use reqwest::Response;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How soon the port must accept connections (the host allows about 30 s; a resuming Azure SQL
/// takes a minute).
const BIND_WITHIN: Duration = Duration::from_secs(1);

/// Asserts a 503 problem with a Retry-After header.
async fn assert_unavailable(res: Response, what: &str) {
    assert_eq!(res.status(), 503, "{what}");
    assert!(
        res.headers().contains_key("retry-after"),
        "{what}: no Retry-After"
    );
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
}

fn assert_dependencies(health: &Value, expected: &[(&str, bool)]) {
    for (role, connected) in expected {
        assert_eq!(
            health["dependencies"][role]["connected"], *connected,
            "{role}: {health}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_at_once_and_takes_orders_while_sql_server_and_redis_are_unreachable() {
    let sql_port = closed_port();
    let redis_port = closed_port();
    let connection_string = format!(
        "Server=tcp:127.0.0.1,{sql_port};Database=orders;User Id=sa;Password=sql-pw-7f3a;TrustServerCertificate=true"
    );
    let redis_url = format!("redis://:redis-pw-9c1e@127.0.0.1:{redis_port}");
    let (mut handler, bound) = Handler::start(&[
        ("SQL_PROVIDER", "sqlserver"),
        ("SQLSERVER_CONNECTION_STRING", &connection_string),
        ("REDIS_URL", &redis_url),
        ("QUEUE_TRANSPORT", "embedded"),
    ])
    .await;
    println!("handler listening {bound:?} after spawn (SQL Server and Redis unreachable)");
    assert!(bound < BIND_WITHIN, "bound after {bound:?}");

    // Alive, not ready, and saying what it waits for.
    assert_eq!(handler.get("/api/health/live", None).await.status(), 200);
    let (status, health) = handler.readiness().await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "unavailable");
    assert_eq!(health["checks"]["sql"], "unavailable");
    assert_dependencies(
        &health,
        &[
            ("sql", false),
            ("state", false),
            ("fanout", false),
            ("queue", true),
        ],
    );
    assert_eq!(health["dependencies"]["sql"]["backend"], "sqlserver");

    // The catalog bundled with the binary is served meanwhile.
    let products = handler.get("/api/products?size=5", None).await;
    assert_eq!(products.status(), 200);
    assert_eq!(products.json::<Value>().await.unwrap()["total"], 145);
    assert_eq!(
        handler.get("/api/products/AZ-104", None).await.status(),
        200
    );

    // Intake needs only the queue: the order is accepted and really queued.
    let token = handler.token("cold").await;
    let cid = handler.place(&token).await;
    let queue = SqliteQueue::new(
        SqliteStore::open(
            &handler.data_dir().join("orders.db"),
            orders_adapters::seed::products(),
        )
        .await
        .unwrap(),
    );
    assert_eq!(queue.depth("order.accepted").await.unwrap(), 1);

    // Reads need SQL (Redis, which could have answered first, is down too): 503 + Retry-After.
    let order = handler
        .get(&format!("/api/orders/{cid}"), Some(&token))
        .await;
    assert_unavailable(order, "GET /api/orders/{cid}").await;
    let list = handler.get("/api/orders", Some(&token)).await;
    assert_unavailable(list, "GET /api/orders").await;
    let delete = handler
        .client
        .delete(format!("{}/api/orders/1", handler.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_unavailable(delete, "DELETE /api/orders/1").await;

    // Still retrying in the background, saying which dependency and why; never exited.
    tokio::time::sleep(Duration::from_millis(500)).await;
    handler.assert_running();
    let log = handler.log();
    for dependency in ["sql", "redis", "redis fan-out"] {
        assert!(
            log.contains(&format!("{dependency}: not connected; retrying")),
            "no retry warning for {dependency}:\n{log}"
        );
    }
    assert!(log.contains("Connection refused"), "{log}");
    // No credential in any line, the start-up summary and the retry warnings included.
    for secret in ["sql-pw-7f3a", "redis-pw-9c1e"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_while_redis_is_down_and_becomes_ready_when_it_comes_back() {
    let mut redis = RedisServer::start();
    redis.stop();
    let (mut handler, bound) = Handler::start(&[
        ("SQL_PROVIDER", "sqlite"),
        ("QUEUE_TRANSPORT", "embedded"),
        ("REDIS_URL", &redis.url()),
    ])
    .await;
    println!("handler listening {bound:?} after spawn (Redis down)");
    assert!(bound < BIND_WITHIN, "bound after {bound:?}");

    assert_eq!(handler.get("/api/health/live", None).await.status(), 200);
    let (status, health) = handler.readiness().await;
    assert_eq!(status, 503, "{health}");
    assert_dependencies(
        &health,
        &[
            ("sql", true),
            ("state", false),
            ("fanout", false),
            ("queue", true),
        ],
    );
    // The SQLite file is local: its catalog is loaded at once.
    assert_eq!(health["checks"]["catalogProducts"], 145);

    // Intake degrades without workflow state but accepts.
    let token = handler.token("warm").await;
    handler.place(&token).await;

    // Redis is back: the same process becomes ready by itself.
    redis.restart();
    let back = Instant::now();
    handler.wait_ready().await;
    let (_, health) = handler.readiness().await;
    assert_eq!(health["status"], "ok");
    assert_dependencies(
        &health,
        &[
            ("sql", true),
            ("state", true),
            ("fanout", true),
            ("queue", true),
        ],
    );
    println!("ready {:?} after Redis came back", back.elapsed());

    // Calls now go through to Redis: a new order's status is tracked there and read back.
    let cid = handler.place(&token).await;
    let order = handler
        .get(&format!("/api/orders/{cid}"), Some(&token))
        .await;
    assert_eq!(order.status(), 200);
    assert_eq!(order.json::<Value>().await.unwrap()["status"], "ACCEPTED");
    handler.assert_running();
    assert!(
        handler.log().contains("redis: connected"),
        "{}",
        handler.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_during_a_cold_start_waits_for_its_dependencies() {
    // Service Bus redelivers a failed invocation at once: failing while the fan-out is still
    // connecting would spend the message's ten deliveries within a second.
    let mut redis = RedisServer::start();
    redis.stop();
    let (handler, _) = Handler::start(&[("REDIS_URL", &redis.url())]).await;
    // OrderProcess needs only SQL (its status pushes are best effort): it does not wait.
    let processed = handler
        .post(
            "/OrderProcess",
            &golden("servicebus-string-session.OrderProcess.json"),
        )
        .await;
    assert_eq!(processed.status(), 200, "{}", handler.log());
    // OrderNotify needs the fan-out: it waits for Redis rather than fail.
    let back = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&back);
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        redis.restart();
        redis
    });
    let notified = handler
        .post(
            "/OrderNotify",
            &golden("servicebus-string.OrderNotify.json"),
        )
        .await;
    assert_eq!(notified.status(), 200, "{}", handler.log());
    assert!(
        back.load(std::sync::atomic::Ordering::SeqCst),
        "answered before Redis was back"
    );
    drop(restart.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_dies_with_its_host() {
    // A stand-in host: a shell that starts the handler as the host does and prints its pid.
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let mut host = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("\"$HANDLER\" >/dev/null 2>&1 & echo $!; wait")
        .env("HANDLER", orders_e2e::handler_binary())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("DATA_DIR", dir.path())
        .env("JWT_SIGNING_KEY", orders_e2e::SIGNING_KEY)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = host.stdout.take().unwrap();
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut line)
        .await
        .unwrap();
    let handler = line.trim().to_owned();
    // Running, not a zombie waiting for whoever adopted it to reap it.
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the handler never listened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // kill -9 of the host: nothing reaches the child, which must notice by itself.
    host.start_kill().unwrap();
    host.wait().await.unwrap();
    let killed = Instant::now();
    while alive(&handler) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the handler {handler} outlived its host"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("the handler stopped {:?} after its host", killed.elapsed());
}
