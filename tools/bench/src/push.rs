//! `pipeline --hub`: one SignalR connection per user (JSON protocol over WebSockets, no
//! negotiate, as the official client does with `skipNegotiation`), noting when each order's
//! COMPLETED notification arrives, so the pipeline's latency can be read where the user sees it.

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const RECORD_SEPARATOR: char = '\u{1e}';
const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
const PING: &str = "{\"type\":6}\u{1e}";
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// When each correlation id's COMPLETED notification arrived (the first one, if repeated).
#[derive(Default)]
pub struct Pushes {
    completed: Mutex<HashMap<String, Instant>>,
}

impl Pushes {
    pub fn arrived(&self, correlation_id: &str) -> Option<Instant> {
        self.completed.lock().unwrap().get(correlation_id).copied()
    }

    fn note(&self, record: &str) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(record) else {
            return;
        };
        if message["type"] != 1 || message["target"] != "Notification" {
            return;
        }
        let notification = &message["arguments"][0];
        if notification["status"] == "COMPLETED"
            && let Some(cid) = notification["correlationId"].as_str()
        {
            let now = Instant::now();
            self.completed
                .lock()
                .unwrap()
                .entry(cid.to_owned())
                .or_insert(now);
        }
    }
}

/// Connects one client per token to `hub` (`ws://…/hubs/order-status`) and listens until the
/// returned tasks are aborted.
pub async fn listen(
    hub: &str,
    tokens: &[String],
) -> anyhow::Result<(Arc<Pushes>, Vec<JoinHandle<()>>)> {
    let pushes = Arc::new(Pushes::default());
    let mut tasks = Vec::with_capacity(tokens.len());
    for token in tokens {
        let url = format!("{hub}?access_token={token}");
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to {hub}"))?;
        ws.send(Message::Text(HANDSHAKE.into())).await?;
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) if text.starts_with("{}") => {}
            other => bail!("{hub}: the handshake was not accepted: {other:?}"),
        }
        let pushes = Arc::clone(&pushes);
        tasks.push(tokio::spawn(async move {
            // The hub closes a connection it has heard nothing from for 30 s, as ASP.NET Core's
            // ClientTimeoutInterval does; the official client pings every 15 s.
            let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
            loop {
                tokio::select! {
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) => text
                            .split(RECORD_SEPARATOR)
                            .filter(|r| !r.is_empty())
                            .for_each(|record| pushes.note(record)),
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = keep_alive.tick() => {
                        if ws.send(Message::Text(PING.into())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    Ok((pushes, tasks))
}
