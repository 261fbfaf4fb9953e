//! The embedded durable queue: messages live in the same SQLite file as the orders, so an
//! accepted order survives a crash of the one-process embedded mode.

use super::{SqliteStore, backend};
use async_trait::async_trait;
use orders_core::ports::{BackendError, MessagePublisher, OutboundMessage};
use rusqlite::params;

/// Publishes to (and, for the local host, receives from) queues stored in SQLite.
#[derive(Clone)]
pub struct SqliteQueue {
    store: SqliteStore,
}

impl SqliteQueue {
    pub fn new(store: SqliteStore) -> Self {
        SqliteQueue { store }
    }

    /// Messages waiting on `queue` (not dead-lettered).
    pub async fn depth(&self, queue: &str) -> Result<u64, BackendError> {
        let queue = queue.to_owned();
        self.store
            .with_conn(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1 AND dead_lettered = 0",
                    [queue],
                    |r| r.get::<_, i64>(0),
                )
            })
            .await
            .map(|n| n as u64)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl MessagePublisher for SqliteQueue {
    /// Committed with `synchronous = FULL` before returning: the message is durable. A repeated
    /// message id on the same queue is dropped, like Service Bus duplicate detection.
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        let queue = queue.to_owned();
        let properties = serde_json::to_string(&message.properties).map_err(backend)?;
        self.store
            .with_conn(move |conn| {
                conn.execute(
                    "INSERT INTO queue_messages (queue, message_id, session_id, body, properties, enqueued_at, visible_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (queue, message_id) DO NOTHING",
                    params![
                        queue,
                        message.message_id,
                        message.session_id,
                        message.body,
                        properties,
                        chrono::Utc::now().to_rfc3339(),
                        now_ms()
                    ],
                )
                .map(drop)
            })
            .await
    }
}
