//! Host conformance: the golden invocation payloads of tests/conformance/payloads, each derived
//! from the source of the Azure Functions host and its Service Bus and RabbitMQ extensions
//! (repository, path and commit in tests/conformance/README.md):
//!
//! - the emulator's payload model builds exactly each golden payload from the same message;
//! - each golden payload, posted to the real `handler` process, has its documented effect: one
//!   order row and an `OrderProcessed` of the exact shape, or the owner's notification;
//! - a value in an encoding the host never sends gets a 400 naming the encoding.
//!
//! Followed, file by file (the README beside the payloads maps each behaviour to its line):
//! - Azure/azure-functions-host @ 89dc438d476542786f2fc4070f553423213a6223:
//!   src/WebJobs.Script/Workers/MessageExtensions/ScriptInvocationContextExtensions.cs,
//!   src/WebJobs.Script/Utility.cs (ApplyBindingData),
//!   src/WebJobs.Script/Workers/Http/HttpScriptInvocationResultExtensions.cs,
//!   src/WebJobs.Script/Binding/FunctionBinding.cs;
//! - Azure/azure-webjobs-sdk @ f79ea0bff76c31048388fde784a9164b5d880c8a:
//!   src/Microsoft.Azure.WebJobs.Host/Bindings/SystemBindingData.cs;
//! - azure-sdk-for-net, sdk/servicebus/Microsoft.Azure.WebJobs.Extensions.ServiceBus:
//!   src/Triggers/ServiceBusTriggerBindingStrategy.cs (v5, read at weikanglim fork
//!   a4a271789918cc7e85d2e977589c702ae3ad0956), src/Triggers/MessageToStringConverter.cs
//!   @ 630b882a3431da104a5d565bdc0658dad83e6ce3, src/Bindings/StringToMessageConverter.cs
//!   @ 343799ace6be464281c27a2657a8b477fe857d59;
//! - Azure/azure-functions-rabbitmq-extension @ ec0bb66288027b8b095664cabdbd7d6a1ab16ffa:
//!   extension/WebJobs.Extensions.RabbitMQ/Trigger/RabbitMQTriggerBinding.cs.

use functions_host::extensions::{Extension, FROM_INTAKE, FROM_OUTPUT_BINDING, TriggerBinding};
use functions_host::invocation::{DataType, HostValue, Sys, output_messages};
use orders_adapters::redis::RedisFanout;
use orders_core::events::{IntegrationEvent, OrderProcessed};
use orders_core::ports::{Delivery, FanoutEvent, FanoutSubscription};
use orders_e2e::{HandlerProcess, golden};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The golden files: name, function, trigger binding, extension, dataType, sessions.
const GOLDEN: [(&str, &str, &str, Extension, DataType, bool); 5] = [
    (
        "servicebus-string-session.OrderProcess.json",
        "OrderProcess",
        "order",
        Extension::ServiceBus,
        DataType::String,
        true,
    ),
    (
        "servicebus-binary-session.OrderProcess.json",
        "OrderProcess",
        "order",
        Extension::ServiceBus,
        DataType::Binary,
        true,
    ),
    (
        "servicebus-string.OrderNotify.json",
        "OrderNotify",
        "processed",
        Extension::ServiceBus,
        DataType::String,
        false,
    ),
    (
        "servicebus-binary.OrderNotify.json",
        "OrderNotify",
        "processed",
        Extension::ServiceBus,
        DataType::Binary,
        false,
    ),
    (
        "rabbitmq-string.OrderProcess.json",
        "OrderProcess",
        "order",
        Extension::RabbitMq,
        DataType::String,
        false,
    ),
];

/// A metadata value as the handler would read it (the host serializes scalars a second time).
fn meta(payload: &Value, name: &str) -> Option<String> {
    let raw = payload["Metadata"].get(name)?.as_str()?;
    Some(serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned()))
}

fn time(raw: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
}

/// The message body inside a golden payload: a JSON string literal, or base64 for binary.
fn body_of(payload: &Value, binding: &str, data_type: DataType) -> String {
    let value = payload["Data"][binding].as_str().unwrap();
    match data_type {
        DataType::String => serde_json::from_str::<String>(value).unwrap(),
        DataType::Binary => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        }
    }
}

