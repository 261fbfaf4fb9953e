//! Wiring: settings -> adapters -> state -> router. `main` and the tests both start the app here.

use crate::api;
use crate::config::{BrokerSettings, Settings};
use anyhow::Context;
use axum::Router;
use orders_adapters::memory::{MemoryFanout, MemoryState};
use orders_adapters::namespaced::Namespaced;
use orders_adapters::rabbitmq::RabbitQueue;
use orders_adapters::redis::{RedisFanout, RedisState};
use orders_adapters::servicebus::ServiceBusPublisher;
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_adapters::system_of_record::SystemOfRecord;
use orders_auth::{DevTokenIssuer, TokenValidator};
use orders_core::catalog::Catalog;
use orders_core::ports::{
    MessagePublisher, NotificationFanout, OrderStore, QueueTransport, WorkflowState,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
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
}

const DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);

impl AppState {
    /// Opens the adapters the settings name. In the embedded mode that is one SQLite file under
    /// the data directory (system of record and durable queue) plus in-process workflow state.
    pub async fn from_settings(settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let record = SystemOfRecord::open(&settings.sql, &settings.data_dir).await?;
        let catalog = Arc::new(Catalog::new(record.catalog.load_products().await?));
        tracing::info!(products = catalog.len(), "catalog loaded");
        let (publisher, queues) = open_publisher(&settings).await?;
        let (workflow, fanout, local_fanout) = state_and_fanout(&settings).await?;
        let (auth, dev_tokens) = authentication(&settings)?;
        Ok(AppState {
            catalog,
            store: record.orders,
            workflow,
            publisher,
            queues,
            fanout,
            local_fanout,
            auth: Arc::new(auth),
            dev_tokens: dev_tokens.map(Arc::new),
            settings: Arc::new(settings),
        })
    }
}

/// Intake's publisher, and the queues as a transport when this process can also receive.
async fn open_publisher(
    settings: &Settings,
) -> anyhow::Result<(Arc<dyn MessagePublisher>, Option<Arc<dyn QueueTransport>>)> {
    if let BrokerSettings::ServiceBus(service_bus) = &settings.broker {
        return Ok((Arc::new(ServiceBusPublisher::new(service_bus)?), None));
    }
    let queues = open_broker(settings).await?;
    Ok((
        Arc::clone(&queues) as Arc<dyn MessagePublisher>,
        Some(queues),
    ))
}

/// The queue broker: the queue tables of the SQLite file in the data directory, or RabbitMQ.
/// The local host opens its own handle with this, beside the handler's. Service Bus is
/// received by the Azure Functions host, never by ours.
pub async fn open_broker(settings: &Settings) -> anyhow::Result<Arc<dyn QueueTransport>> {
    let transport: Arc<dyn QueueTransport> = match &settings.broker {
        BrokerSettings::Embedded => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let path = settings.data_dir.join("orders.db");
            let store = SqliteStore::open(&path, orders_adapters::seed::products()).await?;
            Arc::new(SqliteQueue::new(store))
        }
        BrokerSettings::RabbitMq { url, shards } => {
            Arc::new(RabbitQueue::connect(url, usize::from(*shards)).await?)
        }
        BrokerSettings::ServiceBus(_) => anyhow::bail!(
            "QUEUE_TRANSPORT=servicebus is received by the Azure Functions host; \
             the local host and tools use embedded or rabbitmq"
        ),
    };
    Ok(Namespaced::wrap(transport, &settings.queue_namespace))
}

/// Workflow state and notification fan-out: Redis when configured, in-process otherwise.
async fn state_and_fanout(settings: &Settings) -> anyhow::Result<StateAndFanout> {
    match &settings.redis_url {
        None => {
            let local = MemoryFanout::new();
            Ok((
                Arc::new(MemoryState::new()),
                Arc::new(local.clone()),
                Some(local),
            ))
        }
        Some(url) => Ok((
            Arc::new(RedisState::connect(url).await?),
            Arc::new(RedisFanout::connect(url, &settings.fanout_prefix).await?),
            None,
        )),
    }
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
        let addr = (settings.host, settings.port);
        let state = AppState::from_settings(settings).await?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr:?}"))?;
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
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
