//! Wiring: settings -> adapters -> state -> router. `main` and the tests both start the app here.

use crate::api;
use crate::config::{BrokerSettings, Settings};
use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use orders_adapters::deferred::{Connection, Deferred};
use orders_adapters::memory::{MemoryFanout, MemoryState};
use orders_adapters::namespaced::Namespaced;
use orders_adapters::rabbitmq::RabbitQueue;
use orders_adapters::redis::{RedisFanout, RedisState};
use orders_adapters::servicebus::ServiceBusPublisher;
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_adapters::system_of_record::{SqlSettings, SystemOfRecord};
use orders_auth::{DevTokenIssuer, TokenValidator};
use orders_core::catalog::Catalog;
use orders_core::ports::{
    BackendError, MessagePublisher, NotificationFanout, OrderStore, QueueTransport, WorkflowState,
};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything a request handler can reach. Cloned for every request (axum's `State`), so it is
/// one shared pointer rather than a dozen: cloning and dropping the dozen was 4% of intake's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every clone of [`AppState`] points to.
pub struct Shared {
    /// The catalog shipped with the binary until SQL's is loaded, then SQL's.
    pub catalog: LiveCatalog,
    pub store: Arc<dyn OrderStore>,
    pub workflow: Arc<dyn WorkflowState>,
    /// Intake publishes here.
    pub publisher: Arc<dyn MessagePublisher>,
    /// The same queues as a transport the local host can receive from (embedded mode); none
    /// on Service Bus, where the Functions host's bindings receive.
    pub queues: Option<Arc<dyn QueueTransport>>,
    pub fanout: Arc<dyn NotificationFanout>,
    /// The in-process fan-out behind `fanout` when there is no Redis: a hub sharing this
    /// process (the embedded mode) subscribes to it.
    pub local_fanout: Option<MemoryFanout>,
    pub auth: Arc<TokenValidator>,
    pub dev_tokens: Option<Arc<DevTokenIssuer>>,
    pub settings: Arc<Settings>,
    /// What readiness reports: sql, state, fanout and queue.
    pub dependencies: Arc<[Dependency]>,
}

const DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// The catalog intake and the product endpoints read, replaceable while they read it.
#[derive(Clone)]
pub struct LiveCatalog(Arc<RwLock<Arc<Catalog>>>);

impl LiveCatalog {
    pub fn new(catalog: Catalog) -> Self {
        LiveCatalog(Arc::new(RwLock::new(Arc::new(catalog))))
    }

    /// The catalog as it is now.
    pub fn current(&self) -> Arc<Catalog> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn replace(&self, catalog: Catalog) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
    }
}

/// A dependency as readiness reports it.
#[derive(Clone)]
pub struct Dependency {
    /// `sql`, `state`, `fanout` or `queue`.
    pub role: &'static str,
    /// `sqlite`, `sqlserver`, `redis`, `memory`, `embedded`, `rabbitmq` or `servicebus`.
    pub backend: &'static str,
    /// Still connecting in the background; `None` when opened at start-up (a local file, an
    /// in-process store, a client that connects per request).
    pending: Option<Arc<dyn Connection>>,
}

impl Dependency {
    fn opened(role: &'static str, backend: &'static str) -> Self {
        Dependency {
            role,
            backend,
            pending: None,
        }
    }

    fn deferred<T: ?Sized + Send + Sync + 'static>(
        role: &'static str,
        backend: &'static str,
        port: &Deferred<T>,
    ) -> Self {
        Dependency {
            role,
            backend,
            pending: Some(Arc::new(port.clone())),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.pending.as_ref().is_none_or(|p| p.is_connected())
    }
}

