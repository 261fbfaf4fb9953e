//! Notification fan-out over Redis pub/sub: one channel, `{prefix}notifications`, so each hub
//! replica needs a single SUBSCRIBE and filters by user itself.
//!
//! Pub/sub keeps nothing: a replica that is disconnected while a message is published misses
//! it. Clients recover by asking for the current status after they reconnect.

use super::{client, connect, error, timed};
use crate::memory::fanout_message;
use async_trait::async_trait;
use futures::StreamExt;
use orders_core::UserId;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{BackendError, FanoutEvent, FanoutSubscription, NotificationFanout};
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use std::time::Duration;
use tokio::sync::mpsc;

pub const DEFAULT_PREFIX: &str = "orders:";

/// Messages a subscriber may have unread before reading from Redis pauses.
const SUBSCRIBER_BUFFER: usize = 1024;
/// How often an idle subscription pings, to notice a connection that died without a word.
const HEARTBEAT: Duration = Duration::from_secs(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn channel(prefix: &str) -> String {
    format!("{prefix}notifications")
}

#[derive(Clone)]
pub struct RedisFanout {
    connection: ConnectionManager,
    channel: String,
}

impl RedisFanout {
    /// Connects the publishing side; fails if Redis cannot be reached now.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BackendError> {
        Ok(RedisFanout {
            connection: connect(url).await?,
            channel: channel(prefix),
        })
    }

    /// The channel this fan-out publishes on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Every message published on `{prefix}notifications` from now on. Fails if the first
    /// SUBSCRIBE fails; after that a background task reconnects and resubscribes by itself
    /// (with backoff) whenever the connection is lost, until the receiver is dropped.
    pub async fn subscribe(url: &str, prefix: &str) -> Result<RedisSubscription, BackendError> {
        let client = client(url)?;
        let channel = channel(prefix);
        let first = open_subscription(&client, &channel).await?;
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        tokio::spawn(keep_subscribed(client, channel, first, sender));
        Ok(RedisSubscription(receiver))
    }
}

pub struct RedisSubscription(mpsc::Receiver<FanoutMessage>);

#[async_trait]
impl FanoutSubscription for RedisSubscription {
    async fn next(&mut self) -> Option<FanoutEvent> {
        self.0.recv().await.map(FanoutEvent::Message)
    }

    fn backlog(&self) -> usize {
        self.0.len()
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[async_trait]
impl NotificationFanout for RedisFanout {
    async fn publish(
        &self,
        user: &UserId,
        notification: &Notification,
    ) -> Result<(), BackendError> {
        let message = fanout_message(user, notification);
        let payload = serde_json::to_string(&message).expect("notifications serialise to JSON");
        // The receiver count is not checked: no replica listening means nobody is connected.
        timed(
            "PUBLISH",
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(payload)
                .exec_async(&mut self.connection.clone()),
        )
        .await
    }
}

async fn open_subscription(
    client: &redis::Client,
    channel: &str,
) -> Result<(PubSubSink, PubSubStream), BackendError> {
    let mut pubsub = timed("connect for SUBSCRIBE", client.get_async_pubsub()).await?;
    timed("SUBSCRIBE", pubsub.subscribe(channel)).await?;
    Ok(pubsub.split())
}

async fn keep_subscribed(
    client: redis::Client,
    channel: String,
    first: (PubSubSink, PubSubStream),
    sender: mpsc::Sender<FanoutMessage>,
) {
    let mut subscription = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let (sink, stream) = match subscription.take() {
            Some(subscription) => subscription,
            None => match open_subscription(&client, &channel).await {
                Ok(subscription) => {
                    tracing::info!(%channel, "resubscribed to the fan-out channel");
                    backoff = MIN_BACKOFF;
                    subscription
                }
                Err(e) => {
                    tracing::warn!(%channel, error = %e, retry_in = ?backoff, "fan-out subscription failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = sender.closed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        match forward(sink, stream, &sender).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%channel, error = %e, "fan-out subscription lost; resubscribing")
            }
        }
    }
}

/// Hands messages to `sender` until the connection is lost (`Err`) or nobody listens (`Ok`).
async fn forward(
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    sender: &mpsc::Sender<FanoutMessage>,
) -> Result<(), BackendError> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return Err(error("subscription", "connection closed"));
                };
                match serde_json::from_slice::<FanoutMessage>(message.get_payload_bytes()) {
                    Ok(message) => {
                        if sender.send(message).await.is_err() {
                            return Ok(());
                        }
                    }
                    // Not ours to deliver: another writer on the channel, or a newer format.
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable fan-out message"),
                }
            }
            _ = heartbeat.tick() => {
                timed("PING on the subscription", sink.ping::<()>()).await?;
            }
            () = sender.closed() => return Ok(()),
        }
    }
}
