//! The notification backplane on Redis Streams: one stream, `{prefix}notifications`, that every
//! hub replica reads with `XREAD BLOCK` and filters by user itself, and a short history per user,
//! `{prefix}history:{user}`, for clients that reconnect.
//!
//! Unlike pub/sub, a stream keeps what was published: a replica cut off from Redis resumes from
//! the last entry it read and gets everything published meanwhile, in order, once. The stream is
//! trimmed to about [`STREAM_LENGTH`] entries, so an outage longer than that many publishes loses
//! the oldest of them; a Redis restart without persistence loses what the replica had not read.

use super::{client, error, timed};
use crate::memory::{HISTORY_AGE, HISTORY_PER_USER, fanout_message, history_horizon, now_ms};
use async_trait::async_trait;
use orders_core::UserId;
use orders_core::cursor::Cursor;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{
    BackendError, FanoutEvent, FanoutSubscription, NotificationFanout, NotificationHistory,
};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Script};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::mpsc;

pub const DEFAULT_PREFIX: &str = "orders:";

/// About how many entries the stream keeps (`XADD MAXLEN ~`): at 1,000 notifications a second,
/// a replica may be cut off for well over a minute and still miss nothing.
pub const STREAM_LENGTH: u64 = 100_000;
/// Messages a subscriber may have unread before reading from Redis pauses.
const SUBSCRIBER_BUFFER: usize = 1024;
/// Entries one XREAD returns at most.
const READ_BATCH: usize = 512;
/// How long one XREAD waits for new entries: an idle subscription's heartbeat.
const BLOCK: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("publish.lua")));

fn stream(prefix: &str) -> String {
    format!("{prefix}notifications")
}

fn history(prefix: &str, user: &UserId) -> String {
    format!("{prefix}history:{user}")
}

/// The publishing side, which also answers history reads.
#[derive(Clone)]
pub struct RedisFanout {
    connection: ConnectionManager,
    prefix: String,
}

impl RedisFanout {
    /// Connects the publishing side; fails if Redis cannot be reached now.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BackendError> {
        Ok(RedisFanout {
            connection: super::connect(url).await?,
            prefix: prefix.to_owned(),
        })
    }

    /// The stream this fan-out appends to.
    pub fn stream(&self) -> String {
        stream(&self.prefix)
    }

    /// Every message appended to `{prefix}notifications` from now on. Fails if Redis cannot be
    /// reached now; after that a background task reads on, reconnecting with backoff whenever
    /// the connection is lost and resuming after the last entry it read, until the receiver is
    /// dropped.
    pub async fn subscribe(url: &str, prefix: &str) -> Result<RedisSubscription, BackendError> {
        let client = client(url)?;
        let stream = stream(prefix);
        let mut connection = open(&client).await?;
        let last = last_entry(&mut connection, &stream).await?;
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_BUFFER);
        tokio::spawn(keep_reading(client, stream, connection, last, sender));
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
        // Kept in the stream whether or not a replica reads right now: one that is reconnecting
        // picks it up when it is back.
        timed(
            "XADD",
            PUBLISH
                .key(stream(&self.prefix))
                .key(history(&self.prefix, user))
                .arg(payload)
                .arg(STREAM_LENGTH)
                .arg(HISTORY_PER_USER)
                .arg(HISTORY_AGE.as_millis() as u64)
                .invoke_async::<()>(&mut self.connection.clone()),
        )
        .await
    }
}

#[async_trait]
impl NotificationHistory for RedisFanout {
    async fn since(&self, user: &UserId, after: Cursor) -> Result<Vec<Notification>, BackendError> {
        let after = after.max(history_horizon(now_ms()));
        let entries: Vec<Vec<u8>> = timed(
            "LRANGE history",
            redis::cmd("LRANGE")
                .arg(history(&self.prefix, user))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.connection.clone()),
        )
        .await?;
        Ok(entries
            .iter()
            .filter_map(|entry| {
                let split = entry.iter().position(|&b| b == b' ')?;
                let (id, payload) = (
                    std::str::from_utf8(&entry[..split]).ok()?,
                    &entry[split + 1..],
                );
                decode(id, payload)
            })
            .filter(|message| message.notification.cursor > Some(after) && &message.user_id == user)
            .map(|message| message.notification)
            .collect())
    }
}

/// A connection of its own for the blocking reads, which wait up to [`BLOCK`] for an answer.
async fn open(client: &redis::Client) -> Result<MultiplexedConnection, BackendError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(super::COMMAND_TIMEOUT))
        .set_response_timeout(Some(BLOCK + super::COMMAND_TIMEOUT));
    timed(
        "connect for XREAD",
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

/// The id of the stream's newest entry, or `0-0` when it is empty: reading starts after it.
async fn last_entry(
    connection: &mut MultiplexedConnection,
    stream: &str,
) -> Result<String, BackendError> {
    let newest: Vec<(String, redis::Value)> = timed(
        "XREVRANGE",
        redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(connection),
    )
    .await?;
    Ok(newest
        .into_iter()
        .next()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
}

/// A stream entry `m` field as a message, its id as the cursor; `None` for what is not ours to
/// deliver (another writer on the stream, or a newer format).
fn decode(id: &str, payload: &[u8]) -> Option<FanoutMessage> {
    let cursor = id.parse().ok()?;
    match serde_json::from_slice::<FanoutMessage>(payload) {
        Ok(mut message) => {
            message.notification.cursor = Some(cursor);
            Some(message)
        }
        Err(e) => {
            tracing::warn!(%id, error = %e, "skipping an undecodable fan-out entry");
            None
        }
    }
}

/// One stream's entries as XREAD returns them: `[[key, [[id, [field, value, ...]], ...]]]`.
type ReadReply = Option<Vec<(String, Vec<(String, Vec<Vec<u8>>)>)>>;

async fn read(
    connection: &mut MultiplexedConnection,
    stream: &str,
    last: &str,
) -> Result<Vec<(String, Vec<Vec<u8>>)>, BackendError> {
    let reply: ReadReply = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(READ_BATCH)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64)
        .arg("STREAMS")
        .arg(stream)
        .arg(last)
        .query_async(connection)
        .await
        .map_err(|e| error("XREAD", e))?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .collect())
}

async fn keep_reading(
    client: redis::Client,
    stream: String,
    first: MultiplexedConnection,
    mut last: String,
    sender: mpsc::Sender<FanoutMessage>,
) {
    let mut connection = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut open_connection = match connection.take() {
            Some(connection) => connection,
            None => match open(&client).await {
                Ok(connection) => {
                    tracing::info!(%stream, after = %last, "fan-out reconnected; resuming");
                    backoff = MIN_BACKOFF;
                    connection
                }
                Err(e) => {
                    tracing::warn!(%stream, error = %e, retry_in = ?backoff, "fan-out reconnect failed");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = sender.closed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let entries = tokio::select! {
            entries = read(&mut open_connection, &stream, &last) => entries,
            () = sender.closed() => return,
        };
        match entries {
            Ok(entries) => {
                for (id, fields) in entries {
                    let message = match fields.as_slice() {
                        [field, payload] if field == b"m" => decode(&id, payload),
                        _ => None,
                    };
                    last = id;
                    if let Some(message) = message
                        && sender.send(message).await.is_err()
                    {
                        return;
                    }
                }
                connection = Some(open_connection);
            }
            Err(e) => {
                tracing::warn!(%stream, error = %e, "fan-out read failed; reconnecting");
                tokio::time::sleep(MIN_BACKOFF).await;
            }
        }
    }
}
