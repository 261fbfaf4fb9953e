//! Accepting an order: validate, price, record ACCEPTED, publish `OrderAccepted`. No SQL here:
//! the queue shields the database from traffic spikes.

use crate::app::AppState;
use crate::problem::ApiError;
use crate::trace_context::TraceParent;
use orders_core::events::{IntegrationEvent, OrderAccepted};
use orders_core::intake::{RequestedLine, price_lines};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, OrderStatus, UserId};

/// Validates and prices `lines`, then hands the order to the queue as `correlation_id`.
pub async fn accept_order(
    app: &AppState,
    owner: &UserId,
    correlation_id: CorrelationId,
    lines: &[RequestedLine],
    trace: &TraceParent,
) -> Result<CorrelationId, ApiError> {
    let items = price_lines(lines, &app.catalog.current())?;
    tracing::Span::current().record("correlation_id", tracing::field::display(correlation_id));
    let event = OrderAccepted {
        correlation_id,
        user_id: owner.clone(),
        items,
        accepted_at: chrono::Utc::now(),
        traceparent: Some(trace.to_string()),
    };

    // Status first, then publish: the processor may advance the status as soon as the message is
    // out, and a later ACCEPTED write must never overwrite that.
    let accepted = TrackedStatus::new(OrderStatus::Accepted, None);
    if let Err(err) = app
        .workflow
        .track(correlation_id, owner, accepted, app.settings.workflow_ttl)
        .await
    {
        // Degrade, don't refuse: the order is still queued and its status is served from SQL
        // once persisted.
        tracing::warn!(error = %err, %correlation_id, "workflow state unavailable; accepting without it");
    }
    app.publisher
        .publish(OrderAccepted::QUEUE, event.to_message())
        .await
        .map_err(|err| {
            tracing::error!(error = %err, %correlation_id, "OrderAccepted not published; refusing the order");
            ApiError::Unavailable { detail: "orders cannot be accepted right now; try again shortly".into(), retry_after_secs: 5 }
        })?;
    tracing::info!(%correlation_id, user_id = %owner, lines = event.items.len(), "order accepted");
    Ok(correlation_id)
}
