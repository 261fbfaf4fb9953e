//! Wiring: settings -> adapters -> state -> router. `main` and the tests both start the app here.

use crate::config::{AuthSettings, BrokerSettings, Settings, SqlSettings};
use crate::{api, dev_key};
use anyhow::Context;
use axum::Router;
use orders_adapters::memory::{MemoryFanout, MemoryState};
use orders_adapters::namespaced::Namespaced;
use orders_adapters::rabbitmq::RabbitQueue;
use orders_adapters::redis::{RedisFanout, RedisState};
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_adapters::sqlserver::{SqlServerAuth, SqlServerConfig, SqlServerStore};
use orders_auth::{DevTokenIssuer, KeySource, TokenValidator, ValidatorConfig};
use orders_core::catalog::Catalog;
use orders_core::ports::{
    CatalogSource, NotificationFanout, OrderStore, QueueTransport, WorkflowState,
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
    /// Intake publishes here; the local host receives from here in the embedded mode.
    pub broker: Arc<dyn QueueTransport>,
    pub fanout: Arc<dyn NotificationFanout>,
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
        let db_path = settings.data_dir.join("orders.db");
        let sqlite = SqliteStore::open(&db_path, orders_adapters::seed::products()).await?;
        let (store, catalog_source) = system_of_record(&settings.sql, &sqlite).await?;
        let catalog = Arc::new(Catalog::new(catalog_source.load_products().await?));
        tracing::info!(products = catalog.len(), "catalog loaded");
        let broker = broker(&settings, sqlite).await?;
        let (workflow, fanout) = state_and_fanout(&settings).await?;
        let (auth, dev_tokens) = authentication(&settings)?;
        Ok(AppState {
            catalog,
            store,
            workflow,
            broker,
            fanout,
            auth: Arc::new(auth),
            dev_tokens: dev_tokens.map(Arc::new),
            settings: Arc::new(settings),
        })
    }
}

/// The SQL store the settings name. In the SQL Server modes the SQLite file still holds the
/// embedded queue until a broker replaces it.
async fn system_of_record(
    sql: &SqlSettings,
    sqlite: &SqliteStore,
) -> anyhow::Result<(Arc<dyn OrderStore>, Arc<dyn CatalogSource>)> {
    match sql {
        SqlSettings::Sqlite => Ok((Arc::new(sqlite.clone()), Arc::new(sqlite.clone()))),
        SqlSettings::SqlServer {
            connection_string,
            entra_id,
            managed_identity_client_id,
        } => {
            let auth = match entra_id {
                true => SqlServerAuth::EntraId {
                    managed_identity_client_id: managed_identity_client_id.clone(),
                },
                false => SqlServerAuth::SqlLogin,
            };
            let config = SqlServerConfig {
                connection_string: connection_string.clone(),
                auth,
            };
            let server = SqlServerStore::connect(config, orders_adapters::seed::products()).await?;
            Ok((Arc::new(server.clone()), Arc::new(server)))
        }
    }
}

/// The broker for a process that does not hold the app's state (the local host in process
/// mode): opens the SQLite file itself when the queue is embedded.
pub async fn open_broker(settings: &Settings) -> anyhow::Result<Arc<dyn QueueTransport>> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let sqlite = SqliteStore::open(
        &settings.data_dir.join("orders.db"),
        orders_adapters::seed::products(),
    )
    .await?;
    broker(settings, sqlite).await
}

/// The queue broker: the SQLite file's queue tables, or RabbitMQ.
async fn broker(
    settings: &Settings,
    sqlite: SqliteStore,
) -> anyhow::Result<Arc<dyn QueueTransport>> {
    let transport: Arc<dyn QueueTransport> = match &settings.broker {
        BrokerSettings::Embedded => Arc::new(SqliteQueue::new(sqlite)),
        BrokerSettings::RabbitMq { url, shards } => {
            Arc::new(RabbitQueue::connect(url, usize::from(*shards)).await?)
        }
    };
    Ok(Namespaced::wrap(transport, &settings.queue_namespace))
}

/// Workflow state and notification fan-out: Redis when configured, in-process otherwise.
async fn state_and_fanout(
    settings: &Settings,
) -> anyhow::Result<(Arc<dyn WorkflowState>, Arc<dyn NotificationFanout>)> {
    match &settings.redis_url {
        None => Ok((Arc::new(MemoryState::new()), Arc::new(MemoryFanout::new()))),
        Some(url) => Ok((
            Arc::new(RedisState::connect(url).await?),
            Arc::new(RedisFanout::connect(url, &settings.fanout_prefix).await?),
        )),
    }
}

fn authentication(settings: &Settings) -> anyhow::Result<(TokenValidator, Option<DevTokenIssuer>)> {
    let issuer = settings.jwt_issuer.clone();
    let audience = settings.jwt_audience.clone();
    match &settings.auth {
        AuthSettings::Dev { signing_key } => {
            let secret = match signing_key {
                Some(key) => key.as_bytes().to_vec(),
                None => dev_key::load_or_create(&settings.data_dir)?,
            };
            tracing::warn!(
                "AUTH_MODE=dev: tokens are HS256 with a local key and POST /dev/token is open"
            );
            let dev = DevTokenIssuer::new(&secret, &issuer, &audience, DEV_TOKEN_LIFETIME);
            let keys = KeySource::SharedSecret(secret);
            Ok((
                TokenValidator::new(ValidatorConfig {
                    issuer,
                    audience,
                    keys,
                }),
                Some(dev),
            ))
        }
        AuthSettings::Oidc { min_key_refresh } => {
            let keys = KeySource::Oidc {
                min_key_refresh: *min_key_refresh,
            };
            Ok((
                TokenValidator::new(ValidatorConfig {
                    issuer,
                    audience,
                    keys,
                }),
                None,
            ))
        }
    }
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
