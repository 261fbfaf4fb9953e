//! The local Azure Functions host emulator. It does what `func start` does for this app, so the
//! handler that passes here is the handler that runs in Azure:
//!
//! - reads `host.json` and every `function.json` ([`app_dir`]);
//! - runs the custom handler, as a child process on `FUNCTIONS_CUSTOMHANDLER_PORT` or, in the
//!   embedded mode, in this process through the very same HTTP contract ([`handler`]);
//! - passes HTTP requests for HTTP-triggered functions through unchanged ([`front_door`]);
//! - in the embedded mode, serves the shop's SPA ([`web`]) and the SignalR hub (`/hubs`) on the
//!   same origin, the hub fed by the handler's in-process fan-out;
//! - drives the queue triggers with the `{Data, Metadata}` payload the real host sends
//!   ([`invocation`]), applies output bindings and settles messages as the Service Bus and
//!   RabbitMQ extensions do ([`extensions`], [`sessions`], [`trigger`]).

pub mod app_dir;
mod backlog;
pub mod child;
pub mod extensions;
pub mod front_door;
pub mod handler;
pub mod invocation;
pub mod sessions;
pub mod tls;
pub mod trigger;
pub mod web;

use anyhow::Context;
use app_dir::{FunctionApp, Trigger};
use axum::serve::ListenerExt;
use extensions::Extension;
use handler::Handler;
use orders_adapters::redis::RedisFanout;
use orders_core::env::{ConfigError, Env};
use orders_core::ports::{NotificationHistory, QueueTransport};
use orders_core::secret::Secret;
use orders_functions::{AppState, Settings};
use sessions::SessionSlots;
use signalr_hub::{FanoutSource, Hub, Limits, StatusLookup};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use trigger::{LockRenewal, QueueTrigger};
use web::Site;

/// The emulator's own settings (the handler reads its settings from the same environment).
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub root: PathBuf,
    pub host: IpAddr,
    pub port: u16,
    /// Run the handler in this process (embedded mode) instead of as a child process.
    pub in_process: bool,
    pub handler_bin: Option<PathBuf>,
    /// Deliveries after which a failing message is dead-lettered. In Azure this is the queue's
    /// `maxDeliveryCount` (set in infra-bicep), not a host.json setting; locally
    /// `HOST_MAX_DELIVERY_COUNT`, default 10 as there.
    pub max_delivery_count: u32,
    /// Receive loops per queue trigger; host.json's concurrency settings when unset.
    pub workers: Option<usize>,
    /// Extra environment for the handler child process (it inherits ours as well); values
    /// may carry credentials, so they never print.
    pub handler_env: Vec<(String, Secret)>,
    /// The built SPA to serve at `/` (`WEB_DIST`, else `web/dist` when built).
    pub web_dist: Option<PathBuf>,
    /// Limits of the hub served in the embedded mode (the hub's own `HUB_*` settings).
    pub hub_limits: Limits,
    /// `LOCAL_HTTPS=true`: serve HTTPS and WSS with the development certificate kept in this
    /// folder (`DATA_DIR/tls`).
    pub https: Option<PathBuf>,
}

impl HostSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// The settings from `get`; a bad value is an error naming the variable, never clamped.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let env = Env::new(get);
        let in_process = match env.string("HOST_MODE").as_deref().unwrap_or("embedded") {
            "embedded" => true,
            "process" => false,
            other => anyhow::bail!("HOST_MODE {other:?} is not embedded or process"),
        };
        let workers = match env.string("HOST_WORKERS") {
            Some(_) => Some(env.ranged("HOST_WORKERS", 1, 1..=1024)?),
            None => None,
        };
        Ok(HostSettings {
            root: app_root(&env)?,
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port: env.parse("PORT", 7071)?,
            in_process,
            handler_bin: env.existing_path("HANDLER_BIN", "the handler executable")?,
            // Service Bus allows 1 to 2000 (a queue's maxDeliveryCount).
            max_delivery_count: env.ranged("HOST_MAX_DELIVERY_COUNT", 10, 1..=2000)?,
            workers,
            handler_env: Vec::new(),
            web_dist: web::locate(env.existing_path("WEB_DIST", "a built SPA")?),
            hub_limits: Limits::from_env(&env)?,
            https: env.parse("LOCAL_HTTPS", false)?.then(|| {
                PathBuf::from(env.string("DATA_DIR").unwrap_or_else(|| ".data".into())).join("tls")
            }),
        })
    }
}

