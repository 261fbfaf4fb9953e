//! Liveness (`/api/health/live`: the process answers, from the moment it listens) and readiness
//! (`/api/health`: every dependency is connected, the system of record answers and the catalog
//! is loaded).

use crate::app::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let sql = app.store.ping().await;
    if let Err(err) = &sql {
        tracing::warn!(error = %err, "readiness: system of record unavailable");
    }
    let catalog = app.catalog.current();
    let ready = sql.is_ok() && !catalog.is_empty() && app.connected();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let dependencies: Map<String, Value> = app
        .dependencies
        .iter()
        .map(|d| {
            let state = json!({ "backend": d.backend, "connected": d.is_connected() });
            (d.role.to_owned(), state)
        })
        .collect();
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": {
            "sql": if sql.is_ok() { "ok" } else { "unavailable" },
            "catalogProducts": catalog.len(),
        },
        "dependencies": dependencies,
    });
    (status, Json(body))
}
