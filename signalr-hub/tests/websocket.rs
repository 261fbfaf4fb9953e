//! Raw WebSocket behaviour of the hub (tokio-tungstenite as the client).

mod common;

use common::*;
use futures::SinkExt;
use orders_core::cursor::Cursor;
use orders_core::events::Notification;
use orders_core::order::{NewOrder, OrderLine};
use orders_core::ports::{NotificationFanout, OrderStore};
use orders_core::product::BillingPeriod;
use orders_core::{CorrelationId, Money, OrderStatus, ProductId, UserId};
use serde_json::json;
use signalr_hub::Limits;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn invoke(id: &str, target: &str, args: serde_json::Value) -> Message {
    Message::text(format!(
        "{}{RS}",
        json!({"type":1,"invocationId":id,"target":target,"arguments":args})
    ))
}

#[tokio::test]
async fn handshake_and_ping_completion() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.handshaken("alice").await;
    ws.send(invoke("1", "Ping", json!([]))).await.unwrap();
    assert_eq!(
        next_record(&mut ws).await.unwrap(),
        json!({"type":3,"invocationId":"1","result":"pong"})
    );
}

#[tokio::test]
async fn several_records_in_one_frame_with_fields_in_any_order() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.raw("alice").await;
    let frame = format!(
        "{{\"version\":1,\"protocol\":\"json\"}}{RS}{}{RS}{}{RS}",
        json!({"arguments":[],"target":"PING","invocationId":"a","type":1}),
        json!({"type":1,"invocationId":"b","target":"ping","arguments":[]}),
    );
    ws.send(Message::text(frame)).await.unwrap();
    assert_eq!(next_record(&mut ws).await.unwrap(), json!({}));
    assert_eq!(next_record(&mut ws).await.unwrap()["invocationId"], "a");
    assert_eq!(next_record(&mut ws).await.unwrap()["invocationId"], "b");
}

#[tokio::test]
async fn frame_without_separator_is_completed_by_the_next_frame() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.raw("alice").await;
    ws.send(Message::text("{\"protocol\":\"json\","))
        .await
        .unwrap();
    ws.send(Message::text(format!(
        "\"version\":1}}{RS}{{\"type\":1,\"invocationId\":\"7\","
    )))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await.unwrap(), format!("{{}}{RS}"));
    ws.send(Message::text(format!(
        "\"target\":\"Ping\",\"arguments\":[]}}{RS}"
    )))
    .await
    .unwrap();
    assert_eq!(next_record(&mut ws).await.unwrap()["result"], "pong");
}

#[tokio::test]
async fn unknown_protocol_gets_a_handshake_error_and_close() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.raw("alice").await;
    ws.send(Message::text(format!(
        "{{\"protocol\":\"blazorpack\",\"version\":1}}{RS}"
    )))
    .await
    .unwrap();
    let reply = next_record(&mut ws).await.unwrap();
    assert!(reply["error"].as_str().unwrap().contains("blazorpack"));
    assert!(reply.get("type").is_none(), "a handshake reply has no type");
    assert!(next_text(&mut ws).await.is_none(), "then the socket closes");
}

#[tokio::test]
async fn garbage_closes_that_connection_with_a_reason_and_others_continue() {
    let hub = spawn_hub(Limits::default()).await;
    let mut bystander = hub.handshaken("bob").await;
    let mut ws = hub.handshaken("alice").await;
    ws.send(Message::text(format!("this is not json{RS}")))
        .await
        .unwrap();
    let close = until_closed(&mut ws).await.expect("a Close message");
    assert_eq!(close["type"], 7);
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("not a JSON hub message")
    );
    assert!(close.get("allowReconnect").is_none());
    bystander
        .send(invoke("1", "Ping", json!([])))
        .await
        .unwrap();
    assert_eq!(next_record(&mut bystander).await.unwrap()["result"], "pong");
}

