//! Fixtures the test suites share, so each suite does not grow its own copy: the URLs of the
//! servers `tests/servers/*.sh` start, free loopback ports, and a throwaway `redis-server` for
//! tests that stop and restart their own.

mod redis_server;

pub use redis_server::RedisServer;

/// The URL in `name` (`REDIS_URL`, `RABBITMQ_URL`), set by `tests/servers/{script} start`;
/// panics saying how to start one when it is missing.
pub fn server_url(name: &str, script: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set: start a server with \
                 eval \"$(tests/servers/{script} start)\"; export {name}"
            )
        })
}

/// A free loopback port, closed again: nothing listens there until someone binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}
