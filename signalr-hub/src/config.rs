//! Settings from the environment, read once and validated. Authentication, Redis and data
//! variables carry the same names (and defaults) as the API's (`functions/src/config.rs`), so the
//! hub accepts exactly the API's tokens and reads the same state.

use orders_adapters::system_of_record::SqlSettings;
use orders_auth::AuthSettings;
pub use orders_core::env::ConfigError;
use orders_core::env::Env;
use orders_core::secret::Secret;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    /// `HUB_PORT`, else `PORT`; 0 picks a free port (printed at start-up).
    pub port: u16,
    pub data_dir: PathBuf,
    pub auth: AuthSettings,
    /// The system of record for status lookups (`SQL_PROVIDER`, as the API reads it).
    pub sql: SqlSettings,
    pub redis_url: Option<Secret>,
    pub fanout_prefix: String,
    /// `HUB_CORS_ORIGINS`: comma-separated exact origins of the SPA; none means no CORS headers.
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    pub log_json: bool,
}

/// Protocol timers and resource limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `HUB_KEEP_ALIVE_SECS` (15): a Ping goes out when nothing else was sent for this long.
    pub keep_alive: Duration,
    /// `HUB_CLIENT_TIMEOUT_SECS` (30): a connection that sends nothing for this long is closed.
    pub client_timeout: Duration,
    /// `HUB_HANDSHAKE_TIMEOUT_SECS` (15): from negotiate or connect to a completed handshake.
    pub handshake_timeout: Duration,
    /// `HUB_LONG_POLL_SECS` (90): how long a poll waits for data before an empty 200.
    pub long_poll: Duration,
    /// `HUB_MAX_MESSAGE_BYTES` (32768): the largest record a client may send.
    pub max_message_bytes: usize,
    /// `HUB_MAX_CONNECTIONS` (50000): beyond it negotiate and connect answer 503. One replica
    /// holds 50,000 in about 400 MB (`scripts/bench-hub`); the process needs as many open files.
    pub max_connections: usize,
    /// `HUB_SEND_QUEUE` (256): records a connection may have unsent; a client that falls further
    /// behind is closed.
    pub send_queue: usize,
    /// `HUB_INVOCATIONS_PER_SEC` (20) and `HUB_INVOCATION_BURST` (40): a token bucket per
    /// connection; a client that exceeds it is closed.
    pub invocations_per_sec: u32,
    pub invocation_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            keep_alive: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            long_poll: Duration::from_secs(90),
            max_message_bytes: 32 * 1024,
            max_connections: 50_000,
            send_queue: 256,
            invocations_per_sec: 20,
            invocation_burst: 40,
        }
    }
}

impl Limits {
    /// The `HUB_*` limits, validated; the standalone hub and the embedded one read the same.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Limits::default();
        let limits = Limits {
            keep_alive: env.seconds("HUB_KEEP_ALIVE_SECS", 15, 1..=300)?,
            client_timeout: env.seconds("HUB_CLIENT_TIMEOUT_SECS", 30, 2..=3600)?,
            handshake_timeout: env.seconds("HUB_HANDSHAKE_TIMEOUT_SECS", 15, 1..=300)?,
            long_poll: env.seconds("HUB_LONG_POLL_SECS", 90, 1..=110)?,
            max_message_bytes: env.ranged(
                "HUB_MAX_MESSAGE_BYTES",
                defaults.max_message_bytes,
                256..=16 * 1024 * 1024,
            )?,
            max_connections: env.ranged(
                "HUB_MAX_CONNECTIONS",
                defaults.max_connections,
                1..=1_000_000,
            )?,
            send_queue: env.ranged("HUB_SEND_QUEUE", defaults.send_queue, 2..=65_536)?,
            invocations_per_sec: env.ranged(
                "HUB_INVOCATIONS_PER_SEC",
                defaults.invocations_per_sec,
                1..=100_000,
            )?,
            invocation_burst: env.ranged(
                "HUB_INVOCATION_BURST",
                defaults.invocation_burst,
                1..=100_000,
            )?,
        };
        if limits.keep_alive >= limits.client_timeout {
            return Err(ConfigError::new(
                "HUB_KEEP_ALIVE_SECS",
                "must be shorter than HUB_CLIENT_TIMEOUT_SECS",
            ));
        }
        Ok(limits)
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(get);
        let port = match env.string("HUB_PORT") {
            Some(_) => env.parse("HUB_PORT", 7072)?,
            None => env.parse("PORT", 7072)?,
        };
        let auth = AuthSettings::from_env(&env)?;
        let sql = SqlSettings::from_env(&env)?;
        let limits = Limits::from_env(&env)?;
        let cors_origins = env.origins("HUB_CORS_ORIGINS")?;
        Ok(Settings {
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
            port,
            data_dir: env.directory("DATA_DIR", ".data")?,
            auth,
            sql,
            redis_url: env.secret_url("REDIS_URL", orders_adapters::redis::URL_SCHEMES)?,
            fanout_prefix: env
                .string("FANOUT_CHANNEL_PREFIX")
                .unwrap_or_else(|| "orders:".into()),
            cors_origins,
            limits,
            log_json: env.choice("LOG_FORMAT", "text", &["text", "json"])? == "json",
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
    fn defaults_match_the_api_and_the_protocol() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.auth.issuer, "contoso-orders-dev");
        assert_eq!(s.auth.audience, "contoso-orders-api");
        assert_eq!(s.fanout_prefix, "orders:");
        assert_eq!(s.limits.keep_alive, Duration::from_secs(15));
        assert_eq!(s.limits.client_timeout, Duration::from_secs(30));
        assert!(s.cors_origins.is_empty());
    }

    #[test]
    fn refuses_bad_values_naming_the_variable() {
        assert_eq!(
            settings(&[("JWT_SIGNING_KEY", "short")]).unwrap_err().name,
            "JWT_SIGNING_KEY"
        );
        assert_eq!(
            settings(&[("HUB_CORS_ORIGINS", "*")]).unwrap_err().name,
            "HUB_CORS_ORIGINS"
        );
        assert_eq!(
            settings(&[("HUB_KEEP_ALIVE_SECS", "40")]).unwrap_err().name,
            "HUB_KEEP_ALIVE_SECS"
        );
        assert_eq!(
            settings(&[("AUTH_MODE", "x")]).unwrap_err().name,
            "AUTH_MODE"
        );
    }

    #[test]
    fn reads_origins_and_port() {
        let s = settings(&[
            (
                "HUB_CORS_ORIGINS",
                "http://localhost:5173, https://shop.example/",
            ),
            ("PORT", "1"),
            ("HUB_PORT", "0"),
        ])
        .unwrap();
        assert_eq!(
            s.cors_origins,
            vec!["http://localhost:5173", "https://shop.example"]
        );
        assert_eq!(s.port, 0);
    }
}
