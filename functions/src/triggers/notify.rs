//! `OrderNotify` (trigger `processed` on `order.processed`): resolves the order's owner and
//! publishes the COMPLETED notification on the fan-out. Every failure fails the invocation so
//! the message is retried and finally dead-lettered, never silently dropped.

use super::invocation::{InvokeRequest, InvokeResponse};
use crate::app::AppState;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use orders_core::events::{Notification, OrderProcessed};
use orders_core::{CorrelationId, OrderStatus, UserId};
use std::time::Duration;
use tracing::Instrument;

/// The owner map is written before the order is queued, so a miss is rare (expired, or Redis
/// restarted); a few short retries ride out a replica's lag before SQL is asked.
const OWNER_LOOKUPS: u32 = 3;
const OWNER_RETRY: Duration = Duration::from_millis(50);
/// Publish attempts in one invocation, 100 ms apart, doubling: about 0.7 s in all.
const PUBLISH_ATTEMPTS: u32 = 4;
const PUBLISH_RETRY: Duration = Duration::from_millis(100);

pub async fn invoke(
    State(app): State<AppState>,
    Json(request): Json<InvokeRequest>,
) -> Result<Json<InvokeResponse>, ApiError> {
    let event = request.event::<OrderProcessed>("processed");
    let traceparent = event.as_ref().ok().and_then(|e| e.traceparent.as_deref());
    let span = super::invocation_span("OrderNotify", &request, traceparent);
    async move {
        let event = event?;
        super::dependencies_ready(&app, &["sql", "fanout"]).await;
        tracing::Span::current().record(
            "correlation_id",
            tracing::field::display(event.correlation_id),
        );
        let owner = owner(&app, event.correlation_id).await?;
        let notification = Notification {
            correlation_id: event.correlation_id,
            status: OrderStatus::Completed,
            order_id: Some(event.order_id),
            cursor: None,
        };
        publish(&app, &owner, &notification).await?;
        tracing::info!(user_id = %owner, order_id = %event.order_id, "owner notified");
        Ok(Json(InvokeResponse {
            logs: vec![format!("notified {owner} of {}", event.correlation_id)],
            ..InvokeResponse::default()
        }))
    }
    .instrument(span)
    .await
}

/// Publishes with a few quick retries: Service Bus redelivers a failed invocation at once, so
/// without them a sub-second Redis blip would spend the message's ten deliveries and
/// dead-letter it. A longer outage still fails the invocation, never drops the notification.
pub(super) async fn publish(
    app: &AppState,
    owner: &UserId,
    notification: &Notification,
) -> Result<(), ApiError> {
    let mut wait = PUBLISH_RETRY;
    for attempt in 1..=PUBLISH_ATTEMPTS {
        match app.fanout.publish(owner, notification).await {
            Ok(()) => return Ok(()),
            Err(err) if attempt < PUBLISH_ATTEMPTS => {
                tracing::warn!(error = %err, attempt, "notification not published; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(err) => {
                tracing::error!(error = %err, "notification not published; failing so it is retried");
            }
        }
    }
    Err(ApiError::Unavailable {
        detail: "notification fan-out unavailable".into(),
        retry_after_secs: 1,
    })
}

/// The order's owner: the workflow map first, then SQL; an error when neither knows.
async fn owner(app: &AppState, cid: CorrelationId) -> Result<UserId, ApiError> {
    for attempt in 1..=OWNER_LOOKUPS {
        match app.workflow.owner(cid).await {
            Ok(Some(owner)) => return Ok(owner),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "workflow state unavailable; asking SQL for the owner");
                break;
            }
        }
        if attempt < OWNER_LOOKUPS {
            tokio::time::sleep(OWNER_RETRY).await;
        }
    }
    match app.store.owner_of(cid).await? {
        Some(owner) => Ok(owner),
        None => {
            tracing::error!("no owner found in workflow state or SQL; failing so it is retried");
            Err(ApiError::NotFound(format!(
                "no owner known for order {cid}"
            )))
        }
    }
}