#[tokio::test]
async fn unknown_method_and_bad_arguments_get_completion_errors() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.handshaken("alice").await;
    ws.send(invoke("1", "Nope", json!([]))).await.unwrap();
    let reply = next_record(&mut ws).await.unwrap();
    assert_eq!(reply["error"], "Unknown hub method 'Nope'");
    ws.send(invoke("2", "GetCurrentStatus", json!([1, 2])))
        .await
        .unwrap();
    let reply = next_record(&mut ws).await.unwrap();
    assert!(reply["error"].as_str().unwrap().contains("2 argument(s)"));
    ws.send(invoke("3", "Ping", json!([]))).await.unwrap();
    assert_eq!(next_record(&mut ws).await.unwrap()["result"], "pong");
}

#[tokio::test]
async fn ten_mib_message_closes_the_connection() {
    let hub = spawn_hub(Limits::default()).await;
    let mut bystander = hub.handshaken("bob").await;
    let mut ws = hub.handshaken("alice").await;
    let huge = format!(
        "{{\"type\":1,\"target\":\"Ping\",\"arguments\":[\"{}\"]}}{RS}",
        "x".repeat(10 * 1024 * 1024)
    );
    // The server may close before it has read it all, so the send itself may fail.
    let _ = ws.send(Message::text(huge)).await;
    // Usually the Close message arrives; if the client's send was cut short by the server
    // closing, the socket is at least closed.
    if let Some(close) = until_closed(&mut ws).await {
        assert!(close["error"].as_str().unwrap().contains("maximum size"));
    }
    bystander
        .send(invoke("1", "Ping", json!([])))
        .await
        .unwrap();
    assert_eq!(next_record(&mut bystander).await.unwrap()["result"], "pong");
}

#[tokio::test]
async fn message_over_the_limit_gets_a_close_message() {
    let hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.handshaken("alice").await;
    let big = format!(
        "{{\"type\":1,\"target\":\"Ping\",\"arguments\":[\"{}\"]}}{RS}",
        "x".repeat(40 * 1024)
    );
    ws.send(Message::text(big)).await.unwrap();
    let close = next_record(&mut ws).await.expect("a Close message");
    assert_eq!(close["type"], 7);
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("maximum size of 32768")
    );
    // RFC 6455's 1009 (message too big), chosen from the error's type.
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn unknown_id_is_404_second_socket_409_missing_token_401() {
    let hub = spawn_hub(Limits::default()).await;
    let status = |r: Result<_, WsError>| match r {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => 101,
    };
    let url = hub.ws_url(&format!("id=nope&access_token={}", token("alice")));
    assert_eq!(status(tokio_tungstenite::connect_async(url).await), 404);
    assert_eq!(
        status(tokio_tungstenite::connect_async(hub.ws_url("")).await),
        401
    );
    let forged = orders_auth::DevTokenIssuer::new(
        b"another-key-another-key-another-key!!",
        "contoso-orders-dev",
        "contoso-orders-api",
        Duration::from_secs(60),
    )
    .issue(&UserId::parse("alice").unwrap())
    .access_token;
    assert_eq!(
        status(
            tokio_tungstenite::connect_async(hub.ws_url(&format!("access_token={forged}"))).await
        ),
        401
    );
    // Negotiate, then connect twice with the same token.
    let connection = hub
        .hub
        .registry
        .create(UserId::parse("alice").unwrap(), false, false)
        .unwrap();
    let url = hub.ws_url(&format!(
        "id={}&access_token={}",
        connection.token,
        token("alice")
    ));
    let (_first, _) = tokio_tungstenite::connect_async(url.clone()).await.unwrap();
    assert_eq!(status(tokio_tungstenite::connect_async(url).await), 409);
    // Another user cannot take it over.
    let url = hub.ws_url(&format!(
        "id={}&access_token={}",
        connection.token,
        token("mallory")
    ));
    assert_eq!(status(tokio_tungstenite::connect_async(url).await), 403);
}

