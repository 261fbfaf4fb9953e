//! `sqlite`: the embedded mode's storage ceiling. Rows shaped like the durable queue's (a random
//! message id under a unique index, a ~600-byte body) inserted into a fresh file with the
//! pragmas `SqliteStore` opens with (WAL, `synchronous = FULL`): one row per transaction (one
//! fsync each, what a lone caller costs) and `--batch` rows per transaction (what the group
//! commit reaches when many callers wait).

use crate::round3;
use anyhow::Context;
use rusqlite::{Connection, params};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct SqliteArgs {
    /// A directory for the throwaway database file.
    #[arg(long)]
    dir: PathBuf,
    /// Rows inserted one per transaction.
    #[arg(long, default_value_t = 2_000)]
    single: u64,
    /// Rows inserted in batches.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Rows per transaction in the batched run.
    #[arg(long, default_value_t = 64)]
    batch: u64,
}

pub fn sqlite(args: SqliteArgs) -> anyhow::Result<()> {
    let path = args.dir.join("ceiling.db");
    let _ = std::fs::remove_file(&path);
    let mut conn =
        Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,
             message_id TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (queue, message_id));",
    )?;
    let body = "x".repeat(600);
    let single = insert_rate(&mut conn, &body, args.single, 1)?;
    let batched = insert_rate(&mut conn, &body, args.rows, args.batch.max(1))?;
    println!(
        "SQLITE single-row-transactions rows={} rows_per_s={single:.0}; batched rows={} batch={} rows_per_s={batched:.0}",
        args.single, args.rows, args.batch
    );
    println!(
        "{}",
        serde_json::json!({
            "single_rows_per_s": round3(single),
            "batched_rows_per_s": round3(batched),
            "batch": args.batch,
        })
    );
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}

/// Rows per second inserting `rows` rows, `batch` per transaction.
fn insert_rate(conn: &mut Connection, body: &str, rows: u64, batch: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut done = 0;
    while done < rows {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (queue, message_id, body) VALUES ('q', ?1, ?2)",
            )?;
            for _ in 0..batch.min(rows - done) {
                insert.execute(params![uuid::Uuid::new_v4().to_string(), body])?;
                done += 1;
            }
        }
        tx.commit()?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
