//! No credential reaches any binary's output. Each binary (the handler, the functions-host with
//! its handler child, the signalr-hub, the deadletters tool) runs at debug level with
//! credential-bearing settings, serves requests or fails them while reaching for a dependency,
//! and its whole output is searched for every credential and bearer token it was given. Where a
//! binary logs its settings at start-up, the summary must be there, redacted.
//!
//! Needs the binaries built (`cargo build --workspace --bins`), redis-server, and `RABBITMQ_URL`
//! with a password of its own (tests/servers/rabbitmq.sh creates one).

use orders_e2e::{
    LoggedProcess, closed_port, dev_token, place_order, repo_root, server_url, workspace_binary,
};
use orders_test_support::RedisServer;
use serde_json::Value;
use std::time::{Duration, Instant};

const JWT_KEY: &str = "jwt-secret-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d";
const REDIS_PASSWORD: &str = "redis-secret-3c8e1f";
const SQL_PASSWORD: &str = "sql-secret-77ad02";
const SAS_KEY: &str = "sas-secret-5e61bb";
const WRONG_AMQP_PASSWORD: &str = "amqp-wrong-secret-9f02";

/// The test broker's URL, whose password is the secret to look for.
fn rabbitmq() -> (String, String) {
    let url = server_url("RABBITMQ_URL", "rabbitmq.sh");
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(_, password)| password.to_owned())
        .filter(|password| password.len() >= 8 && password != "guest")
        .expect("RABBITMQ_URL needs a password of its own (tests/servers/rabbitmq.sh)");
    (url, password)
}

fn with_password(url: &str, old: &str, new: &str) -> String {
    url.replacen(&format!(":{old}@"), &format!(":{new}@"), 1)
}

/// Asserts `log` holds none of `secrets`; `summary`: it must hold a redacted start-up summary.
fn assert_clean(what: &str, log: &str, secrets: &[&str], summary: bool) {
    assert!(!log.is_empty(), "{what} printed nothing");
    if summary {
        assert!(
            log.contains("<redacted>"),
            "{what}: no redacted settings summary:\n{log}"
        );
    }
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{what}: {secret:?} in its output:\n{log}"
        );
    }
}