#[tokio::test]
async fn max_connections_answers_503() {
    let hub = spawn_hub(Limits {
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let _one = hub.handshaken("alice").await;
    match tokio_tungstenite::connect_async(hub.ws_url(&format!("access_token={}", token("bob"))))
        .await
    {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_flood_of_invocations_closes_the_connection() {
    let hub = spawn_hub(Limits {
        invocations_per_sec: 5,
        invocation_burst: 10,
        ..Limits::default()
    })
    .await;
    let mut ws = hub.handshaken("alice").await;
    let flood: String = (0..50)
        .map(|i| {
            format!(
                "{}{RS}",
                json!({"type":1,"invocationId":i.to_string(),"target":"Ping","arguments":[]})
            )
        })
        .collect();
    ws.send(Message::text(flood)).await.unwrap();
    let close = until_closed(&mut ws).await.expect("a Close message");
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("Too many invocations")
    );
}

#[tokio::test]
async fn keep_alive_pings_and_client_timeout() {
    let hub = spawn_hub(Limits {
        keep_alive: Duration::from_secs(1),
        client_timeout: Duration::from_secs(3),
        ..Limits::default()
    })
    .await;
    let mut ws = hub.handshaken("alice").await;
    let started = std::time::Instant::now();
    assert_eq!(next_record(&mut ws).await.unwrap(), json!({"type":6}));
    assert!(started.elapsed() >= Duration::from_millis(800));
    // The client says nothing: after the client timeout it is closed with a reason.
    let close = until_closed(&mut ws).await.expect("a Close message");
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("Server timeout elapsed")
    );
}

#[tokio::test]
async fn notifications_reach_every_connection_of_the_user_once_and_nobody_else_and_repeats_are_dropped()
 {
    let hub = spawn_hub(Limits::default()).await;
    let mut alice1 = hub.handshaken("alice").await;
    let mut alice2 = hub.handshaken("alice").await;
    let mut bob = hub.handshaken("bob").await;
    let notification = Notification {
        correlation_id: CorrelationId::generate(),
        status: OrderStatus::Completed,
        order_id: Some(orders_core::OrderId::new(9)),
        cursor: None,
    };
    hub.fanout
        .publish(&UserId::parse("alice").unwrap(), &notification)
        .await
        .unwrap();
    let received = next_record(&mut alice1).await.unwrap();
    // The backplane numbers every notification: the client's resume point.
    let cursor = received["arguments"][0]["cursor"]
        .as_str()
        .expect("a cursor");
    cursor.parse::<Cursor>().unwrap();
    let expected = json!({"type":1,"target":"Notification","arguments":[{
        "correlationId": notification.correlation_id, "status":"COMPLETED", "orderId": 9,
        "cursor": cursor}]});
    assert_eq!(received, expected);
    assert_eq!(next_record(&mut alice2).await.unwrap(), expected);
    // The pipeline is at least once: a redelivery of the same (order, status) is not pushed
    // again, the next status is.
    let alice = UserId::parse("alice").unwrap();
    hub.fanout.publish(&alice, &notification).await.unwrap();
    let processing_again = Notification {
        status: OrderStatus::Processing,
        ..notification.clone()
    };
    hub.fanout.publish(&alice, &processing_again).await.unwrap();
    for ws in [&mut alice1, &mut alice2] {
        let next = next_record(ws).await.unwrap();
        assert_eq!(next["arguments"][0]["status"], "PROCESSING", "{next}");
    }
    bob.send(invoke("1", "Ping", json!([]))).await.unwrap();
    // Bob's next record is his own completion, not alice's notification.
    assert_eq!(next_record(&mut bob).await.unwrap()["result"], "pong");
    alice1.send(invoke("1", "Ping", json!([]))).await.unwrap();
    assert_eq!(next_record(&mut alice1).await.unwrap()["result"], "pong");
}

#[tokio::test]
async fn get_current_status_falls_back_to_sql_for_the_owner_only() {
    let hub = spawn_hub(Limits::default()).await;
    let cid = CorrelationId::generate();
    let saved = hub
        .store
        .save_order(&NewOrder {
            correlation_id: cid,
            user_id: UserId::parse("alice").unwrap(),
            lines: vec![OrderLine {
                product_id: ProductId::parse("AZ-104").unwrap(),
                product_name: "Azure Administrator".into(),
                unit_price: Money::from_cents(2699),
                quantity: 1,
                billing_period: BillingPeriod::Monthly,
            }],
            accepted_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let mut alice = hub.handshaken("alice").await;
    alice
        .send(invoke("1", "GetCurrentStatus", json!([cid.to_string()])))
        .await
        .unwrap();
    let reply = next_record(&mut alice).await.unwrap();
    assert_eq!(reply["result"]["correlationId"], cid.to_string());
    assert_eq!(reply["result"]["orderId"], saved.order_id.get());
    assert!(reply["result"]["status"].is_string());
    let mut bob = hub.handshaken("bob").await;
    bob.send(invoke("1", "GetCurrentStatus", json!([cid.to_string()])))
        .await
        .unwrap();
    assert_eq!(
        next_record(&mut bob).await.unwrap(),
        json!({"type":3,"invocationId":"1","result":null})
    );
}

#[tokio::test]
async fn a_slow_client_is_closed_without_stalling_others() {
    let hub = spawn_hub(Limits {
        send_queue: 4,
        ..Limits::default()
    })
    .await;
    // A negotiated connection whose transport never reads: its queue fills.
    let stuck = hub
        .hub
        .registry
        .create(UserId::parse("alice").unwrap(), false, false)
        .unwrap();
    stuck.set_protocol(signalr_hub::protocol::HubProtocol::Json);
    let mut other = hub.handshaken("alice").await;
    for i in 0..10 {
        hub.fanout
            .publish(
                &UserId::parse("alice").unwrap(),
                &Notification {
                    correlation_id: CorrelationId::generate(),
                    status: OrderStatus::Accepted,
                    order_id: None,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        let record = next_record(&mut other).await.unwrap();
        assert_eq!(record["target"], "Notification", "message {i}");
    }
    assert!(stuck.is_closing(), "the slow connection was closed");
    assert_eq!(hub.hub.metrics.slow_clients_closed.get(), 1);
}

#[tokio::test]
async fn graceful_shutdown_sends_close_with_allow_reconnect() {
    let mut hub = spawn_hub(Limits::default()).await;
    let mut ws = hub.handshaken("alice").await;
    let _ = hub.shutdown.take().unwrap().send(());
    let close = until_closed(&mut ws).await.expect("a Close message");
    assert_eq!(
        close,
        json!({"type":7,"error":"Server is shutting down.","allowReconnect":true})
    );
}

/// A client that reconnects with `?after=` (the cursor of the last notification it saw) is sent
/// what its user was notified of since, once and in order, and nothing of another user's; a
/// cursor that is not one is refused.
#[tokio::test]
async fn a_client_that_reconnects_after_a_cursor_is_sent_what_it_missed() {
    let hub = spawn_hub(Limits::default()).await;
    let alice = UserId::parse("alice").unwrap();
    let notify = |status: OrderStatus| Notification {
        correlation_id: CorrelationId::generate(),
        status,
        order_id: None,
        cursor: None,
    };
    let mut before = hub.handshaken("alice").await;
    hub.fanout
        .publish(&alice, &notify(OrderStatus::Accepted))
        .await
        .unwrap();
    let seen = next_record(&mut before).await.unwrap()["arguments"][0]["cursor"].clone();
    drop(before);
    // While alice is away: two of hers, one of bob's.
    let missed = [
        notify(OrderStatus::Processing),
        notify(OrderStatus::Completed),
    ];
    for notification in &missed {
        hub.fanout.publish(&alice, notification).await.unwrap();
    }
    let bob = UserId::parse("bob").unwrap();
    hub.fanout
        .publish(&bob, &notify(OrderStatus::Completed))
        .await
        .unwrap();

    let url = hub.ws_url(&format!(
        "access_token={}&after={}",
        token("alice"),
        seen.as_str().unwrap()
    ));
    let (mut again, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    again
        .send(Message::text(format!(
            "{{\"protocol\":\"json\",\"version\":1}}{RS}"
        )))
        .await
        .unwrap();
    assert_eq!(next_text(&mut again).await.unwrap(), format!("{{}}{RS}"));
    for expected in &missed {
        let record = next_record(&mut again).await.unwrap();
        assert_eq!(
            record["arguments"][0]["correlationId"],
            json!(expected.correlation_id),
            "{record}"
        );
    }
    again.send(invoke("1", "Ping", json!([]))).await.unwrap();
    assert_eq!(
        next_record(&mut again).await.unwrap()["result"],
        "pong",
        "nothing else replayed"
    );
    assert_eq!(hub.hub.metrics.notifications_replayed.get(), 2);

    let bad = hub.ws_url(&format!("access_token={}&after=yesterday", token("alice")));
    match tokio_tungstenite::connect_async(bad).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected 400, got {other:?}"),
    }
}
