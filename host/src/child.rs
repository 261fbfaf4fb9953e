//! The handler as a child process, as the Functions host runs it: started with
//! `FUNCTIONS_CUSTOMHANDLER_PORT`, waited for, restarted if it dies, and stopped with the host.

use anyhow::Context;
use orders_core::secret::Secret;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Finds the handler executable: `HANDLER_BIN`, the app root's executable, or the one built
/// next to this emulator (`target/<profile>/handler`, also from a test binary in `deps/`).
pub fn locate(root: &Path, executable: &str, explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let beside_us = exe_dir
        .iter()
        .flat_map(|dir| [dir.join(executable), dir.join("..").join(executable)]);
    explicit
        .into_iter()
        .chain([root.join(executable)])
        .chain(beside_us)
        .find(|p| p.is_file())
        .with_context(|| {
            format!("no handler executable {executable:?}: build it or set HANDLER_BIN")
        })
}

/// A free loopback port (the OS picks; the tiny window before the child binds is acceptable).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `HttpWorkerOptions.InitializationTimeout`'s default.
const INITIALIZATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start the handler.
#[derive(Debug, Clone)]
pub struct Launch {
    pub executable: PathBuf,
    pub port: u16,
    /// Extra environment (the child inherits ours too).
    pub env: Vec<(String, Secret)>,
}

impl Launch {
    async fn start(&self) -> anyhow::Result<Child> {
        let child = Command::new(&self.executable)
            .envs(self.env.iter().map(|(k, v)| (k, v.expose())))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", self.port.to_string())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.executable.display()))?;
        // As `DefaultHttpWorkerService.IsWorkerReady`: GET / every 25 ms; any HTTP answer, even
        // a 404, means ready; only a refused connection means wait; 30 s by default.
        let url = format!("http://127.0.0.1:{}/", self.port);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + INITIALIZATION_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if client.get(&url).send().await.is_ok() {
                return Ok(child);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!(
            "Initializing HttpWorker timed out: nothing answered on port {} within {INITIALIZATION_TIMEOUT:?}",
            self.port
        )
    }
}

/// The handler process as invocations see it: which start of it is running, and whether it
/// answers yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub generation: u64,
    pub ready: bool,
}

/// Asks the supervisor to restart one start of the handler; a request for a start that is
/// already gone is ignored, so two timeouts never kill the fresh process.
#[derive(Debug, Clone)]
pub struct Restarts(mpsc::UnboundedSender<u64>);

impl Restarts {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<u64>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Restarts(sender), receiver)
    }

    pub fn request(&self, generation: u64) {
        let _ = self.0.send(generation);
    }
}

/// The running handler, restarted whenever it exits (or a restart is asked) until the host
/// stops.
pub struct Supervised {
    pid: Arc<AtomicU32>,
    worker: watch::Receiver<Worker>,
    restarts: Restarts,
    task: JoinHandle<()>,
}

impl Supervised {
    pub async fn start(launch: Launch, mut stop: watch::Receiver<bool>) -> anyhow::Result<Self> {
        let mut child = launch.start().await?;
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or_default()));
        let shown = Arc::clone(&pid);
        let mut current = Worker {
            generation: 1,
            ready: true,
        };
        let (state, worker) = watch::channel(current);
        let (restarts, mut asked) = Restarts::new();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(generation) = asked.recv() => {
                        if generation != current.generation {
                            continue;
                        }
                        tracing::warn!(generation, "restarting the handler process");
                        let _ = child.kill().await;
                    }
                    status = child.wait() => {
                        tracing::error!(?status, "the handler exited; restarting it");
                    }
                    // The host only ever sends `true`, and a dropped sender means it is gone.
                    _ = stop.changed() => {
                        let _ = child.kill().await;
                        return;
                    }
                }
                current = Worker {
                    generation: current.generation + 1,
                    ready: false,
                };
                state.send_replace(current);
                child = loop {
                    match launch.start().await {
                        Ok(next) => break next,
                        Err(err) => {
                            tracing::error!(error = %err, "the handler cannot be restarted; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                };
                shown.store(child.id().unwrap_or_default(), Ordering::Relaxed);
                current.ready = true;
                state.send_replace(current);
            }
        });
        Ok(Supervised {
            pid,
            worker,
            restarts,
            task,
        })
    }

    /// What invocations wait on, and where they ask for a restart.
    pub fn handle(&self) -> (watch::Receiver<Worker>, Restarts) {
        (self.worker.clone(), self.restarts.clone())
    }

    /// The current handler process id (for tests that kill it).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}
