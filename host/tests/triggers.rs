//! The emulator's trigger semantics against the real embedded queue (SQLite), each as the real
//! extension behaves (sources in tests/conformance/README.md): Service Bus abandons a failure
//! for immediate redelivery and dead-letters with `MaxDeliveryCountExceeded`; RabbitMQ
//! republishes to the tail and rejects the fifth failure; session slots are held
//! `sessionIdleTimeout`; locks are renewed while an invocation runs; a timeout restarts the
//! handler process.
//!
//! Followed:
//! - Service Bus abandon on failure: azure-sdk-for-net src/Primitives/MessageProcessor.cs
//!   @ 7f27bed6e2a9bac8ea70541cffeee39f5f3bc0c3 and Azure.Messaging.ServiceBus
//!   src/Processor/ReceiverManager.cs @ f85eb6b201db24449658639932cfd9f6bd4e1d1c; dead-lettering
//!   with MaxDeliveryCountExceeded: MicrosoftDocs/azure-docs
//!   articles/service-bus-messaging/service-bus-dead-letter-queues.md @ e2a866a7602194564f176a353eb46fae720bab1e;
//! - sessions and lock renewal: ServiceBusSessionProcessorOptions.cs @ f85eb6b2…,
//!   SessionReceiverManager.cs @ db8ede176d821a1ee8e8c06cdfc86a7546354758, the extension's
//!   src/Config/ServiceBusOptions.cs @ 71d30b9f95fb55246c7d81cb95c3bf38d57cde49;
//! - RabbitMQ retries: Azure/azure-functions-rabbitmq-extension @ ec0bb66288027b8b095664cabdbd7d6a1ab16ffa,
//!   extension/WebJobs.Extensions.RabbitMQ/Trigger/RabbitMQListener.cs;
//! - timeouts, restarts, invocation headers: Azure/azure-functions-host
//!   @ 89dc438d476542786f2fc4070f553423213a6223, src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs,
//!   src/WebJobs.Script/Workers/Http/HttpFunctionInvocationDispatcher.cs and DefaultHttpWorkerService.cs.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use functions_host::child::{Restarts, Worker};
use functions_host::extensions::{Extension, FROM_INTAKE, TriggerBinding};
use functions_host::handler::Handler;
use functions_host::invocation::DataType;
use functions_host::sessions::SessionSlots;
use functions_host::trigger::{LockRenewal, QueueTrigger};
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_core::ports::{OutboundMessage, QueueTransport};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const QUEUE: &str = "work";

