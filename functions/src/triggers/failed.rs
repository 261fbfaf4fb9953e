//! `OrderFailed` (trigger `failed` on `order.accepted/$deadletterqueue`, Service Bus's path of
//! the queue's dead-letter subqueue): an order whose message was dead-lettered is recorded as
//! FAILED in SQL with the broker's reason, its status moves to FAILED, and its owner is told.
//! Every failure fails the invocation, so the dead letter is delivered again, never dropped.
//!
//! An operator retries a failed order once its cause is fixed (`deadletters retry`): the
//! order goes through `OrderProcess` again, and saving it clears the failure. FAILED ranks
//! below COMPLETED in the forward-only status, so the retried order may still complete.

use super::invocation::{InvokeRequest, InvokeResponse};
use crate::app::AppState;
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use orders_core::OrderStatus;
use orders_core::events::{Notification, OrderAccepted};
use orders_core::order::{FailedOrder, FailureRecorded};
use orders_core::ports::{DEAD_LETTER_DESCRIPTION, DEAD_LETTER_REASON};
use orders_core::status::TrackedStatus;
use std::collections::BTreeMap;
use tracing::Instrument;

pub async fn invoke(
    State(app): State<AppState>,
    Json(request): Json<InvokeRequest>,
) -> Result<Json<InvokeResponse>, ApiError> {
    let event = request.event::<OrderAccepted>("failed");
    let traceparent = event.as_ref().ok().and_then(|e| e.traceparent.clone());
    let span = super::invocation_span("OrderFailed", &request, traceparent.as_deref());
    async move {
        let order = event?;
        super::dependencies_ready(&app, &["sql", "fanout"]).await;
        let cid = order.correlation_id;
        tracing::Span::current().record("correlation_id", tracing::field::display(cid));
        let failed = FailedOrder {
            order,
            reason: reason(&request.properties()),
            failed_at: chrono::Utc::now(),
        };
        if let FailureRecorded::AlreadyPersisted(order_id) = app.store.record_failure(&failed).await? {
            tracing::info!(%order_id, "dead letter of an order persisted after all; it stays COMPLETED");
            return Ok(Json(InvokeResponse::default()));
        }
        tracing::error!(reason = %failed.reason, user_id = %failed.order.user_id, "order FAILED: its message was dead-lettered");
        let owner = &failed.order.user_id;
        let failed_status = TrackedStatus::new(OrderStatus::Failed, None);
        if let Err(err) = app.workflow.advance(cid, failed_status, app.settings.workflow_ttl).await {
            tracing::warn!(error = %err, "workflow state unavailable; FAILED is in SQL only");
        }
        let notification = Notification {
            correlation_id: cid,
            status: OrderStatus::Failed,
            order_id: None,
            cursor: None,
        };
        super::notify::publish(&app, owner, &notification).await?;
        Ok(Json(InvokeResponse {
            logs: vec![format!("order {cid} FAILED: {}", failed.reason)],
            ..InvokeResponse::default()
        }))
    }
    .instrument(span)
    .await
}

/// `DeadLetterReason: DeadLetterErrorDescription`, as the broker recorded them (application
/// properties reach the handler lower-cased).
fn reason(properties: &BTreeMap<String, String>) -> String {
    let get = |name: &str| {
        properties
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    match (get(DEAD_LETTER_REASON), get(DEAD_LETTER_DESCRIPTION)) {
        (Some(reason), Some(description)) => format!("{reason}: {description}"),
        (Some(reason), None) => reason.to_owned(),
        (None, _) => "dead-lettered".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_joins_what_the_broker_recorded() {
        let props = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            reason(&props(&[
                ("deadletterreason", "MaxDeliveryCountExceeded"),
                (
                    "deadlettererrordescription",
                    "Message could not be consumed after 10 delivery attempts."
                ),
            ])),
            "MaxDeliveryCountExceeded: Message could not be consumed after 10 delivery attempts."
        );
        assert_eq!(
            reason(&props(&[("deadletterreason", "TTLExpiredException")])),
            "TTLExpiredException"
        );
        assert_eq!(reason(&props(&[])), "dead-lettered");
    }
}
