//! Wiring: settings -> adapters -> state -> router. `main` and the tests both start the app here.

use crate::config::{AuthSettings, Settings, SqlSettings};
use crate::{api, dev_key};
use anyhow::Context;
use axum::Router;
use orders_adapters::memory::MemoryState;
use orders_adapters::sqlite::{SqliteQueue, SqliteStore};
use orders_adapters::sqlserver::{SqlServerAuth, SqlServerConfig, SqlServerStore};
use orders_auth::{DevTokenIssuer, KeySource, TokenValidator, ValidatorConfig};
use orders_core::catalog::Catalog;
use orders_core::ports::{CatalogSource, MessagePublisher, OrderStore, WorkflowState};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub store: Arc<dyn OrderStore>,
    pub workflow: Arc<dyn WorkflowState>,
    pub publisher: Arc<dyn MessagePublisher>,
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
        let publisher = Arc::new(SqliteQueue::new(sqlite));
        let (auth, dev_tokens) = authentication(&settings)?;
        Ok(AppState {
            catalog,
            store,
            workflow: Arc::new(MemoryState::new()),
            publisher,
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
