//! Wiring: the router, building the hub from settings, serving and graceful shutdown.

use crate::config::Settings;
use crate::fanout::{self, FanoutSource};
use crate::hub::{Hub, StatusLookup};
use crate::negotiate::negotiate;
use crate::transports::{Caller, ConnectQuery, long_polling, websocket};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use orders_adapters::redis::{RedisFanout, RedisState};
use orders_adapters::system_of_record::SystemOfRecord;
use orders_core::ports::NotificationHistory;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub const HUB_PATH: &str = "/hubs/order-status";

/// The hub's routes, with CORS for `cors_origins` (exact origins, credentials allowed).
pub fn router(hub: Arc<Hub>, cors_origins: &[String]) -> Router {
    let body_limit = hub.limits.max_message_bytes * 4;
    let router = Router::new()
        .route("/hubs/order-status/negotiate", post(negotiate))
        .route(HUB_PATH, get(connect_or_poll).post(send).delete(delete))
        .route("/hubs/health", get(health))
        .route("/hubs/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(hub);
    if cors_origins.is_empty() {
        return router;
    }
    let origins: Vec<HeaderValue> = cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    router.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                HeaderName::from_static("x-signalr-user-agent"),
                HeaderName::from_static("x-requested-with"),
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// `GET /hubs/order-status`: a WebSocket upgrade, or else a Long Polling poll.
async fn connect_or_poll(State(hub): State<Arc<Hub>>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let user = match Caller::from_request_parts(&mut parts, &hub).await {
        Ok(Caller(user)) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let query = match Query::<ConnectQuery>::try_from_uri(&parts.uri) {
        Ok(Query(query)) => query,
        Err(rejection) => return rejection.into_response(),
    };
    let wants_upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_upgrade {
        match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(upgrade) => websocket::connect(hub, upgrade, user, query).await,
            Err(rejection) => rejection.into_response(),
        }
    } else {
        long_polling::poll(hub, user, query).await
    }
}

async fn send(
    State(hub): State<Arc<Hub>>,
    Caller(user): Caller,
    Query(query): Query<ConnectQuery>,
    body: Bytes,
) -> Response {
    long_polling::send(hub, user, query, body).await
}

async fn delete(
    State(hub): State<Arc<Hub>>,
    Caller(user): Caller,
    Query(query): Query<ConnectQuery>,
) -> Response {
    long_polling::delete(hub, user, query).await
}

async fn health(State(hub): State<Arc<Hub>>) -> Response {
    let shutting_down = hub.shutting_down.load(Relaxed);
    let body = serde_json::json!({
        "status": if shutting_down { "shutting_down" } else { "ok" },
        "connections": hub.registry.len(),
        "fanout": hub.fanout,
    });
    let status = if shutting_down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    let text = hub.metrics.render(hub.registry.len(), hub.registry.users());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// Builds the hub from settings: validator, status lookup, fan-out subscription.
pub async fn build(settings: &Settings) -> anyhow::Result<(Arc<Hub>, FanoutSource)> {
    // The hub never invents a key: in dev mode without JWT_SIGNING_KEY it reads the API's.
    let secret = settings.auth.dev_secret(&settings.data_dir, false).with_context(|| {
        format!(
            "JWT_SIGNING_KEY is unset and {} has no dev-signing.key; set it or start the API first",
            settings.data_dir.display()
        )
    })?;
    let validator = Arc::new(settings.auth.validator(secret));
    let mut lookup = StatusLookup::default();
    // SQL answers when the workflow state has forgotten an order: the same system of record,
    // chosen by the same SQL_PROVIDER settings, as the API's.
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let record = SystemOfRecord::open(&settings.sql, &settings.data_dir)
        .await
        .context("opening the system of record")?;
    lookup.store = Some(record.orders);
    let mut history: Option<Arc<dyn NotificationHistory>> = None;
    let source: FanoutSource = match &settings.redis_url {
        Some(url) => {
            history = Some(Arc::new(
                RedisFanout::connect(url.expose(), &settings.fanout_prefix)
                    .await
                    .context("connecting to the backplane")?,
            ));
            lookup.state = Some(Arc::new(
                RedisState::connect(url.expose())
                    .await
                    .context("connecting to Redis")?,
            ));
            Box::new(
                RedisFanout::subscribe(url.expose(), &settings.fanout_prefix)
                    .await
                    .context("subscribing to the backplane")?,
            )
        }
        // Standalone without Redis nothing publishes to us; the embedded host passes its own
        // MemoryFanout's subscription through the library instead.
        None => Box::new(orders_adapters::memory::MemoryFanout::new().subscribe()),
    };
    let hub = Hub::new(
        validator,
        lookup,
        settings.limits.clone(),
        source.backend(),
        history,
    );
    Ok((hub, source))
}

/// Starts delivering the notifications of `source` to the hub's connections.
pub fn spawn_fanout(hub: &Hub, source: FanoutSource) -> tokio::task::JoinHandle<()> {
    tokio::spawn(fanout::run(
        source,
        Arc::clone(&hub.registry),
        Arc::clone(&hub.metrics),
    ))
}

/// Closes every connection with `allowReconnect` (so clients move to another replica) and
/// waits briefly for the Close messages to go out.
pub async fn drain(hub: &Hub) {
    hub.shutting_down.store(true, Relaxed);
    hub.registry.close_all("Server is shutting down.", true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !hub.registry.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves until `shutdown` resolves, then drains the connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    source: FanoutSource,
    cors_origins: &[String],
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    spawn_fanout(&hub, source);
    let app = router(Arc::clone(&hub), cors_origins);
    let listener = listener.tap_io(|tcp| {
        // A push follows the last one at once: Nagle's algorithm would hold it until the
        // client's delayed ack of that one (up to 40 ms).
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            drain(&hub).await;
        })
        .await
        .context("serving")
}
