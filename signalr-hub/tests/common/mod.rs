//! The hub in-process on a random port, with an in-process fan-out and a throwaway SQLite store.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use orders_adapters::memory::MemoryFanout;
use orders_adapters::sqlite::SqliteStore;
use orders_auth::{DevTokenIssuer, KeySource, TokenValidator, ValidatorConfig};
use orders_core::UserId;
use signalr_hub::{FanoutSource, Hub, Limits, StatusLookup};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const KEY: &[u8] = b"signalr-hub-tests-key-0123456789abcdef";
pub const RS: char = '\u{1e}';

pub struct TestHub {
    pub addr: std::net::SocketAddr,
    pub hub: Arc<Hub>,
    pub fanout: MemoryFanout,
    pub store: SqliteStore,
    _dir: tempfile::TempDir,
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn token(user: &str) -> String {
    DevTokenIssuer::new(
        KEY,
        "contoso-orders-dev",
        "contoso-orders-api",
        Duration::from_secs(600),
    )
    .issue(&UserId::parse(user).unwrap())
    .access_token
}

pub async fn spawn_hub(limits: Limits) -> TestHub {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("orders.db"),
        orders_adapters::seed::products(),
    )
    .await
    .unwrap();
    let validator = TokenValidator::new(ValidatorConfig {
        issuer: "contoso-orders-dev".into(),
        audience: "contoso-orders-api".into(),
        keys: KeySource::SharedSecret(KEY.to_vec()),
    });
    let lookup = StatusLookup {
        state: None,
        store: Some(Arc::new(store.clone())),
    };
    let fanout = MemoryFanout::new();
    let history = Arc::new(fanout.clone());
    let hub = Hub::new(Arc::new(validator), lookup, limits, "memory", Some(history));
    let source: FanoutSource = Box::new(fanout.subscribe());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = Arc::clone(&hub);
    tokio::spawn(async move {
        signalr_hub::serve(listener, served, source, &[], async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestHub {
        addr,
        hub,
        fanout,
        store,
        _dir: dir,
        shutdown: Some(tx),
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl TestHub {
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/hubs/order-status?{query}", self.addr)
    }

    /// A raw socket for `user` (token in the query, as browsers send it), no handshake yet.
    pub async fn raw(&self, user: &str) -> Ws {
        let (ws, _) =
            tokio_tungstenite::connect_async(self.ws_url(&format!("access_token={}", token(user))))
                .await
                .unwrap();
        ws
    }

    /// A raw socket after a successful JSON handshake.
    pub async fn handshaken(&self, user: &str) -> Ws {
        let mut ws = self.raw(user).await;
        ws.send(Message::text(format!(
            "{{\"protocol\":\"json\",\"version\":1}}{RS}"
        )))
        .await
        .unwrap();
        assert_eq!(next_text(&mut ws).await.unwrap(), format!("{{}}{RS}"));
        ws
    }
}

/// The next Text message, or `None` when the socket closes (or after 5 s of silence).
pub async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no message within 5 s"),
        }
    }
}

/// The code of the close frame that ends `ws`, skipping what comes before it.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no close frame within 5 s"),
        }
    }
}

/// Records of a Text message, parsed.
pub fn records(text: &str) -> Vec<serde_json::Value> {
    assert!(text.ends_with(RS), "every record ends with 0x1E: {text:?}");
    text.split_terminator(RS)
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

pub async fn next_record(ws: &mut Ws) -> Option<serde_json::Value> {
    let text = next_text(ws).await?;
    let mut all = records(&text);
    assert_eq!(all.len(), 1, "one record per message: {text:?}");
    all.pop()
}

/// Reads until the socket closes; returns the Close record if one came.
pub async fn until_closed(ws: &mut Ws) -> Option<serde_json::Value> {
    let mut close = None;
    while let Some(text) = next_text(ws).await {
        for record in records(&text) {
            if record["type"] == 7 || record.get("error").is_some() {
                close = Some(record);
            }
        }
    }
    close
}