/// A process of `binary` with `vars` at debug level, listening on `port`, logging into `dir`.
async fn serve(
    binary: &str,
    package: &str,
    port: u16,
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> LoggedProcess {
    let mut env = vec![("RUST_LOG", "debug"), ("HOST", "127.0.0.1")];
    env.extend_from_slice(vars);
    let log = dir.join(format!("{binary}-{port}.log"));
    let binary = workspace_binary(binary, package, None);
    let mut process = LoggedProcess::spawn(&binary, &[], &env, log);
    process.wait_listening(port).await;
    process
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    client.get(url).bearer_auth(token).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_logs_no_credential_nor_token() {
    let redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let (amqp, amqp_password) = rabbitmq();
    let data = tempfile::tempdir().unwrap();
    let sql = format!(
        "Server=tcp:127.0.0.1,{};User Id=sa;Password={SQL_PASSWORD};TrustServerCertificate=true",
        closed_port()
    );
    let service_bus = format!(
        "Endpoint=sb://127.0.0.1:{}/;SharedAccessKeyName=orders;SharedAccessKey={SAS_KEY}",
        closed_port()
    );
    let namespace = format!("secrets-{}-", uuid::Uuid::new_v4().simple());
    // RabbitMQ, Redis and an unreachable SQL Server; then Service Bus at an unreachable endpoint.
    let brokers: [&[(&str, &str)]; 2] = [
        &[
            ("QUEUE_TRANSPORT", "rabbitmq"),
            ("RABBITMQ_URL", &amqp),
            ("QUEUE_NAMESPACE", &namespace),
            ("SQL_PROVIDER", "sqlserver"),
            ("SQLSERVER_CONNECTION_STRING", &sql),
        ],
        &[
            ("QUEUE_TRANSPORT", "servicebus"),
            ("ServiceBusConnection", &service_bus),
        ],
    ];
    let redis_url = redis.url();
    for (run, broker) in brokers.into_iter().enumerate() {
        let port = closed_port();
        let port_text = port.to_string();
        let mut vars = vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port_text.as_str()),
            ("DATA_DIR", data.path().to_str().unwrap()),
            ("JWT_SIGNING_KEY", JWT_KEY),
            ("REDIS_URL", &redis_url),
        ];
        vars.extend_from_slice(broker);
        let handler = serve("handler", "orders-functions", port, data.path(), &vars).await;
        let (client, base) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
        let token = dev_token(&client, &base, "alice").await;
        wait_connected(&client, &base, "queue", &handler).await;
        let order = client
            .post(format!("{base}/api/orders"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "items": [{ "productId": "AZ-104", "quantity": 1 }] }))
            .send()
            .await
            .unwrap();
        // Accepted onto RabbitMQ; refused while Service Bus cannot be reached.
        let expected = if run == 0 { 202 } else { 503 };
        assert_eq!(order.status(), expected, "{}", handler.log());
        get(&client, &format!("{base}/api/orders"), &token).await;
        client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .unwrap();
        // Long enough for the retries of the unreachable dependencies to be logged.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let secrets = [
            JWT_KEY,
            REDIS_PASSWORD,
            &amqp_password,
            SQL_PASSWORD,
            SAS_KEY,
            &token,
        ];
        assert_clean(
            &format!("handler run {run}"),
            &handler.log(),
            &secrets,
            true,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_and_its_handler_log_no_credential_nor_token() {
    let redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let (amqp, amqp_password) = rabbitmq();
    let data = tempfile::tempdir().unwrap();
    let namespace = format!("secrets-{}-", uuid::Uuid::new_v4().simple());
    let port = closed_port();
    let (port_text, redis_url) = (port.to_string(), redis.url());
    let handler = workspace_binary("handler", "orders-functions", None);
    let root = repo_root();
    let host = serve(
        "functions-host",
        "functions-host",
        port,
        data.path(),
        &[
            ("PORT", &port_text),
            ("APP_ROOT", root.to_str().unwrap()),
            ("HOST_MODE", "process"),
            ("HANDLER_BIN", handler.to_str().unwrap()),
            ("DATA_DIR", data.path().to_str().unwrap()),
            ("JWT_SIGNING_KEY", JWT_KEY),
            ("REDIS_URL", &redis_url),
            ("QUEUE_TRANSPORT", "rabbitmq"),
            ("RABBITMQ_URL", &amqp),
            ("QUEUE_NAMESPACE", &namespace),
        ],
    )
    .await;
    let (client, base) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
    let token = wait_for_token(&client, &base, &host).await;
    let cid = place_order(&client, &base, &token, "AZ-104", 1).await;
    let started = Instant::now();
    loop {
        let order: Value = get(&client, &format!("{base}/api/orders/{cid}"), &token)
            .await
            .json()
            .await
            .unwrap_or_default();
        if order["status"] == "COMPLETED" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{order}\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secrets = [JWT_KEY, REDIS_PASSWORD, &amqp_password, &token];
    assert_clean("functions-host", &host.log(), &secrets, true);
}

/// Waits until readiness reports `role` connected (the handler connects in the background).
async fn wait_connected(client: &reqwest::Client, base: &str, role: &str, process: &LoggedProcess) {
    let started = Instant::now();
    loop {
        let health: Value = client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["dependencies"][role]["connected"] == true {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{role} never connected: {health}\n{}",
            process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The host proxies to a handler that may still be starting: a token once it answers.
async fn wait_for_token(client: &reqwest::Client, base: &str, host: &LoggedProcess) -> String {
    let started = Instant::now();
    loop {
        let res = client
            .post(format!("{base}/dev/token"))
            .json(&serde_json::json!({ "userId": "bob" }))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            let body: Value = res.json().await.unwrap();
            return body["accessToken"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_logs_no_credential_nor_token() {
    let redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let data = tempfile::tempdir().unwrap();
    // A token signed with the shared key, from a handler configured like the hub.
    let handler_port = closed_port();
    let handler_port_text = handler_port.to_string();
    let _handler = serve(
        "handler",
        "orders-functions",
        handler_port,
        data.path(),
        &[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", &handler_port_text),
            ("DATA_DIR", data.path().to_str().unwrap()),
            ("JWT_SIGNING_KEY", JWT_KEY),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let token = dev_token(
        &client,
        &format!("http://127.0.0.1:{handler_port}"),
        "carol",
    )
    .await;

    let port = closed_port();
    let (port_text, redis_url) = (port.to_string(), redis.url());
    let hub = serve(
        "signalr-hub",
        "signalr-hub",
        port,
        data.path(),
        &[
            ("HUB_PORT", &port_text),
            ("DATA_DIR", data.path().to_str().unwrap()),
            ("JWT_SIGNING_KEY", JWT_KEY),
            ("REDIS_URL", &redis_url),
        ],
    )
    .await;
    let negotiate =
        format!("http://127.0.0.1:{port}/hubs/order-status/negotiate?negotiateVersion=1");
    let accepted = client
        .post(&negotiate)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200, "{}", hub.log());
    let forged = format!("{}x", &token[..token.len() - 1]);
    let refused = client
        .post(&negotiate)
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "{}", hub.log());
    let secrets = [JWT_KEY, REDIS_PASSWORD, &token, &forged];
    assert_clean("signalr-hub", &hub.log(), &secrets, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadletters_tool_prints_no_credential() {
    let (amqp, password) = rabbitmq();
    let wrong = with_password(&amqp, &password, WRONG_AMQP_PASSWORD);
    let namespace = format!("secrets-{}-", uuid::Uuid::new_v4().simple());
    let tool = workspace_binary("deadletters", "functions-host", None);
    let dir = tempfile::tempdir().unwrap();
    for (url, exit) in [(&amqp, 0), (&wrong, 2)] {
        let log = dir.path().join(format!("deadletters-{exit}.log"));
        let mut run = LoggedProcess::spawn(
            &tool,
            &["list", "order.accepted"],
            &[
                ("RUST_LOG", "debug"),
                ("QUEUE_TRANSPORT", "rabbitmq"),
                ("RABBITMQ_URL", url),
                ("QUEUE_NAMESPACE", &namespace),
                ("JWT_SIGNING_KEY", JWT_KEY),
            ],
            log,
        );
        let status = run.exit_status().await;
        assert_eq!(status.code(), Some(exit), "{}", run.log());
        assert_clean(
            &format!("deadletters (exit {exit})"),
            &run.log(),
            &[&password, WRONG_AMQP_PASSWORD, JWT_KEY],
            false,
        );
    }
}
