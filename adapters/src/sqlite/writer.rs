//! Group commit: one thread owns the connection. It takes the first waiting call, then every
//! call queued behind it (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE … COMMIT`, each
//! in its own savepoint, and only then answers them all. A call that fails rolls back its own
//! savepoint and the rest still commit; a failed commit fails every call in the group. One fsync
//! thus serves as many calls as arrived while the previous one ran, and no caller is told
//! "done" before its work is on disk.

use super::backend;
use orders_core::ports::BackendError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Calls per transaction at most, so one commit never waits on an unbounded batch.
const MAX_BATCH: usize = 256;

/// Delivers a call's outcome once the group's commit is known.
type Reply = Box<dyn FnOnce(Result<(), &BackendError>) + Send>;
/// A call: runs on the connection, says whether it succeeded, and how to answer.
type Job = Box<dyn FnOnce(&mut Connection) -> (bool, Reply) + Send>;

pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `conn` to its own thread, which ends when the last handle is dropped.
    pub(super) fn start(conn: Connection) -> Result<Self, BackendError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, &queue))
            .map_err(backend)?;
        Ok(Writer { jobs })
    }

    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let outcome = f(conn).map_err(super::sqlite_error);
            let ok = outcome.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = answer.send(match committed {
                    Ok(()) => outcome,
                    Err(err) => Err(BackendError::new("sqlite", &err.message)),
                });
            });
            (ok, reply)
        });
        self.jobs
            .send(job)
            .map_err(|_| BackendError::new("sqlite", "the writer thread has stopped"))?;
        answered
            .await
            .map_err(|_| BackendError::new("sqlite", "the writer thread dropped a call"))?
    }
}

fn write_loop(mut conn: Connection, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let replies: Vec<Reply> = match run(&conn, "BEGIN IMMEDIATE") {
            Ok(()) => batch
                .into_iter()
                .map(|job| isolated(&mut conn, job))
                .collect(),
            Err(err) => {
                // Dropping the calls unrun fails each of them ("dropped a call").
                tracing::error!(error = %err, calls = batch.len(), "SQLite transaction could not begin");
                continue;
            }
        };
        let committed = run(&conn, "COMMIT").map_err(backend);
        if committed.is_err() {
            let _ = run(&conn, "ROLLBACK");
        }
        for reply in replies {
            reply(committed.as_ref().map(|_| ()));
        }
    }
}

/// Runs one call in a savepoint; its failure (or panic) undoes only its own writes.
fn isolated(conn: &mut Connection, job: Job) -> Reply {
    if let Err(err) = run(conn, "SAVEPOINT call") {
        // The call is dropped unrun, which fails it.
        tracing::error!(error = %err, "SQLite savepoint failed");
        return Box::new(|_: Result<(), &BackendError>| {});
    }
    let ran = catch_unwind(AssertUnwindSafe(|| job(conn)));
    let (ok, reply) = match ran {
        Ok(done) => done,
        Err(_) => (false, Box::new(|_: Result<(), &BackendError>| {}) as Reply),
    };
    let undone = if ok {
        Ok(())
    } else {
        run(conn, "ROLLBACK TO call")
    };
    if let Err(err) = undone.and_then(|()| run(conn, "RELEASE call")) {
        tracing::error!(error = %err, "SQLite savepoint could not end");
    }
    reply
}

/// One of the writer's own statements, prepared once: they run for every call and every
/// group, and parsing them each time was 3% of the writer thread's CPU.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}