/// What the function saw: each invocation's message body, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A function that records each body, takes `first_takes` on its first invocation, and fails
/// the bodies `fails` names.
fn function(seen: &Seen, first_takes: Duration, fails: fn(&str) -> bool) -> Handler {
    let seen = Arc::clone(seen);
    let route = post(move |axum::Json(payload): axum::Json<Value>| {
        let seen = Arc::clone(&seen);
        async move {
            let literal = payload["Data"]["msg"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let body: String = serde_json::from_str(&literal).unwrap_or(literal);
            let first = {
                let mut seen = seen.lock().unwrap();
                seen.push(body.clone());
                seen.len() == 1
            };
            if first {
                tokio::time::sleep(first_takes).await;
            }
            if fails(&body) {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            Ok(axum::Json(
                json!({ "Outputs": {}, "Logs": [], "ReturnValue": null }),
            ))
        }
    });
    Handler::InProcess(Router::new().route("/Work", route))
}

struct Queue {
    _dir: tempfile::TempDir,
    sqlite: SqliteQueue,
    transport: Arc<dyn QueueTransport>,
}

impl Queue {
    async fn new(lock: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("q.db"), Vec::new())
            .await
            .unwrap();
        let sqlite = SqliteQueue::with_lock(store, lock);
        Queue {
            _dir: dir,
            transport: Arc::new(sqlite.clone()),
            sqlite,
        }
    }

    async fn has_dead_letter(&self) -> bool {
        !self
            .transport
            .dead_letters(QUEUE, 1)
            .await
            .unwrap()
            .is_empty()
    }
}

fn trigger(
    transport: &Arc<dyn QueueTransport>,
    handler: Handler,
    extension: Extension,
) -> QueueTrigger {
    QueueTrigger {
        function: "Work".into(),
        binding: TriggerBinding {
            extension,
            name: "msg".into(),
            queue: QUEUE.into(),
            sessions: false,
            data_type: DataType::String,
            content_type: FROM_INTAKE,
        },
        outputs: Vec::new(),
        transport: Arc::clone(transport),
        handler,
        max_delivery_count: 10,
        timeout: Duration::from_secs(30),
        sessions: None,
        sequence: Default::default(),
        lock_renewal: LockRenewal {
            every: Duration::from_millis(250),
            up_to: Duration::from_secs(300),
        },
    }
}

async fn publish(transport: &Arc<dyn QueueTransport>, id: &str, session: Option<&str>) {
    let message = OutboundMessage {
        message_id: id.into(),
        session_id: session.map(str::to_owned),
        body: id.into(),
        properties: Default::default(),
    };
    transport.publish(QUEUE, message).await.unwrap();
}

/// Runs `workers` receive loops until `done` holds or 20 s pass; returns how long it took.
async fn run_until(
    trigger: QueueTrigger,
    workers: usize,
    done: impl AsyncFn() -> bool,
) -> Duration {
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let tasks = trigger.spawn(workers, stopped);
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not done within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    took
}

#[tokio::test]
async fn service_bus_redelivers_a_failure_at_once_and_dead_letters_after_max_delivery_count() {
    let q = Queue::new(Duration::from_secs(30)).await;
    let transport = &q.transport;
    let seen = Seen::default();
    publish(transport, "poison", None).await;
    let handler = function(&seen, Duration::ZERO, |_| true);
    let took = run_until(
        trigger(transport, handler, Extension::ServiceBus),
        1,
        async || q.has_dead_letter().await,
    )
    .await;
    assert_eq!(seen.lock().unwrap().len(), 10);
    // No backoff between deliveries: ten of them well within a second on this queue.
    assert!(took < Duration::from_secs(3), "{took:?}");
    let dead = transport.dead_letters(QUEUE, 10).await.unwrap();
    assert_eq!(
        (dead[0].delivery_count, dead[0].reason.as_str()),
        (10, "MaxDeliveryCountExceeded")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_republishes_a_failure_to_the_tail_and_rejects_its_fifth() {
    let q = Queue::new(Duration::from_secs(30)).await;
    let transport = &q.transport;
    let seen = Seen::default();
    // One user's two messages: the first always fails.
    publish(transport, "first", Some("alice")).await;
    publish(transport, "second", Some("alice")).await;
    let handler = function(&seen, Duration::ZERO, |body| body == "first");
    run_until(
        trigger(transport, handler, Extension::RabbitMq),
        1,
        async || q.has_dead_letter().await,
    )
    .await;
    let seen = seen.lock().unwrap().clone();
    // The failed copy went behind the second message: a failure reorders a user's messages.
    assert_eq!(
        seen,
        ["first", "second", "first", "first", "first", "first"]
    );
    let dead = transport.dead_letters(QUEUE, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "rejected");
    assert_eq!(dead[0].properties["x-ms-rabbitmq-requeuecount"], "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_per_session_completes_at_slots_per_idle_timeout() {
    let q = Queue::new(Duration::from_secs(30)).await;
    let transport = &q.transport;
    let seen = Seen::default();
    for user in 0..6 {
        let user = format!("user-{user}");
        publish(transport, &user, Some(&user)).await;
    }
    let handler = function(&seen, Duration::ZERO, |_| false);
    let mut trigger = trigger(transport, handler, Extension::ServiceBus);
    let idle = Duration::from_millis(500);
    trigger.sessions = Some(SessionSlots::new(2, idle));
    let took = run_until(trigger, 2, async || {
        q.sqlite.depth(QUEUE).await.unwrap() == 0
    })
    .await;
    assert_eq!(seen.lock().unwrap().len(), 6);
    // Three waves of two: the second and the third each wait for two sessions to idle out.
    println!(
        "6 one-message sessions through 2 slots idling {idle:?}: {took:?}, {:.1} messages/s (bound 2 / 0.5 s = 4/s)",
        6.0 / took.as_secs_f64()
    );
    assert!(took >= idle * 2, "{took:?}");
    assert!(took < idle * 2 + Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_invocation_keeps_its_lock_and_is_delivered_once() {
    for (renewal, deliveries) in [(Duration::from_secs(300), 1), (Duration::ZERO, 2)] {
        let q = Queue::new(Duration::from_millis(1500)).await;
        let seen = Seen::default();
        publish(&q.transport, "slow", None).await;
        let handler = function(&seen, Duration::from_secs(3), |_| false);
        let mut trigger = trigger(&q.transport, handler, Extension::ServiceBus);
        trigger.lock_renewal.up_to = renewal;
        run_until(trigger, 2, async || {
            q.sqlite.depth(QUEUE).await.unwrap() == 0
        })
        .await;
        // Without renewal, the lock lapses mid-invocation and a second worker gets it too.
        assert_eq!(
            seen.lock().unwrap().len(),
            deliveries,
            "renewal up to {renewal:?}"
        );
    }
}

/// A handler process the test plays the supervisor of: its start, and the restarts asked.
fn supervised(
    port: u16,
    ready: bool,
) -> (Handler, watch::Sender<Worker>, mpsc::UnboundedReceiver<u64>) {
    let (state, worker) = watch::channel(Worker {
        generation: 7,
        ready,
    });
    let (restarts, asked) = Restarts::new();
    (Handler::remote(port, worker, restarts), state, asked)
}

#[tokio::test]
async fn a_function_timeout_restarts_that_start_of_the_handler() {
    // A handler process that never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hang = post(std::future::pending::<&'static str>);
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/Work", hang)).await });
    let (handler, _state, mut asked) = supervised(port, true);
    let q = Queue::new(Duration::from_secs(30)).await;
    publish(&q.transport, "stuck", None).await;
    let mut trigger = trigger(&q.transport, handler, Extension::ServiceBus);
    trigger.timeout = Duration::from_millis(200);
    let (stop, stopped) = watch::channel(false);
    let tasks = trigger.spawn(1, stopped);
    let generation = tokio::time::timeout(Duration::from_secs(5), asked.recv())
        .await
        .expect("the timed-out invocation restarts the handler");
    // The start that timed out, so a late request never kills its successor.
    assert_eq!(generation, Some(7));
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn an_invocation_waits_for_a_restarting_handler_instead_of_failing() {
    // Service Bus would redeliver a failure at once: ten quick failures while the process
    // restarts would dead-letter the message. The host holds invocations until it is up.
    let port = functions_host::child::free_port().unwrap();
    let (handler, state, _asked) = supervised(port, false);
    let call = tokio::spawn(async move {
        handler
            .invoke(
                "Work",
                &json!({ "Data": {}, "Metadata": {} }),
                Duration::from_secs(5),
            )
            .await
    });
    // The new process binds 300 ms later: until then the port refuses connections.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let ok = post(|| async { axum::Json(json!({ "Outputs": {}, "Logs": [], "ReturnValue": 1 })) });
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/Work", ok)).await });
    state.send_replace(Worker {
        generation: 8,
        ready: true,
    });
    let answer = call
        .await
        .unwrap()
        .expect("the invocation waited for the handler");
    assert_eq!(answer["ReturnValue"], 1);
}

#[tokio::test]
async fn invocations_carry_the_hosts_headers() {
    let echo = post(|headers: axum::http::HeaderMap| async move {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        axum::Json(json!({
            "ReturnValue": {
                "version": header("x-azure-functions-hostversion"),
                "invocation": header("x-azure-functions-invocationid"),
                "agent": header("user-agent"),
                "type": header("content-type"),
            }
        }))
    });
    let handler = Handler::InProcess(Router::new().route("/Work", echo));
    let answer = handler
        .invoke(
            "Work",
            &json!({ "Data": {}, "Metadata": {} }),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let seen = &answer["ReturnValue"];
    assert_eq!(seen["version"], "4.1043.100");
    assert_eq!(seen["agent"], "Azure-Functions-Host/4.1043.100");
    assert_eq!(seen["type"], "application/json; charset=utf-8");
    assert!(
        seen["invocation"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
}
