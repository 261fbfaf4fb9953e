//! The embedded durable queue: messages live in the same SQLite file as the orders, so an
//! accepted order survives a crash of the one-process embedded mode.
//!
//! Delivery follows Service Bus sessions: a message is deliverable when it is visible, not
//! locked, not dead-lettered, and no earlier message of its session is still on the queue (in
//! flight, waiting for a retry, or simply earlier). So each session is strictly FIFO, one message
//! at a time, while different sessions are delivered in parallel.

use super::SqliteStore;
use async_trait::async_trait;
use orders_core::ports::{
    BackendError, Backlog, DEAD_LETTER_SUFFIX, DeadLetter, Delivery, MessagePublisher,
    OutboundMessage, QueueTransport, Settlement, dead_letter_queue,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a receiver owns a delivery before it is handed to someone else.
pub const DEFAULT_LOCK: Duration = Duration::from_secs(30);
/// Receivers poll this often when not woken by a publish (retries becoming visible, lock expiry,
/// publishes from another process). A publish wakes every waiting receiver: the host has one
/// per queue, which takes a batch for all its free workers at once.
const POLL: Duration = Duration::from_millis(100);

/// Publishes to, and delivers from, queues stored in SQLite.
#[derive(Clone)]
pub struct SqliteQueue {
    store: SqliteStore,
    lock: Duration,
    published: Arc<Notify>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn properties(raw: &str) -> std::collections::BTreeMap<String, String> {
    serde_json::from_str(raw).unwrap_or_default()
}

/// The message a lock token (`?1`) holds: the token ends with the message's sequence number,
/// so the lookup is by primary key, and the token must still match.
macro_rules! by_lock {
    () => {
        "seq = CAST(substr(?1, instr(?1, '.') + 1) AS INTEGER) AND lock_token = ?1"
    };
}

/// Locks up to `?4` heads (see migration 5) that are visible and not locked, oldest first.
/// Each delivery's lock token is the call's token and its sequence number.
const TAKE: &str = "
    UPDATE queue_messages
       SET locked_until_ms = ?2, lock_token = ?3 || '.' || seq, delivery_count = delivery_count + 1
     WHERE seq IN (
           SELECT seq FROM queue_messages
            WHERE queue = ?1 AND head = 1 AND visible_at_ms <= ?5
              AND (locked_until_ms IS NULL OR locked_until_ms <= ?5)
            ORDER BY seq LIMIT ?4)
    RETURNING seq, queue, message_id, session_id, body, properties, enqueued_at, delivery_count, lock_token";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, Delivery)> {
    let enqueued: String = row.get(6)?;
    let delivery = Delivery {
        queue: row.get(1)?,
        message_id: row.get(2)?,
        session_id: row.get(3)?,
        body: row.get(4)?,
        properties: properties(&row.get::<_, String>(5)?),
        enqueued_at: chrono::DateTime::parse_from_rfc3339(&enqueued)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default(),
        delivery_count: row.get(7)?,
        lock_token: row.get(8)?,
    };
    Ok((row.get(0)?, delivery))
}

/// Locks the next `max` deliverable messages, in queue order.
fn take(
    conn: &Connection,
    queue: &str,
    max: usize,
    lock: Duration,
) -> rusqlite::Result<Vec<Delivery>> {
    let now = now_ms();
    let mut taken = conn
        .prepare_cached(TAKE)?
        .query_map(
            params![
                queue,
                now + lock.as_millis() as i64,
                uuid_like(),
                max as i64,
                now
            ],
            delivery_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // RETURNING yields rows in no promised order.
    taken.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(taken.into_iter().map(|(_, d)| d).collect())
}

/// A message arrives at its queue's tail, leading its session there (`head`, migration 5) if
/// nothing of the session waits ahead of it.
const INSERT: &str = "
    INSERT INTO queue_messages (queue, message_id, session_id, body, properties, enqueued_at, visible_at_ms, head)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?3 IS NULL OR NOT EXISTS (
           SELECT 1 FROM queue_messages e
            WHERE e.queue = ?1 AND e.session_id = ?3 AND e.dead_lettered = 0)
    ON CONFLICT (queue, message_id) DO NOTHING";

/// Enqueues a message unless its queue already holds one with its id; the rows inserted.
fn insert(conn: &Connection, queue: &str, message: &OutboundMessage) -> rusqlite::Result<usize> {
    let properties = serde_json::to_string(&message.properties)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(INSERT)?.execute(params![
        queue,
        message.message_id,
        message.session_id,
        message.body,
        properties,
        chrono::Utc::now().to_rfc3339(),
        now_ms()
    ])
}

fn delete(conn: &Connection, token: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(concat!("DELETE FROM queue_messages WHERE ", by_lock!()))?
        .execute([token])
}

/// Moves a delivery to its queue's dead-letter subqueue with a fresh delivery count (the
/// count it died with is kept for listing), its reason in the properties as Service Bus records
/// it. A delivery of a subqueue (`parked`) stays where it is: no longer delivered.
fn dead_letter(
    conn: &Connection,
    token: &str,
    parked: bool,
    reason: &str,
    description: &str,
) -> rusqlite::Result<usize> {
    if parked {
        return conn.execute(
            concat!(
                "UPDATE queue_messages SET locked_until_ms = NULL, lock_token = NULL, dead_lettered = 1,
                     dead_letter_reason = ?2 WHERE ",
                by_lock!()
            ),
            params![token, reason],
        );
    }
    // OR REPLACE: an older dead letter with the same message id gives way to this one.
    conn.execute(
        concat!(
            "UPDATE OR REPLACE queue_messages SET
             queue = queue || ?4, locked_until_ms = NULL, lock_token = NULL,
             dead_letter_reason = ?2, dead_lettered_after = delivery_count, delivery_count = 0,
             properties = json_set(properties, '$.DeadLetterReason', ?2, '$.DeadLetterErrorDescription', ?3)
         WHERE ",
            by_lock!()
        ),
        params![token, reason, description, DEAD_LETTER_SUFFIX],
    )
}

/// A lock token: unique per delivery, no extra dependency needed.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:x}-{:x}", now_ms(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl SqliteQueue {
    /// A settlement's outcome: a completed or dead-lettered head unblocks the rest of its
    /// session (and a completion may have enqueued outputs), so a receiver is woken.
    fn settled(&self, held_the_lock: bool) -> Result<(), BackendError> {
        if !held_the_lock {
            return Err(BackendError::new(
                "sqlite-queue",
                "the delivery's lock was lost (expired or settled)",
            ));
        }
        self.published.notify_waiters();
        Ok(())
    }

    pub fn new(store: SqliteStore) -> Self {
        Self::with_lock(store, DEFAULT_LOCK)
    }

    pub fn with_lock(store: SqliteStore, lock: Duration) -> Self {
        SqliteQueue {
            store,
            lock,
            published: Arc::new(Notify::new()),
        }
    }

    /// Messages waiting on `queue` (a dead-letter subqueue's parked ones left out).
    pub async fn depth(&self, queue: &str) -> Result<u64, BackendError> {
        self.backlog(queue).await.map(|b| b.depth)
    }
}

#[async_trait]
impl MessagePublisher for SqliteQueue {
    /// Committed with `synchronous = FULL` before returning: the message is durable. A repeated
    /// message id on the same queue is dropped, like Service Bus duplicate detection.
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        let queue = queue.to_owned();
        self.store
            .with_conn(move |conn| insert(conn, &queue, &message))
            .await?;
        self.published.notify_waiters();
        Ok(())
    }
}

