//! Liveness (`/api/health/live`: the process answers) and readiness (`/api/health`: the system of
//! record answers and the catalog is loaded).

use crate::app::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let sql = app.store.ping().await;
    if let Err(err) = &sql {
        tracing::warn!(error = %err, "readiness: system of record unavailable");
    }
    let ready = sql.is_ok() && !app.catalog.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "checks": {
            "sql": if sql.is_ok() { "ok" } else { "unavailable" },
            "catalogProducts": app.catalog.len(),
        }
    });
    (status, Json(body))
}
