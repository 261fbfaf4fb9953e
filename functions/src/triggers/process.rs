//! `OrderProcess` (trigger `order` on `order.accepted`, output `processed` to `order.processed`):
//! marks PROCESSING, persists the order exactly once, marks COMPLETED|orderId, emits
//! `OrderProcessed`. A redelivered message finds the existing row and re-emits the same event.

use super::invocation::{InvokeRequest, InvokeResponse};
use crate::app::AppState;
use crate::problem::ApiError;
use crate::trace_context::TraceParent;
use axum::Json;
use axum::extract::State;
use orders_core::events::{IntegrationEvent, Notification, OrderAccepted, OrderProcessed};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, OrderId, OrderStatus, UserId};
use serde_json::Value;
use tracing::Instrument;

pub async fn invoke(
    State(app): State<AppState>,
    Json(request): Json<InvokeRequest>,
) -> Result<Json<InvokeResponse>, ApiError> {
    let event = request.event::<OrderAccepted>("order");
    let from_body = event.as_ref().ok().and_then(|e| e.traceparent.clone());
    let span = super::invocation_span("OrderProcess", &request, from_body.as_deref());
    // Without span export, the next hop still continues this trace.
    let trace = request
        .properties()
        .get("traceparent")
        .cloned()
        .or(from_body)
        .and_then(|raw| TraceParent::parse(&raw))
        .map(|parent| parent.child().to_string());
    async move {
        let event = event?;
        // Workflow state and the PROCESSING push are best effort: only SQL is waited for.
        super::dependencies_ready(&app, &["sql"]).await;
        tracing::Span::current().record(
            "correlation_id",
            tracing::field::display(event.correlation_id),
        );
        let mut processed = process(&app, event).await?;
        processed.traceparent = orders_telemetry::current_traceparent().or(trace);
        Ok(Json(InvokeResponse {
            outputs: [("processed".to_owned(), Value::String(processed.to_json()))]
                .into_iter()
                .collect(),
            logs: vec![format!(
                "order {} persisted as {}",
                processed.correlation_id, processed.order_id
            )],
            return_value: Value::Null,
        }))
    }
    .instrument(span)
    .await
}

async fn process(app: &AppState, event: OrderAccepted) -> Result<OrderProcessed, ApiError> {
    let (cid, owner) = (event.correlation_id, event.user_id.clone());
    track(
        app,
        cid,
        &owner,
        TrackedStatus::new(OrderStatus::Processing, None),
    )
    .await;
    let saved = app.store.save_order(&event.into_new_order()).await?;
    if saved.created {
        tracing::info!(order_id = %saved.order_id, "order persisted");
    } else {
        tracing::info!(order_id = %saved.order_id, "order already persisted (redelivery); re-emitting");
    }
    track(
        app,
        cid,
        &owner,
        TrackedStatus::new(OrderStatus::Completed, Some(saved.order_id)),
    )
    .await;
    Ok(OrderProcessed {
        correlation_id: cid,
        order_id: saved.order_id,
        traceparent: None,
    })
}

/// Moves the workflow status forward and tells the owner's tabs, best effort: the order itself
/// is safe in SQL, and the authoritative COMPLETED notification goes through the notifier with
/// retries. A state outage only costs the early PROCESSING push.
async fn track(app: &AppState, cid: CorrelationId, owner: &UserId, status: TrackedStatus) {
    let stored = match app
        .workflow
        .advance(cid, status, app.settings.workflow_ttl)
        .await
    {
        Ok(stored) => stored,
        Err(err) => {
            tracing::warn!(error = %err, status = %status.status, "workflow state unavailable; status not recorded");
            return;
        }
    };
    if stored.status == OrderStatus::Processing {
        notify_processing(app, cid, owner, stored.order_id).await;
    }
}

async fn notify_processing(
    app: &AppState,
    cid: CorrelationId,
    owner: &UserId,
    order_id: Option<OrderId>,
) {
    let notification = Notification {
        correlation_id: cid,
        status: OrderStatus::Processing,
        order_id,
        cursor: None,
    };
    if let Err(err) = app.fanout.publish(owner, &notification).await {
        tracing::warn!(error = %err, "PROCESSING notification not published");
    }
}
