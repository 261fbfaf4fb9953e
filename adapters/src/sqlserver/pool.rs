//! Connections (TCP + TLS, SQL login or Entra ID token) and a small pool.
//!
//! bb8-tiberius targets tiberius 0.12 and a fixed `Config`, so it can neither build 0.13 clients
//! nor put a fresh token on each connection: this is the few lines we need instead.

use super::{DbError, SqlServerAuth, SqlServerConfig};
use crate::entra::entra_credential;
use azure_core::credentials::TokenCredential;
use orders_core::ports::BackendError;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tiberius::{AuthMethod, Config};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub(super) type Client = tiberius::Client<Compat<TcpStream>>;

const SQL_SCOPE: &str = "https://database.windows.net/.default";
/// Concurrent connections per process.
const POOL_SIZE: usize = 8;
/// tiberius bounds the login handshake (15 s) but not the TCP connect before it.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Idle connections older than this are closed, not reused: gateways and failovers drop idle
/// sessions silently, and a fresh login also picks up a fresh token.
const MAX_IDLE: Duration = Duration::from_secs(300);

/// XACT_ABORT: any error rolls the whole transaction back, so none is left half-done. The rest
/// are the options SQL Server requires for writes to a table with an indexed computed column
/// (customers.external_key); the login mostly sets them already, this makes it certain.
const SESSION_OPTIONS: &str = "SET XACT_ABORT ON; SET ARITHABORT ON; SET ANSI_NULLS ON;
    SET ANSI_PADDING ON; SET ANSI_WARNINGS ON; SET CONCAT_NULL_YIELDS_NULL ON;
    SET QUOTED_IDENTIFIER ON; SET NUMERIC_ROUNDABORT OFF;";

/// Opens new connections.
pub(super) struct Connector {
    config: Config,
    credential: Option<Arc<dyn TokenCredential>>,
}

impl Connector {
    pub(super) fn new(settings: &SqlServerConfig) -> Result<Self, DbError> {
        let config = Config::from_ado_string(settings.connection_string.expose())?;
        let credential = match &settings.auth {
            SqlServerAuth::SqlLogin => None,
            SqlServerAuth::EntraId {
                managed_identity_client_id,
            } => Some(
                entra_credential(managed_identity_client_id.as_deref())
                    .map_err(|e| DbError::Broken(format!("Entra ID credential: {e}")))?,
            ),
        };
        Ok(Connector { config, credential })
    }

    async fn connect(&self) -> Result<Client, DbError> {
        let mut config = self.config.clone();
        if let Some(credential) = &self.credential {
            let token = credential
                .get_token(&[SQL_SCOPE], None)
                .await
                .map_err(|e| DbError::Broken(format!("Entra ID token: {e}")))?;
            config.authentication(AuthMethod::aad_token(token.token.secret()));
        }
        let mut client = match open(config.clone()).await {
            // Azure SQL's redirect connection policy names the node that hosts the database.
            Err(DbError::Sql(tiberius::error::Error::Routing { host, port })) => {
                config.host(host);
                config.port(port);
                open(config).await?
            }
            other => other?,
        };
        // A plain batch: SET options made inside sp_executesql revert when it returns.
        super::run_batch(&mut client, SESSION_OPTIONS).await?;
        Ok(client)
    }
}

async fn open(config: Config) -> Result<Client, DbError> {
    let tcp = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(config.get_addr()))
        .await
        .map_err(|_| DbError::Broken(format!("timed out connecting to {}", config.get_addr())))??;
    tcp.set_nodelay(true)?;
    Ok(Client::connect(config, tcp.compat_write()).await?)
}

pub(super) struct Pool {
    connector: Connector,
    idle: Mutex<Vec<(Client, Instant)>>,
    permits: Semaphore,
}

impl Pool {
    pub(super) fn new(connector: Connector) -> Self {
        Pool {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(POOL_SIZE),
        }
    }

    /// Never held across an await.
    fn idle(&self) -> MutexGuard<'_, Vec<(Client, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a free slot, then reuses a recent idle connection or opens a new one.
    pub(super) async fn get(&self) -> Result<Conn<'_>, DbError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| DbError::Broken(e.to_string()))?;
        let reused = {
            let mut idle = self.idle();
            idle.retain(|(_, since)| since.elapsed() < MAX_IDLE);
            idle.pop()
        };
        let client = match reused {
            Some((client, _)) => client,
            None => self.connector.connect().await?,
        };
        Ok(Conn {
            client,
            pool: self,
            _permit: permit,
        })
    }
}

/// A checked-out connection. Only `finish` returns it to the pool: a `Conn` dropped mid-call
/// (a cancelled request) closes its connection, whose state is unknown.
pub(super) struct Conn<'a> {
    client: Client,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Conn<'_> {
    pub(super) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Returns the connection to the pool unless `result` says it is broken.
    pub(super) fn finish<T>(self, result: Result<T, DbError>) -> Result<T, BackendError> {
        if result
            .as_ref()
            .map_or_else(DbError::connection_usable, |_| true)
        {
            self.pool.idle().push((self.client, Instant::now()));
        }
        result.map_err(super::db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(connection_string: &str, auth: SqlServerAuth) -> Result<Connector, DbError> {
        Connector::new(&SqlServerConfig {
            connection_string: orders_core::secret::Secret::new(connection_string),
            auth,
        })
    }

    #[test]
    fn sql_login_reads_server_and_port_from_the_string() {
        let c = connector(
            "Server=tcp:db.example,1444;Database=orders;User Id=sa;Password=p;TrustServerCertificate=true",
            SqlServerAuth::SqlLogin,
        )
        .unwrap();
        assert_eq!(c.config.get_addr(), "db.example:1444");
        assert!(c.credential.is_none());
    }

    #[test]
    fn entra_id_gets_a_credential_and_keeps_the_server() {
        let auth = SqlServerAuth::EntraId {
            managed_identity_client_id: Some("client-id".into()),
        };
        let c = connector(
            "Server=tcp:x.database.windows.net,1433;Database=orders",
            auth,
        )
        .unwrap();
        assert_eq!(c.config.get_addr(), "x.database.windows.net:1433");
        assert!(c.credential.is_some());
    }

    #[test]
    fn a_malformed_string_is_an_error_not_a_panic() {
        assert!(connector("Server=tcp:localhost,not-a-port", SqlServerAuth::SqlLogin).is_err());
    }
}
