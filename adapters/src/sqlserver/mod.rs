//! The system of record on SQL Server / Azure SQL, through `tiberius`.
//!
//! Behaves exactly like [`crate::sqlite::SqliteStore`]: the shared contract tests hold both to
//! the same answers. Money is BIGINT cents, times are DATETIME2(3) UTC, correlation ids are
//! UNIQUEIDENTIFIER.

mod migrations;
mod orders;
mod pool;

use orders_core::ports::{BackendError, CatalogSource, ErrorKind};
use orders_core::product::Product;
use orders_core::secret::Secret;
use orders_core::{Money, ProductId};
use pool::{Client, Connector, Pool};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use tiberius::{FromSql, Query, Row};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct SqlServerConfig {
    /// An ADO.NET connection string, e.g.
    /// `Server=tcp:localhost,1433;Database=orders;User Id=sa;Password=...;TrustServerCertificate=true`.
    pub connection_string: Secret,
    pub auth: SqlServerAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlServerAuth {
    /// The user and password of the connection string.
    SqlLogin,
    /// An Entra ID access token, fetched for every new connection (the credential caches it and
    /// renews it before expiry). User and password in the string are ignored. With a client id,
    /// that user-assigned managed identity; without, the system-assigned identity when running
    /// in Azure (`IDENTITY_ENDPOINT` is set), else the developer's `az` / `azd` login.
    EntraId {
        managed_identity_client_id: Option<String>,
    },
}

#[derive(Clone)]
pub struct SqlServerStore {
    pool: Arc<Pool>,
}

/// A failure inside the adapter; `connection_usable` decides whether the pool keeps the
/// connection it happened on.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error(transparent)]
    Sql(#[from] tiberius::error::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Bad data or a refused write; the connection itself is fine.
    #[error("{0}")]
    Data(String),
    /// The connection is in an unknown state (e.g. a rollback failed).
    #[error("{0}")]
    Broken(String),
}

impl DbError {
    fn connection_usable(&self) -> bool {
        use tiberius::error::Error as E;
        match self {
            // Severity 20 and above closes the session on the server side.
            DbError::Sql(E::Server(e)) => e.class() < 20,
            // Raised while decoding a reply the connection still read to the end.
            DbError::Sql(
                E::Conversion(_) | E::Encoding(_) | E::Utf8 | E::Utf16 | E::ParseInt(_),
            ) => true,
            DbError::Data(_) => true,
            _ => false,
        }
    }

    /// The SQL Server error number, for server errors.
    fn code(&self) -> Option<u32> {
        match self {
            DbError::Sql(tiberius::error::Error::Server(e)) => Some(e.code()),
            _ => None,
        }
    }
}

fn backend(err: impl fmt::Display) -> BackendError {
    BackendError::new("sqlserver", err)
}

/// Permanent when the same request would fail again: data we refuse (an unknown product, a row
/// that does not decode) or a constraint the server enforces (547 foreign key, 2627/2601 unique,
/// once the save's own retries are spent); everything else may pass on a retry.
fn db_error(err: DbError) -> BackendError {
    let permanent = matches!(err, DbError::Data(_))
        || err.code().is_some_and(|c| [547, 2627, 2601].contains(&c));
    let kind = if permanent {
        ErrorKind::Permanent
    } else {
        ErrorKind::Transient
    };
    BackendError::caused_by("sqlserver", kind, err)
}

/// A non-NULL column.
fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, DbError> {
    row.try_get(index)?
        .ok_or_else(|| DbError::Data(format!("column {index} is NULL")))
}

fn invalid(what: &str, err: impl fmt::Display) -> DbError {
    DbError::Data(format!("invalid {what} in the database: {err}"))
}

impl SqlServerConfig {
    /// Fails when the connection string or the credential settings are invalid (configuration
    /// errors, unlike the server being down), without connecting.
    pub fn check(&self) -> Result<(), BackendError> {
        Connector::new(self).map(drop).map_err(backend)
    }
}

impl SqlServerStore {
    /// Connects, applies migrations and upserts the catalog (as `SqliteStore::open` does).
    pub async fn connect(
        config: SqlServerConfig,
        catalog: Vec<Product>,
    ) -> Result<Self, BackendError> {
        let connector = Connector::new(&config).map_err(backend)?;
        let store = SqlServerStore {
            pool: Arc::new(Pool::new(connector)),
        };
        let mut conn = store.pool.get().await.map_err(backend)?;
        let result = prepare(conn.client(), &catalog).await;
        conn.finish(result)?;
        Ok(store)
    }
}

/// Runs a plain SQL batch (not sp_executesql) and reads its replies to the end.
async fn run_batch(client: &mut Client, sql: &str) -> Result<(), DbError> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

const PRODUCT_COLUMNS: [&str; 10] = [
    "product_id",
    "name",
    "category",
    "vendor",
    "image_url",
    "price_cents",
    "discount_percent",
    "billing_period",
    "is_subscription",
    "is_active",
];

/// Products per MERGE statement: 10 parameters each, well under SQL Server's 2100.
const MERGE_CHUNK: usize = 100;

/// `MERGE` of `rows` products given as parameters, `PRODUCT_COLUMNS` order. HOLDLOCK is the
/// usual guard for a MERGE upsert; the start-up lock already serialises callers.
fn merge_products_sql(rows: usize) -> String {
    let width = PRODUCT_COLUMNS.len();
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", Query::placeholders(r * width + 1, width)))
        .collect();
    let columns = PRODUCT_COLUMNS.join(", ");
    let set: Vec<String> = PRODUCT_COLUMNS[1..]
        .iter()
        .map(|c| format!("{c} = s.{c}"))
        .collect();
    let source: Vec<String> = PRODUCT_COLUMNS.iter().map(|c| format!("s.{c}")).collect();
    format!(
        "MERGE products WITH (HOLDLOCK) AS t USING (VALUES {}) AS s ({columns})
         ON t.product_id = s.product_id
         WHEN MATCHED THEN UPDATE SET {}
         WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({});",
        values.join(", "),
        set.join(", "),
        source.join(", "),
    )
}

/// Migrations and the catalog upsert, in one transaction under the migration lock: instances
/// starting at once take turns instead of racing on DDL or on new products.
async fn prepare(client: &mut Client, catalog: &[Product]) -> Result<(), DbError> {
    client.begin_transaction().await?;
    let result = async {
        migrations::migrate(client).await?;
        upsert_catalog(client, catalog).await
    }
    .await;
    finish_transaction(client, result).await
}

async fn upsert_catalog(client: &mut Client, products: &[Product]) -> Result<(), DbError> {
    // MERGE refuses a source that names a row twice; like SQLite's upsert, the last one wins.
    let unique: BTreeMap<&str, &Product> = products
        .iter()
        .map(|p| (p.product_id.as_str(), p))
        .collect();
    let unique: Vec<&Product> = unique.into_values().collect();
    for chunk in unique.chunks(MERGE_CHUNK) {
        let mut merge = Query::new(merge_products_sql(chunk.len()));
        for p in chunk {
            merge.bind(p.product_id.as_str());
            merge.bind(p.name.as_str());
            merge.bind(p.category.as_str());
            merge.bind(p.vendor.as_str());
            merge.bind(p.image_url.as_str());
            merge.bind(p.price.cents());
            merge.bind(p.discount_percent);
            merge.bind(p.billing_period.as_str());
            merge.bind(p.is_subscription);
            merge.bind(p.is_active);
        }
        merge.execute(client).await?;
    }
    Ok(())
}

/// Commits on success; otherwise rolls back and returns the first error. A failed rollback
/// leaves the transaction state unknown, so the connection is reported broken.
async fn finish_transaction<T>(
    client: &mut Client,
    result: Result<T, DbError>,
) -> Result<T, DbError> {
    let err = match result {
        Ok(value) => match client.commit_transaction().await {
            Ok(()) => return Ok(value),
            Err(e) => DbError::from(e),
        },
        Err(err) => err,
    };
    // XACT_ABORT may already have rolled back on the server: only roll back what is open.
    match run_batch(client, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").await {
        Ok(()) => Err(err),
        Err(e) => Err(DbError::Broken(format!(
            "{err} (and the rollback failed: {e})"
        ))),
    }
}

fn product_from_row(row: &Row) -> Result<Product, DbError> {
    let id: &str = get(row, 0)?;
    let period: &str = get(row, 7)?;
    Ok(Product {
        product_id: ProductId::parse(id).map_err(|e| invalid("product id", e))?,
        name: get::<&str>(row, 1)?.to_owned(),
        category: get::<&str>(row, 2)?.to_owned(),
        vendor: get::<&str>(row, 3)?.to_owned(),
        image_url: get::<&str>(row, 4)?.to_owned(),
        price: Money::from_cents(get(row, 5)?),
        discount_percent: get(row, 6)?,
        billing_period: period.parse().map_err(|e| invalid("billing period", e))?,
        is_subscription: get(row, 8)?,
        is_active: get(row, 9)?,
    })
}

#[async_trait::async_trait]
impl CatalogSource for SqlServerStore {
    async fn load_products(&self) -> Result<Vec<Product>, BackendError> {
        let mut conn = self.pool.get().await.map_err(backend)?;
        let result = async {
            let sql = format!(
                "SELECT {} FROM products ORDER BY id",
                PRODUCT_COLUMNS.join(", ")
            );
            let rows = conn
                .client()
                .query(sql, &[])
                .await?
                .into_first_result()
                .await?;
            rows.iter().map(product_from_row).collect()
        }
        .await;
        conn.finish(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_binds_ten_parameters_per_product() {
        let sql = merge_products_sql(2);
        assert!(sql.contains("VALUES (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8, @P9, @P10), (@P11,"));
        assert!(sql.contains("@P20)"));
        assert!(!sql.contains("@P21"));
        assert!(sql.contains("UPDATE SET name = s.name,"));
        assert!(!sql.contains("SET product_id"));
        assert!(sql.trim_end().ends_with(';'), "MERGE must be terminated");
        assert!(MERGE_CHUNK * PRODUCT_COLUMNS.len() < 2100);
    }

    #[test]
    fn only_transport_failures_discard_the_connection() {
        assert!(DbError::Data("unknown product".into()).connection_usable());
        assert!(DbError::Sql(tiberius::error::Error::Conversion("x".into())).connection_usable());
        assert!(!DbError::Broken("rollback failed".into()).connection_usable());
        assert!(!DbError::Io(std::io::Error::other("reset")).connection_usable());
        let io = tiberius::error::Error::Io {
            kind: std::io::ErrorKind::TimedOut,
            message: "t".into(),
        };
        assert!(!DbError::Sql(io).connection_usable());
    }

    #[test]
    fn config_debug_hides_the_connection_string() {
        let config = SqlServerConfig {
            connection_string: Secret::new("Server=x;Password=hunter2"),
            auth: SqlServerAuth::SqlLogin,
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    fn sql_login(port: u16) -> SqlServerConfig {
        SqlServerConfig {
            connection_string: Secret::new(format!(
                "Server=tcp:127.0.0.1,{port};User Id=sa;Password=p;TrustServerCertificate=true"
            )),
            auth: SqlServerAuth::SqlLogin,
        }
    }

    #[tokio::test]
    async fn connect_reports_a_closed_port_as_a_backend_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match SqlServerStore::connect(sql_login(port), Vec::new()).await {
            Ok(_) => panic!("nothing listens on {port}"),
            Err(err) => assert_eq!(err.backend, "sqlserver"),
        }
    }

    #[tokio::test]
    async fn connect_reports_a_peer_that_hangs_up_as_a_backend_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        match SqlServerStore::connect(sql_login(port), Vec::new()).await {
            Ok(_) => panic!("the peer speaks no TDS"),
            Err(err) => assert_eq!(err.backend, "sqlserver"),
        }
    }
}