fn body_text(base64: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

/// The message a golden payload was made from, as our transports would hand it to the emulator.
fn delivery(payload: &Value, binding: &TriggerBinding) -> (Delivery, i64) {
    let body = body_of(payload, &binding.name, binding.data_type);
    let metadata = &payload["Metadata"];
    let (properties, message_id, sequence, session_id, count, enqueued, lock) =
        match binding.extension {
            Extension::ServiceBus => (
                metadata["ApplicationProperties"].clone(),
                meta(payload, "MessageId").unwrap(),
                meta(payload, "SequenceNumber").unwrap().parse().unwrap(),
                meta(payload, "SessionId"),
                meta(payload, "DeliveryCount").unwrap().parse().unwrap(),
                time(&format!("{}Z", meta(payload, "EnqueuedTimeUtc").unwrap())),
                meta(payload, "LockToken").unwrap(),
            ),
            Extension::RabbitMq => (
                // String headers reach the host as byte[], which Newtonsoft writes as base64.
                Value::Object(
                    metadata["BasicProperties"]["Headers"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(body_text(v.as_str().unwrap()))))
                        .collect(),
                ),
                metadata["BasicProperties"]["MessageId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                meta(payload, "DeliveryTag").unwrap().parse().unwrap(),
                None,
                1,
                chrono::Utc::now(),
                String::new(),
            ),
        };
    let properties: BTreeMap<String, String> = properties
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let delivery = Delivery {
        queue: meta(payload, "RoutingKey").unwrap_or_else(|| binding.queue.clone()),
        message_id,
        session_id,
        body,
        properties,
        delivery_count: count,
        enqueued_at: enqueued,
        lock_token: lock,
    };
    (delivery, sequence)
}

#[test]
fn the_emulator_sends_exactly_the_golden_payloads() {
    for (name, function, binding, extension, data_type, sessions) in GOLDEN {
        let expected = golden(name);
        let binding = TriggerBinding {
            extension,
            name: binding.into(),
            queue: "order.accepted".into(),
            sessions,
            data_type,
            // order.processed is written by OrderProcess's string output binding.
            content_type: if function == "OrderNotify" {
                FROM_OUTPUT_BINDING
            } else {
                FROM_INTAKE
            },
        };
        let (delivery, sequence) = delivery(&expected, &binding);
        let sys = &expected["Metadata"]["sys"];
        let sys = Sys {
            utc_now: time(sys["UtcNow"].as_str().unwrap()),
            rand_guid: sys["RandGuid"].as_str().unwrap().parse().unwrap(),
        };
        let mut invocation = binding.invocation(function, &delivery, sequence);
        if extension == Extension::ServiceBus {
            // The session lock's expiry is the one value the service, not the message, sets.
            let locked = expected["Metadata"]["SessionActions"]["SessionLockedUntil"].as_str();
            for (key, value) in &mut invocation.binding_data {
                if let (Some(locked), "MessageSession" | "SessionActions") = (locked, key.as_str())
                {
                    *value = Some(HostValue::Object(
                        json!({ "SessionLockedUntil": locked })
                            .as_object()
                            .cloned()
                            .unwrap(),
                    ));
                }
            }
        }
        assert_eq!(invocation.payload(&sys), expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_payload_has_its_documented_effect_on_the_real_handler() {
    let redis =
        std::env::var("REDIS_URL").expect("REDIS_URL: start one with tests/servers/redis.sh");
    let prefix = format!("conformance-{}:", uuid::Uuid::new_v4().simple());
    let mut notifications = RedisFanout::subscribe(&redis, &prefix).await.unwrap();
    let (handler, _) = HandlerProcess::start(&[
        ("REDIS_URL", redis.as_str()),
        ("FANOUT_CHANNEL_PREFIX", prefix.as_str()),
    ])
    .await;
    handler.wait_ready().await;

    for (name, function, binding, _, data_type, _) in GOLDEN {
        let payload = golden(name);
        let res = handler.post(&format!("/{function}"), &payload).await;
        assert_eq!(res.status(), 200, "{name}: {}", res.text().await.unwrap());
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let answer: Value = res.json().await.unwrap();
        let body = body_of(&payload, binding, data_type);
        let cid = serde_json::from_str::<Value>(&body).unwrap()["correlationId"]
            .as_str()
            .unwrap()
            .to_owned();
        if function == "OrderProcess" {
            // One order row, and OrderProcessed exactly as the next hop reads it once the host
            // has applied its output rules to the answer.
            let rows = handler.sqlite_count(&format!(
                "SELECT COUNT(*) FROM orders WHERE correlation_id = '{cid}'"
            ));
            assert_eq!(rows, 1, "{name}");
            let bodies = output_messages(&answer["Outputs"]["processed"], DataType::String);
            assert_eq!(bodies.len(), 1, "{name}");
            let event: Value = serde_json::from_slice(&bodies[0]).unwrap();
            let keys: Vec<&str> = event
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["correlationId", "orderId", "traceparent", "type", "version"],
                "{name}"
            );
            assert_eq!(
                (event["type"].as_str(), event["version"].as_u64()),
                (Some("OrderProcessed"), Some(1))
            );
            assert_eq!(event["correlationId"], cid.as_str());
            assert!(
                event["traceparent"]
                    .as_str()
                    .unwrap()
                    .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            );
            OrderProcessed::from_json(&bodies[0]).unwrap();
            // Re-serialized indented by the host, as the OrderNotify goldens carry it.
            assert_eq!(
                bodies[0],
                serde_json::to_vec_pretty(&event).unwrap(),
                "{name}"
            );
        } else {
            // The host's output format: indented (Newtonsoft keeps the keys' order, which
            // the emulator's serde_json map sorts).
            assert!(body.starts_with("{\n  \""), "{name}: {body}");
            // OrderProcess pushed PROCESSING earlier; OrderNotify pushes COMPLETED.
            let completed = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let Some(FanoutEvent::Message(pushed)) = notifications.next().await else {
                        panic!("{name}: the subscription ended or missed messages");
                    };
                    assert_eq!(pushed.user_id.as_str(), "alice", "{name}");
                    if pushed.notification.correlation_id.to_string() == cid
                        && pushed.notification.status.as_str() == "COMPLETED"
                    {
                        return pushed.notification;
                    }
                }
            })
            .await
            .expect("the COMPLETED notification");
            let event: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                completed.order_id.map(|id| id.get()),
                event["orderId"].as_i64(),
                "{name}"
            );
        }
        assert!(
            answer["Logs"].is_array() && answer["ReturnValue"].is_null(),
            "{name}"
        );
    }
    // The notify goldens name the order ids the process goldens were given, in order.
    assert_eq!(handler.sqlite_count("SELECT MAX(id) FROM orders"), 3);

    for (value, named) in [
        (json!(42), "number"),
        (json!(true), "boolean"),
        (json!("not base64!"), "neither a JSON string literal"),
        (json!("\"unterminated"), "not one"),
    ] {
        let payload = json!({ "Data": { "order": value }, "Metadata": {} });
        let res = handler.post("/OrderProcess", &payload).await;
        assert_eq!(res.status(), 400, "{value}");
        let problem: Value = res.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("encoding") && detail.contains(named),
            "{value}: {detail}"
        );
    }
}
