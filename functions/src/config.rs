//! All configuration in one typed struct, read from the environment and validated at start-up.

use orders_adapters::servicebus::ServiceBusSettings;
use orders_adapters::system_of_record::SqlSettings;
use orders_auth::AuthSettings;
pub use orders_core::env::ConfigError;
use orders_core::env::Env;
use orders_core::secret::Secret;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where queues live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSettings {
    /// Durable queue tables in the SQLite file under `DATA_DIR`.
    Embedded,
    /// RabbitMQ, each queue sharded over `shards` single-active-consumer quorum queues.
    RabbitMq { url: Secret, shards: u16 },
    /// Azure Service Bus: intake sends; the Functions host's bindings receive.
    ServiceBus(ServiceBusSettings),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub auth: AuthSettings,
    pub sql: SqlSettings,
    pub broker: BrokerSettings,
    /// Prefix for every queue name, so systems can share a broker (`QUEUE_NAMESPACE`).
    pub queue_namespace: String,
    /// Redis for workflow state and the notification fan-out; in-process when unset.
    pub redis_url: Option<Secret>,
    /// Prefix of the Redis fan-out channel (`{prefix}notifications`).
    pub fanout_prefix: String,
    /// TTL of workflow keys (status, owner map), refreshed while an order is in flight.
    pub workflow_ttl: Duration,
    /// How long an `Idempotency-Key` answer is replayed.
    pub idempotency_ttl: Duration,
    /// Log lines as JSON (for log shippers) instead of text.
    pub log_json: bool,
    /// `API_CORS_ORIGINS`: exact origins of an SPA served elsewhere (Azure static hosting);
    /// none means same-origin only, as the local host serves the SPA.
    pub cors_origins: Vec<String>,
    /// `API_MAX_CONCURRENT_REQUESTS`: API requests in progress at once; more are shed (503).
    pub max_concurrent_requests: usize,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        // The Functions host tells a custom handler its port; standalone, PORT does.
        let port = match env.string("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(_) => env.parse("FUNCTIONS_CUSTOMHANDLER_PORT", 7071)?,
            None => env.parse("PORT", 7071)?,
        };
        let auth = AuthSettings::from_env(&env)?;
        let sql = SqlSettings::from_env(&env)?;
        let broker = match env
            .string("QUEUE_TRANSPORT")
            .as_deref()
            .unwrap_or("embedded")
        {
            "embedded" => BrokerSettings::Embedded,
            "rabbitmq" => BrokerSettings::RabbitMq {
                url: env
                    .secret_url("RABBITMQ_URL", &["amqp", "amqps"])?
                    .ok_or_else(|| {
                        ConfigError::new("RABBITMQ_URL", "required when QUEUE_TRANSPORT=rabbitmq")
                    })?,
                shards: env.ranged(
                    "RABBITMQ_SHARDS",
                    orders_adapters::rabbitmq::DEFAULT_SHARDS as u16,
                    1..=1024,
                )?,
            },
            "servicebus" => BrokerSettings::ServiceBus(ServiceBusSettings::from_env(&env)?),
            other => {
                return Err(ConfigError::new(
                    "QUEUE_TRANSPORT",
                    format!("{other:?} is not embedded, rabbitmq or servicebus"),
                ));
            }
        };
        Ok(Settings {
            broker,
            queue_namespace: env.string("QUEUE_NAMESPACE").unwrap_or_default(),
            redis_url: env.secret_url("REDIS_URL", orders_adapters::redis::URL_SCHEMES)?,
            fanout_prefix: env
                .string("FANOUT_CHANNEL_PREFIX")
                .unwrap_or_else(|| "orders:".into()),
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port,
            data_dir: env.directory("DATA_DIR", ".data")?,
            auth,
            sql,
            workflow_ttl: env.seconds("WORKFLOW_TTL_SECS", 3600, 60..=86_400)?,
            idempotency_ttl: env.seconds("IDEMPOTENCY_TTL_SECS", 86_400, 60..=604_800)?,
            log_json: env.choice("LOG_FORMAT", "text", &["text", "json"])? == "json",
            cors_origins: env.origins("API_CORS_ORIGINS")?,
            max_concurrent_requests: env.ranged("API_MAX_CONCURRENT_REQUESTS", 512, 1..=100_000)?,
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
        assert!(matches!(s.sql, SqlSettings::Sqlite));
        assert_eq!(
            s.auth.mode,
            orders_auth::AuthMode::Dev { signing_key: None }
        );
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
            (&[("API_CORS_ORIGINS", "*")][..], "API_CORS_ORIGINS"),
            (&[("LOG_FORMAT", "pretty")][..], "LOG_FORMAT"),
            (
                &[("QUEUE_TRANSPORT", "servicebus")][..],
                "ServiceBusConnection__fullyQualifiedNamespace",
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