#[async_trait]
impl QueueTransport for SqliteQueue {
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let published = self.published.notified();
            let (queue_name, lock) = (queue.to_owned(), self.lock);
            let taken = self
                .store
                .with_conn(move |conn| take(conn, &queue_name, max.max(1), lock))
                .await?;
            if !taken.is_empty() {
                return Ok(taken);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(taken);
            }
            let nap = POLL.min(deadline - now);
            let _ = tokio::time::timeout(nap, published).await;
        }
    }

    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<(), BackendError> {
        let token = delivery.lock_token.clone();
        let parked = delivery.queue.ends_with(DEAD_LETTER_SUFFIX);
        let changed = self
            .store
            .with_conn(move |conn| match settlement {
                Settlement::Complete => delete(conn, &token),
                Settlement::Abandon => conn.execute(
                    concat!("UPDATE queue_messages SET locked_until_ms = NULL, lock_token = NULL WHERE ", by_lock!()),
                    [token],
                ),
                Settlement::DeadLetter { reason, description } => dead_letter(conn, &token, parked, &reason, &description),
            })
            .await?;
        self.settled(changed == 1)
    }

    /// The delivery's removal and its outputs' arrival, in one transaction.
    async fn complete(
        &self,
        delivery: &Delivery,
        outputs: Vec<(String, OutboundMessage)>,
    ) -> Result<(), BackendError> {
        let token = delivery.lock_token.clone();
        let deleted = self
            .store
            .with_conn(move |conn| {
                if delete(conn, &token)? != 1 {
                    return Ok(false);
                }
                for (queue, message) in &outputs {
                    insert(conn, queue, message)?;
                }
                Ok(true)
            })
            .await?;
        self.settled(deleted)
    }

    async fn renew_lock(&self, delivery: &Delivery) -> Result<(), BackendError> {
        let (token, lock) = (delivery.lock_token.clone(), self.lock);
        let renewed = self
            .store
            .with_conn(move |conn| {
                conn.execute(
                    concat!(
                        "UPDATE queue_messages SET locked_until_ms = ?2 WHERE ",
                        by_lock!()
                    ),
                    params![token, now_ms() + lock.as_millis() as i64],
                )
            })
            .await?;
        if renewed == 1 {
            Ok(())
        } else {
            Err(BackendError::new(
                "sqlite-queue",
                "the delivery's lock was lost (expired or settled)",
            ))
        }
    }

    /// The oldest waiting message leads its session, so the heads index finds it.
    async fn backlog(&self, queue: &str) -> Result<Backlog, BackendError> {
        let queue = queue.to_owned();
        let (depth, oldest) = self
            .store
            .with_conn(move |conn| {
                let depth = conn
                    .prepare_cached("SELECT COUNT(*) FROM queue_messages WHERE queue = ?1 AND dead_lettered = 0")?
                    .query_row([&queue], |r| r.get::<_, i64>(0))?;
                let oldest = conn
                    .prepare_cached("SELECT enqueued_at FROM queue_messages WHERE queue = ?1 AND head = 1 ORDER BY seq LIMIT 1")?
                    .query_row([&queue], |r| r.get::<_, String>(0))
                    .optional()?;
                Ok((depth, oldest))
            })
            .await?;
        Ok(Backlog {
            depth: depth as u64,
            oldest: oldest
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
        })
    }

    async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError> {
        let queue = queue.to_owned();
        self.store
            .with_conn(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT message_id, session_id, body, properties,
                            COALESCE(dead_lettered_after, delivery_count),
                            COALESCE(json_extract(properties, '$.DeadLetterReason'), dead_letter_reason, '')
                     FROM queue_messages WHERE queue = ?1 ORDER BY seq LIMIT ?2",
                )?;
                stmt.query_map(params![dead_letter_queue(&queue), limit as i64], |row| {
                    Ok(DeadLetter {
                        queue: queue.clone(),
                        message_id: row.get(0)?,
                        session_id: row.get(1)?,
                        body: row.get(2)?,
                        properties: properties(&row.get::<_, String>(3)?),
                        delivery_count: row.get(4)?,
                        reason: row.get(5)?,
                    })
                })?
                .collect()
            })
            .await
    }

    /// Replayed messages go to the back of the queue (a new sequence number), like a resend,
    /// keeping their message id.
    async fn replay_dead_letter(
        &self,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, BackendError> {
        let (queue, message_id) = (queue.to_owned(), message_id.to_owned());
        let replayed = self
            .store
            .with_conn(move |conn| {
                let tx = conn.savepoint()?;
                let dlq = dead_letter_queue(&queue);
                let row: Option<(Option<String>, String, String)> = tx
                    .query_row(
                        "SELECT session_id, body,
                                json_remove(properties, '$.DeadLetterReason', '$.DeadLetterErrorDescription')
                         FROM queue_messages WHERE queue = ?1 AND message_id = ?2",
                        params![dlq, message_id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((session_id, body, properties_json)) = row else { return Ok(false) };
                tx.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND message_id = ?2",
                    params![dlq, message_id],
                )?;
                let message = OutboundMessage {
                    message_id: message_id.clone(),
                    session_id,
                    body,
                    properties: properties(&properties_json),
                };
                if insert(&tx, &queue, &message)? != 1 {
                    // Rolls back: the dead letter stays where it is.
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
                        Some(format!("{queue} already holds a message {message_id}")),
                    ));
                }
                tx.commit()?;
                Ok(true)
            })
            .await?;
        self.published.notify_waiters();
        Ok(replayed)
    }
}
