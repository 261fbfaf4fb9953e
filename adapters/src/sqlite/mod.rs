//! The embedded system of record: one SQLite file in WAL mode.
//!
//! SQLite has one writer, and with `synchronous = FULL` every commit is an fsync: one per call
//! would cap the whole embedded system (intake, both functions, the queue) at the disk's fsync
//! rate. So one thread owns the connection and commits in groups ([`writer`]): each call runs in
//! a savepoint of its own, the calls waiting meanwhile share the transaction, and every caller
//! hears back only after the commit that made its work durable.

mod migrations;
mod orders;
mod queue;
mod writer;

pub use queue::SqliteQueue;

use orders_core::ports::{BackendError, CatalogSource, ErrorKind};
use orders_core::product::{BillingPeriod, Product};
use orders_core::{Money, ProductId};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};

#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<writer::Writer>,
}

/// The writers of the files open in this process, by path.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<writer::Writer>>>> =
    LazyLock::new(Mutex::default);

/// Held across a whole open (look up, open, register), so two concurrent opens of one file
/// cannot start two writer threads.
static OPENING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The file's identity whatever the path's spelling (relative, `..`, links in folders).
fn file_key(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map_or_else(|_| path.to_owned(), |d| d.join(name))
        }
        _ => path.to_owned(),
    }
}

/// Another process holds the write lock (the servers mode's replicas share one file): try
/// again every 250 us, for up to 5 s. SQLite's own busy timeout sleeps 1, 2, 5, 10, 15 ms...
/// between tries (sqlite/sqlite `src/main.c`, `sqliteDefaultBusyCallback`, at `1f436ad5`), so a
/// lock held for one commit, under a millisecond, could cost the waiter 8 ms or more, and with
/// it every call of the waiter's group.
fn wait_for_lock(tries: i32) -> bool {
    const STEP: std::time::Duration = std::time::Duration::from_micros(250);
    const GIVE_UP_AFTER: i32 = 20_000; // tries: 5 s
    if tries >= GIVE_UP_AFTER {
        return false;
    }
    std::thread::sleep(STEP);
    true
}

pub(crate) fn backend(err: impl std::fmt::Display) -> BackendError {
    BackendError::new("sqlite", err)
}

/// A SQLite error, permanent when the same statement would fail again: a constraint, or a
/// value that does not convert (e.g. an order line whose product is not in the catalog).
pub(crate) fn sqlite_error(err: rusqlite::Error) -> BackendError {
    use rusqlite::ErrorCode::ConstraintViolation;
    let permanent = match &err {
        rusqlite::Error::SqliteFailure(e, _) => e.code == ConstraintViolation,
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => true,
        _ => false,
    };
    let kind = if permanent {
        ErrorKind::Permanent
    } else {
        ErrorKind::Transient
    };
    BackendError::caused_by("sqlite", kind, err)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies migrations and upserts the catalog;
    /// a file already open in this process is shared.
    pub async fn open(path: &Path, catalog: Vec<Product>) -> Result<Self, BackendError> {
        let _opening = OPENING.lock().await;
        let key = file_key(path);
        let open = OPEN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .and_then(Weak::upgrade);
        if let Some(writer) = open {
            return Ok(SqliteStore { writer });
        }
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path)?;
            // First: switching a fresh file to WAL takes a lock that another process opening
            // it at the same moment must wait for, not fail on ("database is locked").
            conn.busy_handler(Some(wait_for_lock))?;
            // Every statement the writer runs again stays prepared (rusqlite keeps 16).
            conn.set_prepared_statement_cache_capacity(64);
            // recursive_triggers: a row that `OR REPLACE` deletes fires its delete trigger too
            // (the queue's session heads, migration 5).
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA recursive_triggers = ON;",
            )?;
            migrations::migrate(&mut conn)?;
            upsert_catalog(&mut conn, &catalog)?;
            Ok::<_, rusqlite::Error>(conn)
        })
        .await
        .map_err(backend)?
        .map_err(backend)
        .and_then(|conn| {
            let writer = Arc::new(writer::Writer::start(conn)?);
            let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
            open.retain(|_, w| w.strong_count() > 0);
            open.insert(key, Arc::downgrade(&writer));
            Ok(SqliteStore { writer })
        })
    }

    /// Runs `f` with the connection; `Ok` once what it wrote is committed.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.writer.run(f).await
    }
}

fn upsert_catalog(conn: &mut Connection, products: &[Product]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO products (product_id, name, category, vendor, image_url, price_cents,
                 discount_percent, billing_period, is_subscription, is_active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (product_id) DO UPDATE SET name = excluded.name, category = excluded.category,
                 vendor = excluded.vendor, image_url = excluded.image_url, price_cents = excluded.price_cents,
                 discount_percent = excluded.discount_percent, billing_period = excluded.billing_period,
                 is_subscription = excluded.is_subscription, is_active = excluded.is_active",
        )?;
        for p in products {
            stmt.execute(params![
                p.product_id.as_str(),
                p.name,
                p.category,
                p.vendor,
                p.image_url,
                p.price.cents(),
                p.discount_percent,
                p.billing_period.as_str(),
                p.is_subscription,
                p.is_active,
            ])?;
        }
    }
    tx.commit()
}

fn product_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    let invalid = |i, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let id: String = row.get(0)?;
    let period: String = row.get(7)?;
    Ok(Product {
        product_id: ProductId::parse(&id).map_err(|e| invalid(0, e.to_string()))?,
        name: row.get(1)?,
        category: row.get(2)?,
        vendor: row.get(3)?,
        image_url: row.get(4)?,
        price: Money::from_cents(row.get(5)?),
        discount_percent: row.get(6)?,
        billing_period: period
            .parse::<BillingPeriod>()
            .map_err(|e| invalid(7, e.to_string()))?,
        is_subscription: row.get(8)?,
        is_active: row.get(9)?,
    })
}

#[async_trait::async_trait]
impl CatalogSource for SqliteStore {
    async fn load_products(&self) -> Result<Vec<Product>, BackendError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare(
                "SELECT product_id, name, category, vendor, image_url, price_cents, discount_percent,
                        billing_period, is_subscription, is_active FROM products",
            )?;
            stmt.query_map([], product_from_row)?.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_opens_of_one_file_share_one_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let opens = (0..8).map(|_| SqliteStore::open(&path, Vec::new()));
        let stores: Vec<SqliteStore> = futures::future::try_join_all(opens).await.unwrap();
        for store in &stores[1..] {
            assert!(Arc::ptr_eq(&stores[0].writer, &store.writer));
        }
    }

    /// As a second replica's writer would: its lock is waited for, not reported as an error.
    #[tokio::test]
    async fn a_write_waits_for_another_connections_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.db");
        let store = SqliteStore::open(&path, Vec::new()).await.unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let held = std::time::Duration::from_millis(300);
        let holder = std::thread::spawn(move || {
            std::thread::sleep(held);
            other.execute_batch("COMMIT").unwrap();
        });
        let started = std::time::Instant::now();
        let written = store
            .with_conn(|conn| {
                conn.execute(
                    "INSERT INTO customers (external_id, created_at) VALUES ('u1', 'now')",
                    [],
                )
            })
            .await;
        assert_eq!(written.unwrap(), 1);
        assert!(started.elapsed() >= held, "written while the lock was held");
        holder.join().unwrap();
    }
}
