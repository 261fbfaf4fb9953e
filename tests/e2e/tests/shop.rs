//! The embedded mode as a browser sees it: one origin serving the SPA at `/`, the API under
//! `/api` and the SignalR hub under `/hubs`, the hub fed by the in-process notifier.

use futures::{SinkExt, StreamExt};
use orders_e2e::{Mode, System};
use reqwest::header;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const RS: char = '\u{1e}';
const INDEX: &str = "<!doctype html><title>shop</title><div id=app></div>";

/// A built SPA as Vite lays it out: index.html plus content-hashed assets.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), INDEX).unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    let script = "console.log('the shop');\n".repeat(100);
    std::fs::write(dir.path().join("assets/app-3f2a1b.js"), script).unwrap();
    dir
}

async fn shop() -> (System, tempfile::TempDir) {
    let site = site();
    let dist = site.path().display().to_string();
    let system = System::start_with(Mode::Embedded, &[("WEB_DIST", &dist)]).await;
    (system, site)
}

#[tokio::test]
async fn serves_the_spa_beside_the_functions() {
    let (system, _site) = shop().await;
    let get = |path: &str| system.client.get(format!("{}{path}", system.base())).send();

    let index = get("/").await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(index.text().await.unwrap(), INDEX);
    // A deep link loads the app, which routes by itself.
    assert_eq!(
        get("/orders/42").await.unwrap().text().await.unwrap(),
        INDEX
    );

    let asset = raw_get(&system, "/assets/app-3f2a1b.js").await;
    assert!(asset.starts_with("HTTP/1.1 200"), "{asset}");
    assert!(
        asset.contains("cache-control: public, max-age=31536000, immutable"),
        "{asset}"
    );
    assert!(asset.contains("content-encoding: gzip"), "{asset}");
    // A missing file is a 404, never index.html served as a script or an image.
    assert_eq!(get("/assets/gone-000.js").await.unwrap().status(), 404);
    assert_eq!(
        get("/images/products/none.svg").await.unwrap().status(),
        404
    );

    // The functions keep their routes; trigger endpoints stay unreachable.
    let products: Value = get("/api/products?size=1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(products["total"], 145);
    let trigger = system
        .client
        .post(format!("{}/OrderProcess", system.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(trigger.status(), 404);
    assert_eq!(
        trigger.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

/// The response head of a GET that accepts gzip, read off the socket (reqwest may decompress
/// transparently and hide the encoding).
async fn raw_get(system: &System, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = system.base().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    String::from_utf8_lossy(&response[..head_end])
        .to_lowercase()
        .replace("http/1.1", "HTTP/1.1")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A handshaken hub connection on the shop's origin, token in the query as browsers send it.
async fn hub(system: &System, token: &str) -> Ws {
    let url = format!(
        "{}/hubs/order-status?access_token={token}",
        system.base().replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text(format!(
        "{{\"protocol\":\"json\",\"version\":1}}{RS}"
    )))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await, Some(format!("{{}}{RS}")));
    ws
}

/// The next Text message, `None` after 3 s of silence or when the socket closes.
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Notifications received until COMPLETED (or silence), as `(correlationId, status)`.
async fn notifications_until_completed(ws: &mut Ws) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while let Some(text) = next_text(ws).await {
        for record in text.split_terminator(RS) {
            let record: Value = serde_json::from_str(record).unwrap();
            if record["type"] == 1 && record["target"] == "Notification" {
                let n = &record["arguments"][0];
                let status = n["status"].as_str().unwrap().to_owned();
                seen.push((
                    n["correlationId"].as_str().unwrap().to_owned(),
                    status.clone(),
                ));
                if status == "COMPLETED" {
                    return seen;
                }
            }
        }
    }
    seen
}

#[tokio::test]
async fn the_embedded_hub_pushes_completed_to_the_owner_only() {
    let (system, _site) = shop().await;
    let (alice, bob) = (system.token("alice").await, system.token("bob").await);
    let (mut alice_tab, mut bob_tab) = (hub(&system, &alice).await, hub(&system, &bob).await);

    let cid = system.place(&alice, "AZ-104", 1).await;

    let seen = notifications_until_completed(&mut alice_tab).await;
    assert_eq!(
        seen.last(),
        Some(&(cid.clone(), "COMPLETED".to_owned())),
        "{seen:?}"
    );
    assert!(seen.iter().all(|(c, _)| c == &cid));
    assert_eq!(notifications_until_completed(&mut bob_tab).await, vec![]);
}