/// `APP_ROOT`: the function app's folder, holding host.json.
fn app_root(env: &Env) -> Result<PathBuf, ConfigError> {
    let root = env.directory("APP_ROOT", ".")?;
    if !root.join("host.json").is_file() {
        return Err(ConfigError::new(
            "APP_ROOT",
            format!("{} holds no host.json", root.display()),
        ));
    }
    Ok(root)
}

/// A running host; `stop` shuts it down gracefully.
pub struct RunningHost {
    pub port: u16,
    /// `https` with `LOCAL_HTTPS`, else `http`.
    pub scheme: &'static str,
    shutdown: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    server: JoinHandle<std::io::Result<()>>,
    child: Option<child::Supervised>,
}

impl RunningHost {
    /// Stops taking messages, lets in-flight invocations finish and settle, stops serving HTTP,
    /// then ends the handler.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        let _ = self.server.await;
        if let Some(child) = self.child {
            child.stopped().await;
        }
    }

    /// The handler child's process id, in process mode.
    pub fn handler_pid(&self) -> Option<u32> {
        self.child.as_ref().map(child::Supervised::pid)
    }
}

pub async fn start(
    settings: HostSettings,
    handler_settings: Settings,
) -> anyhow::Result<RunningHost> {
    let app = FunctionApp::load(&settings.root)?;
    let site = settings.web_dist.as_deref().map(Site::open).transpose()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (handler, transport, child, hub) = if settings.in_process {
        let state = AppState::from_settings(handler_settings).await?;
        let transport = state
            .queues
            .clone()
            .context("the local host drives QUEUE_TRANSPORT embedded or rabbitmq")?;
        let hub = embedded_hub(&state, settings.hub_limits.clone()).await?;
        (
            Handler::InProcess(orders_functions::api::router(state)),
            transport,
            None,
            Some(hub),
        )
    } else {
        let exe = child::locate(
            &settings.root,
            &app.host.executable,
            settings.handler_bin.clone(),
        )?;
        let launch = child::Launch {
            executable: exe,
            port: child::free_port()?,
            env: settings.handler_env.clone(),
        };
        let port = launch.port;
        let child = child::Supervised::start(launch, shutdown_rx.clone()).await?;
        let transport = orders_functions::app::open_broker(&handler_settings).await?;
        let (worker, restarts) = child.handle();
        (
            Handler::remote(port, worker, restarts),
            transport,
            Some(child),
            None,
        )
    };
    let workers = spawn_triggers(&app, &settings, &handler, &transport, &shutdown_rx);
    let listener = TcpListener::bind((settings.host, settings.port))
        .await
        .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
    let port = listener.local_addr()?.port();
    let backlogs = backlog::Backlogs::new(Arc::clone(&transport), trigger_queues(&app));
    let mut router =
        backlog::router(Arc::new(backlogs)).merge(front_door::router(&app, handler, site));
    if let Some(hub) = &hub {
        router = router.merge(signalr_hub::router(Arc::clone(hub), &[]));
    }
    let mut stop = shutdown_rx.clone();
    let stopped = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
        if let Some(hub) = hub {
            signalr_hub::drain(&hub).await;
        }
    };
    let (server, scheme) = match &settings.https {
        Some(dir) => {
            let listener = tls::TlsListener::new(listener, tls::dev_certificate(dir)?)?;
            let serving = axum::serve(listener, router).with_graceful_shutdown(stopped);
            (tokio::spawn(serving.into_future()), "https")
        }
        None => {
            let listener = listener.tap_io(|tcp| {
                // Pushes and answers go out as written, not held back by Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
            });
            let serving = axum::serve(listener, router).with_graceful_shutdown(stopped);
            (tokio::spawn(serving.into_future()), "http")
        }
    };
    tracing::info!(
        port,
        functions = app.functions.len(),
        in_process = settings.in_process,
        "functions host started"
    );
    Ok(RunningHost {
        port,
        scheme,
        shutdown,
        workers,
        server,
        child,
    })
}

