//! Versioned schema migrations, applied in order at start-up and recorded in `schema_migrations`.

use rusqlite::{Connection, params};

/// (version, name, SQL). Append only: an applied migration is never edited.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "orders schema",
        r#"
    CREATE TABLE customers (
        id          INTEGER PRIMARY KEY,
        external_id TEXT NOT NULL UNIQUE,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE products (
        id               INTEGER PRIMARY KEY,
        product_id       TEXT NOT NULL UNIQUE,
        name             TEXT NOT NULL,
        category         TEXT NOT NULL,
        vendor           TEXT NOT NULL,
        image_url        TEXT NOT NULL,
        price_cents      INTEGER NOT NULL CHECK (price_cents >= 0),
        discount_percent INTEGER NOT NULL CHECK (discount_percent BETWEEN 0 AND 100),
        billing_period   TEXT NOT NULL,
        is_subscription  INTEGER NOT NULL,
        is_active        INTEGER NOT NULL
    );
    CREATE TABLE orders (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        correlation_id TEXT NOT NULL UNIQUE,
        customer_id    INTEGER NOT NULL REFERENCES customers(id),
        status         TEXT NOT NULL,
        total_cents    INTEGER NOT NULL,
        created_at     TEXT NOT NULL,
        completed_at   TEXT,
        is_deleted     INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX ix_orders_customer ON orders (customer_id, is_deleted, id DESC);
    CREATE TABLE order_items (
        id               INTEGER PRIMARY KEY,
        order_id         INTEGER NOT NULL REFERENCES orders(id),
        product_id       INTEGER NOT NULL REFERENCES products(id),
        product_name     TEXT NOT NULL,
        unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
        quantity         INTEGER NOT NULL CHECK (quantity > 0)
    );
    CREATE INDEX ix_order_items_order ON order_items (order_id);
    "#,
    ),
    (
        2,
        "embedded queue",
        r#"
    CREATE TABLE queue_messages (
        seq                INTEGER PRIMARY KEY AUTOINCREMENT,
        queue              TEXT NOT NULL,
        message_id         TEXT NOT NULL,
        session_id         TEXT,
        body               TEXT NOT NULL,
        properties         TEXT NOT NULL,
        enqueued_at        TEXT NOT NULL,
        visible_at_ms      INTEGER NOT NULL,
        delivery_count     INTEGER NOT NULL DEFAULT 0,
        locked_until_ms    INTEGER,
        dead_lettered      INTEGER NOT NULL DEFAULT 0,
        dead_letter_reason TEXT,
        UNIQUE (queue, message_id)
    );
    CREATE INDEX ix_queue_messages_ready ON queue_messages (queue, dead_lettered, seq);
    "#,
    ),
    (
        3,
        "queue locks",
        r#"
    ALTER TABLE queue_messages ADD COLUMN lock_token TEXT;
    CREATE INDEX ix_queue_messages_session ON queue_messages (queue, session_id, seq);
    "#,
    ),
    (
        4,
        "dead-letter subqueues and failed orders",
        r#"
    -- Dead letters move to their queue's subqueue '{queue}/$deadletterqueue', where a function
    -- can be triggered by them; dead_lettered = 1 now means parked there for an operator.
    ALTER TABLE queue_messages ADD COLUMN dead_lettered_after INTEGER;
    UPDATE queue_messages
       SET queue = queue || '/$deadletterqueue', dead_lettered = 0,
           dead_lettered_after = delivery_count, delivery_count = 0,
           properties = json_set(properties, '$.DeadLetterReason', COALESCE(dead_letter_reason, ''))
     WHERE dead_lettered = 1 AND queue NOT LIKE '%/$deadletterqueue';
    CREATE TABLE failed_orders (
        correlation_id TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        order_json     TEXT NOT NULL,
        reason         TEXT NOT NULL,
        failed_at      TEXT NOT NULL
    );
    CREATE INDEX ix_failed_orders_failed_at ON failed_orders (failed_at);
    "#,
    ),
    (
        5,
        "session heads",
        r#"
    -- head = 1 marks the messages a receiver may take: those with no session, and the first
    -- waiting message of each session. Receiving is then a range scan of a small index
    -- instead of a per-row search for earlier messages of the same session, which made every
    -- receive O(backlog) once all sessions were busy. An insert computes it (SqliteQueue's one
    -- INSERT); the triggers move it on when a head leaves, whoever removes it.
    ALTER TABLE queue_messages ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
    UPDATE queue_messages SET head = 1
     WHERE dead_lettered = 0 AND (session_id IS NULL OR NOT EXISTS (
           SELECT 1 FROM queue_messages e
            WHERE e.queue = queue_messages.queue AND e.session_id = queue_messages.session_id
              AND e.dead_lettered = 0 AND e.seq < queue_messages.seq));
    CREATE INDEX ix_queue_messages_heads ON queue_messages (queue, seq) WHERE head = 1;
    -- Receiving no longer reads it; every other query has the (queue, ...) unique index.
    DROP INDEX ix_queue_messages_ready;

    -- A head that leaves (settled, or replaced) hands the lead to its session's next message.
    CREATE TRIGGER queue_messages_head_on_delete AFTER DELETE ON queue_messages
    WHEN old.head = 1 AND old.session_id IS NOT NULL
    BEGIN
        UPDATE queue_messages SET head = 1
         WHERE seq = (SELECT MIN(seq) FROM queue_messages
                       WHERE queue = old.queue AND session_id = old.session_id AND dead_lettered = 0);
    END;

    -- Dead-lettered (moved to the subqueue) or parked: the session it left moves on, and
    -- where it went it leads only if nothing of its session waits there before it.
    CREATE TRIGGER queue_messages_head_on_move AFTER UPDATE OF queue, dead_lettered ON queue_messages
    WHEN new.queue <> old.queue OR new.dead_lettered <> old.dead_lettered
    BEGIN
        UPDATE queue_messages SET head = 1
         WHERE old.head = 1 AND old.session_id IS NOT NULL
           AND seq = (SELECT MIN(seq) FROM queue_messages
                       WHERE queue = old.queue AND session_id = old.session_id AND dead_lettered = 0);
        UPDATE queue_messages
           SET head = (new.dead_lettered = 0 AND (new.session_id IS NULL OR NOT EXISTS (
                      SELECT 1 FROM queue_messages e
                       WHERE e.queue = new.queue AND e.session_id = new.session_id
                         AND e.dead_lettered = 0 AND e.seq < new.seq)))
         WHERE seq = new.seq;
    END;
    "#,
    ),
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tracing::info!(version, name, "applying SQLite migration");
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, chrono::Utc::now().to_rfc3339()],
        )?;
    }
    tx.commit()
}