impl AppState {
    /// Opens the adapters the settings name. Local ones (the SQLite file under the data
    /// directory, in-process state) are opened now; servers (SQL Server, RabbitMQ, Redis) are
    /// connected to in the background, retrying until they answer, while their ports answer
    /// "not connected yet" (503 from the API). Only invalid configuration fails here.
    pub async fn from_settings(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let (auth, dev_tokens) = authentication(&settings)?;
        let catalog = LiveCatalog::new(Catalog::new(orders_adapters::seed::products()));
        let (store, sql) = open_store(&settings, &catalog).await?;
        let (publisher, queues, queue) = open_publisher(&settings).await?;
        let ((workflow, fanout, local_fanout), [state, fanout_dependency]) =
            state_and_fanout(&settings)?;
        Ok(AppState(Arc::new(Shared {
            catalog,
            store,
            workflow,
            publisher,
            queues,
            fanout,
            local_fanout,
            auth: Arc::new(auth),
            dev_tokens: dev_tokens.map(Arc::new),
            settings: Arc::new(settings),
            dependencies: Arc::new([sql, state, fanout_dependency, queue]),
        })))
    }

    /// True once every dependency is connected.
    pub fn connected(&self) -> bool {
        self.dependencies.iter().all(Dependency::is_connected)
    }

    /// True once the dependencies in `roles` are connected.
    pub fn connected_to(&self, roles: &[&str]) -> bool {
        self.dependencies
            .iter()
            .filter(|d| roles.contains(&d.role))
            .all(Dependency::is_connected)
    }

    /// Waits up to `limit` for the dependencies in `roles` to be connected; whether they are.
    pub async fn wait_connected(&self, roles: &[&str], limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.connected_to(roles) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }
}

/// The system of record: SQLite now, SQL Server in the background. Either way its catalog
/// replaces the bundled one once loaded.
async fn open_store(
    settings: &Settings,
    catalog: &LiveCatalog,
) -> anyhow::Result<(Arc<dyn OrderStore>, Dependency)> {
    let context = (
        settings.sql.clone(),
        settings.data_dir.clone(),
        catalog.clone(),
    );
    match &settings.sql {
        SqlSettings::Sqlite => Ok((
            open_sql(context).await?,
            Dependency::opened("sql", "sqlite"),
        )),
        SqlSettings::SqlServer(config) => {
            config.check()?;
            let store = Deferred::connect("sql", context, open_sql);
            let dependency = Dependency::deferred("sql", "sqlserver", &store);
            Ok((Arc::new(store), dependency))
        }
    }
}

/// Connects, migrates, loads the catalog: one attempt.
async fn open_sql(
    (sql, data_dir, catalog): (SqlSettings, PathBuf, LiveCatalog),
) -> Result<Arc<dyn OrderStore>, BackendError> {
    let record = SystemOfRecord::open(&sql, &data_dir).await?;
    let products = Catalog::new(record.catalog.load_products().await?);
    tracing::info!(products = products.len(), "catalog loaded from SQL");
    catalog.replace(products);
    Ok(record.orders)
}

/// Intake's publisher, and the queues as a transport when this process can also receive.
async fn open_publisher(
    settings: &Settings,
) -> anyhow::Result<(
    Arc<dyn MessagePublisher>,
    Option<Arc<dyn QueueTransport>>,
    Dependency,
)> {
    let (queues, dependency): (Arc<dyn QueueTransport>, _) = match &settings.broker {
        BrokerSettings::ServiceBus(service_bus) => {
            let publisher = Arc::new(ServiceBusPublisher::new(service_bus)?);
            return Ok((publisher, None, Dependency::opened("queue", "servicebus")));
        }
        BrokerSettings::Embedded => (
            open_broker(settings).await?,
            Dependency::opened("queue", "embedded"),
        ),
        BrokerSettings::RabbitMq { url, shards } => {
            let context = (url.clone(), *shards, settings.queue_namespace.clone());
            let queues =
                Deferred::connect("rabbitmq", context, |(url, shards, namespace)| async move {
                    connect_rabbitmq(url.expose(), shards, &namespace).await
                });
            let dependency = Dependency::deferred("queue", "rabbitmq", &queues);
            (Arc::new(queues), dependency)
        }
    };
    Ok((
        Arc::clone(&queues) as Arc<dyn MessagePublisher>,
        Some(queues),
        dependency,
    ))
}

