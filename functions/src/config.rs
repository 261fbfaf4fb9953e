//! All configuration in one typed struct, read from the environment and validated at start-up.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{name} is required when {when}")]
    Missing {
        name: &'static str,
        when: &'static str,
    },
}

/// How callers are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// HS256 with a shared key; `POST /dev/token` is served. The key comes from `JWT_SIGNING_KEY`
    /// or, when unset, is generated once and kept in the data directory.
    Dev { signing_key: Option<String> },
    /// RS256/ES256 tokens from the OIDC issuer `JWT_ISSUER` (keys from its JWKS). An unknown key
    /// id re-fetches the JWKS at most once per `JWKS_MIN_REFRESH_SECS`.
    Oidc { min_key_refresh: Duration },
}

impl std::fmt::Debug for AuthSettings {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthSettings::Dev { signing_key } => write!(
                f,
                "Dev {{ signing_key: {} }}",
                if signing_key.is_some() {
                    "<set>"
                } else {
                    "<generated>"
                }
            ),
            AuthSettings::Oidc { .. } => f.write_str("Oidc"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlSettings {
    Sqlite,
    SqlServer {
        connection_string: String,
        entra_id: bool,
        managed_identity_client_id: Option<String>,
    },
}

/// Where queues live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSettings {
    /// Durable queue tables in the SQLite file under `DATA_DIR`.
    Embedded,
    /// RabbitMQ, each queue sharded over `shards` single-active-consumer quorum queues.
    RabbitMq { url: String, shards: u16 },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub auth: AuthSettings,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub sql: SqlSettings,
    pub broker: BrokerSettings,
    /// Prefix for every queue name, so systems can share a broker (`QUEUE_NAMESPACE`).
    pub queue_namespace: String,
    /// Redis for workflow state and the notification fan-out; in-process when unset.
    pub redis_url: Option<String>,
    /// Prefix of the Redis fan-out channel (`{prefix}notifications`).
    pub fanout_prefix: String,
    /// TTL of workflow keys (status, owner map), refreshed while an order is in flight.
    pub workflow_ttl: Duration,
    /// How long an `Idempotency-Key` answer is replayed.
    pub idempotency_ttl: Duration,
    /// Log lines as JSON (for log shippers) instead of text.
    pub log_json: bool,
}

/// Reads a variable through `get` so tests can feed a map instead of the process environment.
struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn string(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name,
                    reason: e.to_string(),
                }),
        }
    }

    fn seconds(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let secs = self.parse(name, default)?;
        if !range.contains(&secs) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("must be {} to {} seconds", range.start(), range.end()),
            });
        }
        Ok(Duration::from_secs(secs))
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { get };
        // The Functions host tells a custom handler its port; standalone, PORT does.
        let port = match env.string("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(_) => env.parse("FUNCTIONS_CUSTOMHANDLER_PORT", 7071)?,
            None => env.parse("PORT", 7071)?,
        };
        let auth = match env.string("AUTH_MODE").as_deref().unwrap_or("dev") {
            "dev" => AuthSettings::Dev {
                signing_key: env.string("JWT_SIGNING_KEY"),
            },
            "oidc" => AuthSettings::Oidc {
                min_key_refresh: env.seconds("JWKS_MIN_REFRESH_SECS", 10, 0..=3600)?,
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "AUTH_MODE",
                    reason: format!("{other:?} is not dev or oidc"),
                });
            }
        };
        if let AuthSettings::Dev {
            signing_key: Some(key),
        } = &auth
            && key.len() < 32
        {
            return Err(ConfigError::Invalid {
                name: "JWT_SIGNING_KEY",
                reason: "use at least 32 characters".into(),
            });
        }
        let jwt_issuer = env
            .string("JWT_ISSUER")
            .unwrap_or_else(|| "contoso-orders-dev".into());
        if matches!(auth, AuthSettings::Oidc { .. })
            && !jwt_issuer.starts_with("https://")
            && !jwt_issuer.starts_with("http://127.0.0.1")
        {
            return Err(ConfigError::Invalid {
                name: "JWT_ISSUER",
                reason: "with AUTH_MODE=oidc it must be the issuer's https URL".into(),
            });
        }
        let sql = match env.string("SQL_PROVIDER").as_deref().unwrap_or("sqlite") {
            "sqlite" => SqlSettings::Sqlite,
            "sqlserver" => SqlSettings::SqlServer {
                connection_string: env.string("SQLSERVER_CONNECTION_STRING").ok_or(
                    ConfigError::Missing {
                        name: "SQLSERVER_CONNECTION_STRING",
                        when: "SQL_PROVIDER=sqlserver",
                    },
                )?,
                entra_id: env.string("SQLSERVER_AUTH").as_deref() == Some("entra"),
                managed_identity_client_id: env.string("AZURE_CLIENT_ID"),
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "SQL_PROVIDER",
                    reason: format!("{other:?} is not sqlite or sqlserver"),
                });
            }
        };
        let broker = match env
            .string("QUEUE_TRANSPORT")
            .as_deref()
            .unwrap_or("embedded")
        {
            "embedded" => BrokerSettings::Embedded,
            "rabbitmq" => BrokerSettings::RabbitMq {
                url: env.string("RABBITMQ_URL").ok_or(ConfigError::Missing {
                    name: "RABBITMQ_URL",
                    when: "QUEUE_TRANSPORT=rabbitmq",
                })?,
                shards: env.parse("RABBITMQ_SHARDS", 8)?,
            },
            other => {
                return Err(ConfigError::Invalid {
                    name: "QUEUE_TRANSPORT",
                    reason: format!("{other:?} is not embedded or rabbitmq"),
                });
            }
        };
        Ok(Settings {
            broker,
            queue_namespace: env.string("QUEUE_NAMESPACE").unwrap_or_default(),
            redis_url: env.string("REDIS_URL"),
            fanout_prefix: env
                .string("FANOUT_CHANNEL_PREFIX")
                .unwrap_or_else(|| "orders:".into()),
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port,
            data_dir: env
                .string("DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".data")),
            auth,
            jwt_issuer,
            jwt_audience: env
                .string("JWT_AUDIENCE")
                .unwrap_or_else(|| "contoso-orders-api".into()),
            sql,
            workflow_ttl: env.seconds("WORKFLOW_TTL_SECS", 3600, 60..=86_400)?,
            idempotency_ttl: env.seconds("IDEMPOTENCY_TTL_SECS", 86_400, 60..=604_800)?,
            log_json: env.string("LOG_FORMAT").as_deref() == Some("json"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_serve_the_embedded_mode_on_7071() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 7071);
        assert_eq!(s.sql, SqlSettings::Sqlite);
        assert!(matches!(s.auth, AuthSettings::Dev { signing_key: None }));
    }

    #[test]
    fn custom_handler_port_wins_over_port() {
        let s = settings(&[("PORT", "8080"), ("FUNCTIONS_CUSTOMHANDLER_PORT", "40123")]).unwrap();
        assert_eq!(s.port, 40123);
    }

    #[test]
    fn refuses_bad_values_naming_the_variable() {
        for (vars, name) in [
            (&[("PORT", "http")][..], "PORT"),
            (&[("AUTH_MODE", "none")][..], "AUTH_MODE"),
            (&[("JWT_SIGNING_KEY", "short")][..], "JWT_SIGNING_KEY"),
            (&[("WORKFLOW_TTL_SECS", "5")][..], "WORKFLOW_TTL_SECS"),
            (
                &[("SQL_PROVIDER", "sqlserver")][..],
                "SQLSERVER_CONNECTION_STRING",
            ),
            (
                &[("AUTH_MODE", "oidc"), ("JWT_ISSUER", "issuer")][..],
                "JWT_ISSUER",
            ),
        ] {
            let err = settings(vars).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }
}
