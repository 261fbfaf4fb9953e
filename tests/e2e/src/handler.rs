//! The handler binary as a child process, for tests that talk to it as the Functions host does.

use crate::SIGNING_KEY;
use reqwest::Response;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};
use tokio::process::{Child, Command};

/// A free loopback port, closed again: nothing listens there.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `target/debug/handler` beside this test's executable (`target/debug/deps/`), or `HANDLER_BIN`.
pub fn handler_binary() -> PathBuf {
    let name = format!("handler{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().expect("test executable");
    let beside_us = exe.parent().map(|deps| deps.join("..").join(&name));
    let in_target = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/debug")
        .join(&name);
    let path = std::env::var_os("HANDLER_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(beside_us)
        .chain([in_target])
        .find(|p| p.is_file())
        .expect("no handler binary: build it with `cargo build -p orders-functions --bin handler`");
    warn_if_stale(&path);
    path
}

/// A handler older than the sources tests old code: say so loudly.
fn warn_if_stale(binary: &Path) {
    fn newest(dir: &Path) -> Option<SystemTime> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    newest(&path)
                } else {
                    entry.metadata().and_then(|m| m.modified()).ok()
                }
            })
            .max()
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok();
    let sources = ["functions/src", "adapters/src", "core/src"]
        .iter()
        .filter_map(|dir| newest(&root.join(dir)))
        .max();
    if let (Some(built), Some(sources)) = (built, sources)
        && sources > built
    {
        eprintln!(
            "WARNING: {} is older than its sources; rebuild it with \
             `cargo build -p orders-functions --bin handler`",
            binary.display()
        );
    }
}

/// The real `handler` binary as the Functions host runs it: a child process on
/// `FUNCTIONS_CUSTOMHANDLER_PORT`, with its own data directory and log.
pub struct HandlerProcess {
    pub base: String,
    pub client: reqwest::Client,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl HandlerProcess {
    /// Starts the handler with `vars` (plus a port, a data directory and the dev signing key),
    /// and returns it once its port accepts connections, with how long that took.
    pub async fn start(vars: &[(&str, &str)]) -> (HandlerProcess, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port();
        let log = dir.path().join("handler.log");
        let started = Instant::now();
        let child = Command::new(handler_binary())
            .env_clear()
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("DATA_DIR", dir.path().join("data"))
            .env("JWT_SIGNING_KEY", SIGNING_KEY)
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .kill_on_drop(true)
            .spawn()
            .expect("the handler starts");
        let mut handler = HandlerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            log,
            _dir: dir,
        };
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = handler.child.try_wait() {
                panic!("the handler exited ({status}):\n{}", handler.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the handler never listened:\n{}",
                handler.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let bound = started.elapsed();
        (handler, bound)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Readiness: its status code and body.
    pub async fn readiness(&self) -> (u16, Value) {
        let res = self.get("/api/health", None).await;
        (res.status().as_u16(), res.json().await.unwrap())
    }

    pub async fn token(&self, user: &str) -> String {
        crate::dev_token(&self.client, &self.base, user).await
    }

    /// Places an order for one AZ-104, expecting 202; returns its correlation id.
    pub async fn place(&self, token: &str) -> String {
        crate::place_order(&self.client, &self.base, token, "AZ-104", 1).await
    }

    /// POSTs `body` as JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Waits until readiness answers 200.
    pub async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let (status, health) = self.readiness().await;
            if status == 200 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "not ready: {health}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A number from its SQLite file (`SQL_PROVIDER=sqlite`).
    pub fn sqlite_count(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.data_dir().join("orders.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// Asserts the handler is still running (nothing made it exit).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the handler exited ({status}):\n{}", self.log());
        }
    }
}