/// The hub on the host's origin. It validates the API's tokens with the API's validator, reads
/// status from the same workflow state and store, and hears the notifier through the in-process
/// fan-out (or through Redis when `REDIS_URL` is set).
async fn embedded_hub(state: &AppState, limits: Limits) -> anyhow::Result<Arc<Hub>> {
    let (source, history): (FanoutSource, Arc<dyn NotificationHistory>) =
        match (&state.local_fanout, &state.settings.redis_url) {
            (Some(local), _) => (Box::new(local.subscribe()), Arc::new(local.clone())),
            (None, Some(url)) => {
                let prefix = &state.settings.fanout_prefix;
                let subscription = RedisFanout::subscribe(url.expose(), prefix)
                    .await
                    .context("subscribing the hub to the backplane")?;
                let history = RedisFanout::connect(url.expose(), prefix)
                    .await
                    .context("connecting the hub to the backplane")?;
                (Box::new(subscription), Arc::new(history))
            }
            (None, None) => anyhow::bail!("no fan-out for the hub to hear"),
        };
    let lookup = StatusLookup {
        state: Some(Arc::clone(&state.workflow)),
        store: Some(Arc::clone(&state.store)),
    };
    let hub = Hub::new(
        Arc::clone(&state.auth),
        lookup,
        limits,
        source.backend(),
        Some(history),
    );
    signalr_hub::spawn_fanout(&hub, source);
    Ok(hub)
}

/// The queues the app's functions are triggered by.
fn trigger_queues(app: &FunctionApp) -> Vec<String> {
    app.functions
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::Queue(binding) => Some(binding.queue.clone()),
            Trigger::Http { .. } => None,
        })
        .collect()
}

fn spawn_triggers(
    app: &FunctionApp,
    settings: &HostSettings,
    handler: &Handler,
    transport: &Arc<dyn QueueTransport>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut workers = Vec::new();
    for function in &app.functions {
        let Trigger::Queue(binding) = &function.trigger else {
            continue;
        };
        let mut binding = binding.clone();
        if app
            .functions
            .iter()
            .any(|f| f.outputs.iter().any(|o| o.queue == binding.queue))
        {
            binding.content_type = extensions::FROM_OUTPUT_BINDING;
        }
        let sessions = binding.sessions.then(|| {
            SessionSlots::new(
                app.host.max_concurrent_sessions,
                app.host.session_idle_timeout,
            )
        });
        let count = match binding.extension {
            // The extension's consumer runs one message at a time (RabbitMQ.Client's dispatch
            // concurrency is 1), so it keeps queue order while nothing fails.
            Extension::RabbitMq => 1,
            Extension::ServiceBus => settings.workers.unwrap_or(if binding.sessions {
                app.host.max_concurrent_sessions
            } else {
                app.host.max_concurrent_calls
            }),
        };
        tracing::info!(function = %function.name, queue = %binding.queue, workers = count, "queue trigger");
        let trigger = QueueTrigger {
            function: function.name.clone(),
            binding,
            outputs: function.outputs.clone(),
            transport: Arc::clone(transport),
            handler: handler.clone(),
            max_delivery_count: settings.max_delivery_count,
            timeout: app.host.function_timeout,
            sessions,
            sequence: Default::default(),
            lock_renewal: LockRenewal {
                every: Duration::from_secs(10),
                up_to: app.host.max_auto_lock_renewal,
            },
        };
        workers.extend(trigger.spawn(count, shutdown.clone()));
    }
    workers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `vars`, in the repository's function app.
    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<HostSettings> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        HostSettings::from_lookup(&|name| {
            vars.iter()
                .chain(&[("APP_ROOT", root)])
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn refuses_values_that_would_stop_or_bend_the_host() {
        for (name, value) in [
            ("HOST_WORKERS", "0"),
            ("HOST_MAX_DELIVERY_COUNT", "0"),
            ("HOST_MAX_DELIVERY_COUNT", "5000"),
            ("HOST_MODE", "both"),
        ] {
            let err = settings(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
        let ok = settings(&[("HOST_WORKERS", "4"), ("HOST_MAX_DELIVERY_COUNT", "2000")]).unwrap();
        assert_eq!((ok.workers, ok.max_delivery_count), (Some(4), 2000));
    }
}
