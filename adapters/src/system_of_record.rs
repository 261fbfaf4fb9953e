//! The system of record chosen by `SQL_PROVIDER`, opened the same way by every binary that
//! reads orders (the handler, the hub).

use crate::sqlite::SqliteStore;
use crate::sqlserver::{SqlServerAuth, SqlServerConfig, SqlServerStore};
use orders_core::env::{ConfigError, Env};
use orders_core::ports::{BackendError, CatalogSource, OrderStore};
use std::path::Path;
use std::sync::Arc;

/// `SQL_PROVIDER`: `sqlite` (the file `orders.db` in the data directory) or `sqlserver`
/// (`SQLSERVER_CONNECTION_STRING`, `SQLSERVER_AUTH` = `sql` | `entra`, `AZURE_CLIENT_ID`).
/// Debug output never shows the connection string.
#[derive(Debug, Clone)]
pub enum SqlSettings {
    Sqlite,
    SqlServer(SqlServerConfig),
}

impl SqlSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        match env.string("SQL_PROVIDER").as_deref().unwrap_or("sqlite") {
            "sqlite" => Ok(SqlSettings::Sqlite),
            "sqlserver" => {
                let connection_string =
                    env.required_secret("SQLSERVER_CONNECTION_STRING", "SQL_PROVIDER=sqlserver")?;
                // What the driver would refuse at the first connect, refused now.
                tiberius::Config::from_ado_string(connection_string.expose())
                    .map_err(|e| ConfigError::new("SQLSERVER_CONNECTION_STRING", e.to_string()))?;
                let auth = match env.string("SQLSERVER_AUTH").as_deref().unwrap_or("sql") {
                    "sql" => SqlServerAuth::SqlLogin,
                    "entra" => SqlServerAuth::EntraId {
                        managed_identity_client_id: env.string("AZURE_CLIENT_ID"),
                    },
                    other => {
                        return Err(ConfigError::new(
                            "SQLSERVER_AUTH",
                            format!("{other:?} is not sql or entra"),
                        ));
                    }
                };
                Ok(SqlSettings::SqlServer(SqlServerConfig {
                    connection_string,
                    auth,
                }))
            }
            other => Err(ConfigError::new(
                "SQL_PROVIDER",
                format!("{other:?} is not sqlite or sqlserver"),
            )),
        }
    }
}

/// Orders and the catalog, behind their ports.
#[derive(Clone)]
pub struct SystemOfRecord {
    pub orders: Arc<dyn OrderStore>,
    pub catalog: Arc<dyn CatalogSource>,
}

impl SystemOfRecord {
    /// Connects, applies migrations and upserts the catalog seed.
    pub async fn open(settings: &SqlSettings, data_dir: &Path) -> Result<Self, BackendError> {
        let seed = crate::seed::products();
        match settings {
            SqlSettings::Sqlite => {
                let store = SqliteStore::open(&data_dir.join("orders.db"), seed).await?;
                Ok(SystemOfRecord {
                    orders: Arc::new(store.clone()),
                    catalog: Arc::new(store),
                })
            }
            SqlSettings::SqlServer(config) => {
                let store = SqlServerStore::connect(config.clone(), seed).await?;
                Ok(SystemOfRecord {
                    orders: Arc::new(store.clone()),
                    catalog: Arc::new(store),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<SqlSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SqlSettings::from_env(&Env::new(&|name| map.get(name).cloned()))
    }

    #[test]
    fn reads_the_provider_and_hides_the_connection_string() {
        assert!(matches!(settings(&[]), Ok(SqlSettings::Sqlite)));
        let server = settings(&[
            ("SQL_PROVIDER", "sqlserver"),
            (
                "SQLSERVER_CONNECTION_STRING",
                "Server=tcp:db,1433;Password=hunter2",
            ),
            ("SQLSERVER_AUTH", "entra"),
            ("AZURE_CLIENT_ID", "abc"),
        ])
        .unwrap();
        let SqlSettings::SqlServer(config) = &server else {
            panic!("{server:?}")
        };
        assert_eq!(
            config.auth,
            SqlServerAuth::EntraId {
                managed_identity_client_id: Some("abc".into())
            }
        );
        assert!(!format!("{server:?}").contains("hunter2"));
        assert_eq!(
            settings(&[("SQL_PROVIDER", "sqlserver")]).unwrap_err().name,
            "SQLSERVER_CONNECTION_STRING"
        );
        assert_eq!(
            settings(&[("SQL_PROVIDER", "oracle")]).unwrap_err().name,
            "SQL_PROVIDER"
        );
    }
}