/// The queue broker: the queue tables of the SQLite file in the data directory, or RabbitMQ.
/// The local host opens its own handle with this, beside the handler's. Service Bus is
/// received by the Azure Functions host, never by ours.
pub async fn open_broker(settings: &Settings) -> anyhow::Result<Arc<dyn QueueTransport>> {
    match &settings.broker {
        BrokerSettings::Embedded => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let path = settings.data_dir.join("orders.db");
            let store = SqliteStore::open(&path, orders_adapters::seed::products()).await?;
            let transport: Arc<dyn QueueTransport> = Arc::new(SqliteQueue::new(store));
            Ok(Namespaced::wrap(transport, &settings.queue_namespace))
        }
        BrokerSettings::RabbitMq { url, shards } => {
            Ok(connect_rabbitmq(url.expose(), *shards, &settings.queue_namespace).await?)
        }
        BrokerSettings::ServiceBus(_) => anyhow::bail!(
            "QUEUE_TRANSPORT=servicebus is received by the Azure Functions host; \
             the local host and tools use embedded or rabbitmq"
        ),
    }
}

async fn connect_rabbitmq(
    url: &str,
    shards: u16,
    namespace: &str,
) -> Result<Arc<dyn QueueTransport>, BackendError> {
    let queue = RabbitQueue::connect(url, usize::from(shards)).await?;
    Ok(Namespaced::wrap(Arc::new(queue), namespace))
}

/// Workflow state and notification fan-out: Redis (connected to in the background) when
/// configured, in-process otherwise.
fn state_and_fanout(
    settings: &Settings,
) -> Result<(StateAndFanout, [Dependency; 2]), BackendError> {
    let Some(url) = &settings.redis_url else {
        let local = MemoryFanout::new();
        return Ok((
            (
                Arc::new(MemoryState::new()),
                Arc::new(local.clone()),
                Some(local),
            ),
            [
                Dependency::opened("state", "memory"),
                Dependency::opened("fanout", "memory"),
            ],
        ));
    };
    orders_adapters::redis::check_url(url.expose())?;
    let state = Deferred::connect("redis", url.clone(), |url| async move {
        Ok(Arc::new(RedisState::connect(url.expose()).await?) as Arc<dyn WorkflowState>)
    });
    let context = (url.clone(), settings.fanout_prefix.clone());
    let fanout = Deferred::connect("redis fan-out", context, |(url, prefix)| async move {
        Ok(Arc::new(RedisFanout::connect(url.expose(), &prefix).await?)
            as Arc<dyn NotificationFanout>)
    });
    let dependencies = [
        Dependency::deferred("state", "redis", &state),
        Dependency::deferred("fanout", "redis", &fanout),
    ];
    Ok(((Arc::new(state), Arc::new(fanout), None), dependencies))
}

type StateAndFanout = (
    Arc<dyn WorkflowState>,
    Arc<dyn NotificationFanout>,
    Option<MemoryFanout>,
);

/// The token validator, and in dev mode the issuer of `POST /dev/token` tokens (same key).
fn authentication(settings: &Settings) -> anyhow::Result<(TokenValidator, Option<DevTokenIssuer>)> {
    let auth = &settings.auth;
    let secret = auth
        .dev_secret(&settings.data_dir, true)
        .context("reading the dev signing key")?;
    let dev = secret.as_deref().map(|secret| {
        tracing::warn!(
            "AUTH_MODE=dev: tokens are HS256 with a local key and POST /dev/token is open"
        );
        DevTokenIssuer::new(secret, &auth.issuer, &auth.audience, DEV_TOKEN_LIFETIME)
    });
    Ok((auth.validator(secret), dev))
}

/// A bound, ready-to-serve app.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Bind first: the Functions host gives a custom handler about 30 s to listen, and
        // servers that are slow to answer are connected to in the background anyway.
        let addr = (settings.host, settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr:?}"))?;
        let state = AppState::from_settings(settings).await?;
        Ok(App {
            listener,
            router: api::router(state),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = self.listener.tap_io(|tcp| {
            // Answers go out as written, not held back by Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
