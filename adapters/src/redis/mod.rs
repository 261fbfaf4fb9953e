//! Redis adapters for the server modes: the workflow state (`order:status:{cid}`,
//! `order:map:{cid}`, idempotency keys) and the notification backplane (a stream and per-user
//! history).
//!
//! Every command is bounded by [`COMMAND_TIMEOUT`], reconnects included: when Redis is down the
//! callers get a [`BackendError`] quickly and degrade, instead of hanging.

mod fanout;
mod state;

pub use fanout::{DEFAULT_PREFIX, RedisFanout, RedisSubscription, STREAM_LENGTH};
pub use state::RedisState;

use orders_core::ports::BackendError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisResult};
use std::fmt::Display;
use std::time::Duration;

const BACKEND: &str = "redis";

/// The longest any one Redis call may take, reconnecting included.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

fn error(what: &str, cause: impl Display) -> BackendError {
    BackendError::new(BACKEND, format!("{what}: {cause}"))
}

fn client(url: &str) -> Result<redis::Client, BackendError> {
    // The URL may carry a password, so it is never part of the message.
    let info = url
        .into_connection_info()
        .map_err(|e| error("invalid Redis URL", e))?;
    // Concurrent calls share one connection: each goes out at once, not after the last's ack.
    let nodelay = info.tcp_settings().clone().set_nodelay(true);
    redis::Client::open(info.set_tcp_settings(nodelay)).map_err(|e| error("invalid Redis URL", e))
}

/// Fails when `url` is not a Redis URL (a configuration error, unlike Redis being down).
/// The URL schemes the redis crate connects with.
pub const URL_SCHEMES: &[&str] = &["redis", "rediss", "redis+unix", "unix"];

pub fn check_url(url: &str) -> Result<(), BackendError> {
    client(url).map(drop)
}

/// A multiplexed connection that reconnects by itself. Few, quick retries: while Redis is down
/// each command fails within the timeout and the next one tries to reconnect again.
async fn connect(url: &str) -> Result<ConnectionManager, BackendError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    timed(
        "connect",
        ConnectionManager::new_with_config(client(url)?, config),
    )
    .await
}

/// Runs one Redis call under [`COMMAND_TIMEOUT`].
async fn timed<T>(
    what: &str,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| error(what, e)),
        Err(_) => Err(error(
            what,
            format_args!("no answer within {COMMAND_TIMEOUT:?}"),
        )),
    }
}

/// TTL in milliseconds for `PX`; Redis refuses 0, so anything shorter is 1 ms.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
