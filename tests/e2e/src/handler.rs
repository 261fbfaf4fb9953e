//! The handler binary as a child process, for tests that talk to it as the Functions host does.

use crate::SIGNING_KEY;
use reqwest::Response;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};
use tokio::process::{Child, Command};

/// A free loopback port, closed again: nothing listens there.
pub use orders_test_support::free_port as closed_port;

/// `target/debug/handler` beside this test's executable (`target/debug/deps/`), or `HANDLER_BIN`.
pub fn handler_binary() -> PathBuf {
    workspace_binary(
        "handler",
        "orders-functions",
        std::env::var_os("HANDLER_BIN"),
    )
}

/// The workspace binary `name` of `package`, beside this test's executable or in
/// `target/debug` (or at `preferred`, when set and present).
pub fn workspace_binary(
    name: &str,
    package: &str,
    preferred: Option<std::ffi::OsString>,
) -> PathBuf {
    let name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    let exe = std::env::current_exe().expect("test executable");
    let beside_us = exe.parent().map(|deps| deps.join("..").join(&name));
    let in_target = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/debug")
        .join(&name);
    let path = preferred
        .map(PathBuf::from)
        .into_iter()
        .chain(beside_us)
        .chain([in_target])
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {name} binary: build it with `cargo build -p {package}`"));
    warn_if_stale(&path);
    path
}

/// A binary older than the sources tests old code: say so loudly.
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
    let sources = [
        "functions/src",
        "adapters/src",
        "core/src",
        "auth/src",
        "host/src",
        "signalr-hub/src",
    ]
    .iter()
    .filter_map(|dir| newest(&root.join(dir)))
    .max();
    if let (Some(built), Some(sources)) = (built, sources)
        && sources > built
    {
        eprintln!(
            "WARNING: {} is older than its sources; rebuild it with \
             `cargo build --workspace --bins`",
            binary.display()
        );
    }
}

/// A workspace binary run as a child process, its stdout and stderr in one log file; killed
/// when dropped.
pub struct LoggedProcess {
    child: Child,
    log: PathBuf,
}

impl LoggedProcess {
    /// Runs `binary` with `args` and only `vars` in its environment, logging to `log`.
    pub fn spawn(
        binary: &Path,
        args: &[&str],
        vars: &[(&str, &str)],
        log: PathBuf,
    ) -> LoggedProcess {
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .envs(vars.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        LoggedProcess { child, log }
    }

    /// Waits until `port` accepts connections; panics with the log if the process exits first
    /// or 30 s pass.
    pub async fn wait_listening(&mut self, port: u16) {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            self.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never listened on {port}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the process to end by itself (within 30 s).
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after 30 s:\n{}", self.log()))
            .expect("wait for the child")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts the process is still running (nothing made it exit).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the process exited ({status}):\n{}", self.log());
        }
    }
}

/// The real `handler` binary as the Functions host runs it: a child process on
/// `FUNCTIONS_CUSTOMHANDLER_PORT`, with its own data directory and log.
pub struct HandlerProcess {
    pub base: String,
    pub client: reqwest::Client,
    process: LoggedProcess,
    _dir: tempfile::TempDir,
}

impl HandlerProcess {
    /// Starts the handler with `vars` (plus a port, a data directory and the dev signing key),
    /// and returns it once its port accepts connections, with how long that took.
    pub async fn start(vars: &[(&str, &str)]) -> (HandlerProcess, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port().to_string();
        let data = dir.path().join("data");
        let mut env = vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.as_str()),
            ("HOST", "127.0.0.1"),
            ("DATA_DIR", data.to_str().unwrap()),
            ("JWT_SIGNING_KEY", SIGNING_KEY),
            ("RUST_LOG", "info"),
        ];
        env.extend_from_slice(vars);
        let started = Instant::now();
        let mut process =
            LoggedProcess::spawn(&handler_binary(), &[], &env, dir.path().join("handler.log"));
        process.wait_listening(port.parse().unwrap()).await;
        let bound = started.elapsed();
        let handler = HandlerProcess {
            process,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _dir: dir,
        };
        (handler, bound)
    }

    pub fn log(&self) -> String {
        self.process.log()
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
        self.process.assert_running();
    }
}
