//! The `deadletters` tool, run as a process against both queue transports: a message is
//! dead-lettered through a broker handle of the test's own, then listed, shown and replayed
//! by the tool, and received again from the queue.

use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_core::ports::{OutboundMessage, QueueTransport, Settlement};
use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

const QUEUE: &str = "order.accepted";
const REASON: &str = "poison: test";
const WAIT: Duration = Duration::from_secs(10);

/// Runs the tool with exactly `env` (nothing inherited).
fn deadletters(env: &HashMap<String, String>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deadletters"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run deadletters")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn base_env(dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("DATA_DIR".into(), dir.display().to_string()),
        ("JWT_SIGNING_KEY".into(), "k".repeat(40)),
    ])
}

/// Publishes a message, receives it and dead-letters it; returns its id.
async fn dead_letter_one(broker: &dyn QueueTransport) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let message = OutboundMessage {
        message_id: id.clone(),
        session_id: Some("alice".into()),
        body: format!(
            r#"{{"correlationId":"{id}","items":[{{"productId":"AZ-104","quantity":1}}]}}"#
        ),
        properties: BTreeMap::from([("correlationId".to_owned(), id.clone())]),
    };
    broker.publish(QUEUE, message).await.expect("publish");
    let delivery = receive(broker).await;
    assert_eq!(delivery.message_id, id);
    broker
        .settle(
            &delivery,
            Settlement::DeadLetter {
                reason: REASON.into(),
                description: String::new(),
            },
        )
        .await
        .expect("dead-letter");
    id
}

async fn receive(broker: &dyn QueueTransport) -> orders_core::ports::Delivery {
    broker
        .receive(QUEUE, 1, WAIT)
        .await
        .expect("receive")
        .pop()
        .expect("a message within the wait")
}

/// The whole tool against `broker`, which the tool reaches through `env`.
async fn list_show_replay(env: &HashMap<String, String>, broker: Arc<dyn QueueTransport>) {
    let id = dead_letter_one(&*broker).await;

    let out = deadletters(env, &["list", QUEUE]);
    assert_exit(&out, 0);
    let listed = stdout(&out);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains(REASON), "{listed}");
    assert!(listed.contains("session=alice"), "{listed}");

    let out = deadletters(env, &["list", QUEUE, "--json"]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json[0]["messageId"], id.as_str());
    assert_eq!(json[0]["reason"], REASON);
    assert_eq!(json[0]["sessionId"], "alice");
    assert_eq!(json[0]["properties"]["correlationId"], id.as_str());
    let body: serde_json::Value =
        serde_json::from_str(json[0]["body"].as_str().expect("body string")).expect("JSON body");
    assert_eq!(body["correlationId"], id.as_str());

    let out = deadletters(env, &["show", QUEUE, &id]);
    assert_exit(&out, 0);
    let shown = stdout(&out);
    assert!(shown.contains(&id), "{shown}");
    assert!(shown.contains(REASON), "{shown}");
    assert!(
        shown.contains(r#""productId": "AZ-104""#),
        "body pretty-printed: {shown}"
    );
    assert!(
        shown.contains(&format!("correlationId: {id}")),
        "properties: {shown}"
    );

    let out = deadletters(env, &["show", QUEUE, "nope"]);
    assert_exit(&out, 1);
    let out = deadletters(env, &["replay", QUEUE, "nope"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no dead letter nope"),
        "{}",
        stderr(&out)
    );

    let out = deadletters(env, &["replay", QUEUE, &id]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let out = deadletters(env, &["list", QUEUE]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "nothing dead-lettered after the replay");

    let again = receive(&*broker).await;
    assert_eq!(again.message_id, id);
    assert_eq!(again.session_id.as_deref(), Some("alice"));
    assert_eq!(again.delivery_count, 1, "a replay starts the count afresh");
    assert_eq!(again.properties.get("correlationId"), Some(&id));

    // Dead again, then replayed with --all.
    broker
        .settle(
            &again,
            Settlement::DeadLetter {
                reason: REASON.into(),
                description: String::new(),
            },
        )
        .await
        .expect("dead-letter again");
    let out = deadletters(env, &["replay", QUEUE, "--all"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let last = receive(&*broker).await;
    assert_eq!(
        (last.message_id.as_str(), last.delivery_count),
        (id.as_str(), 1)
    );
    broker
        .settle(&last, Settlement::Complete)
        .await
        .expect("complete");

    // Nothing left: --all has nothing to do, which is not an error.
    let out = deadletters(env, &["replay", QUEUE, "--all"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("orders.db"),
        orders_adapters::seed::products(),
    )
    .await
    .expect("open SQLite");
    let broker: Arc<dyn QueueTransport> = Arc::new(SqliteQueue::new(store));
    list_show_replay(&base_env(dir.path()), broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq() {
    let url = orders_test_support::server_url("RABBITMQ_URL", "rabbitmq.sh");
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(dir.path());
    env.insert("QUEUE_TRANSPORT".into(), "rabbitmq".into());
    env.insert("RABBITMQ_URL".into(), url);
    env.insert(
        "QUEUE_NAMESPACE".into(),
        format!("deadletters-{}", uuid::Uuid::new_v4().simple()),
    );
    let settings =
        orders_functions::Settings::from_lookup(&|name| env.get(name).cloned()).expect("settings");
    let broker = orders_functions::app::open_broker(&settings)
        .await
        .expect("RabbitMQ");
    list_show_replay(&env, broker).await;
}

#[test]
fn usage_errors_and_unreachable_brokers_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(dir.path());

    let out = deadletters(&env, &["replay", QUEUE]);
    assert_exit(&out, 2);
    let out = deadletters(&env, &["replay", QUEUE, "some-id", "--all"]);
    assert_exit(&out, 2);
    let out = deadletters(&env, &["frobnicate"]);
    assert_exit(&out, 2);

    // No orders.db under DATA_DIR: not silently an empty queue.
    let out = deadletters(&env, &["list", QUEUE]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("orders.db"), "{}", stderr(&out));

    env.insert("QUEUE_TRANSPORT".into(), "rabbitmq".into());
    env.insert(
        "RABBITMQ_URL".into(),
        "amqp://guest:secret@127.0.0.1:1/%2f".into(),
    );
    let out = deadletters(&env, &["list", QUEUE]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("cannot open RabbitMQ at amqp://127.0.0.1:1:"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the password stays out of messages: {err}"
    );

    env.remove("RABBITMQ_URL");
    let out = deadletters(&env, &["list", QUEUE]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("RABBITMQ_URL"), "{}", stderr(&out));
}
