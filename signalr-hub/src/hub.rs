//! The hub itself: shared state and the client-callable methods.

use crate::config::Limits;
use crate::connection::Registry;
use crate::metrics::Metrics;
use orders_auth::TokenValidator;
use orders_core::ports::{NotificationHistory, OrderStore, WorkflowState};
use orders_core::{CorrelationId, OrderRef, OrderStatus, UserId};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How long a status lookup may take before the invocation fails.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where `GetCurrentStatus` looks: workflow state first, SQL when the state has forgotten.
#[derive(Clone, Default)]
pub struct StatusLookup {
    pub state: Option<Arc<dyn WorkflowState>>,
    pub store: Option<Arc<dyn OrderStore>>,
}

impl StatusLookup {
    /// The caller's order as `{correlationId, status, orderId}`, or `null` when it is unknown
    /// or another user's.
    pub async fn current_status(&self, user: &UserId, cid: CorrelationId) -> Result<Value, String> {
        let failed = |e: orders_core::ports::BackendError| {
            tracing::warn!(correlation_id = %cid, error = %e, "status lookup failed");
            "The status could not be read right now; try again.".to_owned()
        };
        if let Some(state) = &self.state {
            match state.owner(cid).await.map_err(failed)? {
                Some(owner) if &owner != user => return Ok(Value::Null),
                Some(_) => {
                    if let Some(tracked) = state.status(cid).await.map_err(failed)? {
                        return Ok(json!({
                            "correlationId": cid,
                            "status": tracked.status,
                            "orderId": tracked.order_id,
                        }));
                    }
                }
                None => {}
            }
        }
        if let Some(store) = &self.store
            && let Some(order) = store
                .find_order(user, OrderRef::Correlation(cid))
                .await
                .map_err(failed)?
        {
            return Ok(json!({
                "correlationId": cid,
                "status": order.status,
                "orderId": order.order_id,
            }));
        }
        if let Some(store) = &self.store
            && store
                .find_failure(user, cid)
                .await
                .map_err(failed)?
                .is_some()
        {
            return Ok(json!({
                "correlationId": cid,
                "status": OrderStatus::Failed,
                "orderId": null,
            }));
        }
        Ok(Value::Null)
    }
}

pub struct Hub {
    pub validator: Arc<TokenValidator>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub lookup: StatusLookup,
    pub limits: Limits,
    /// `redis` or `memory`, for the health probe.
    pub fanout: &'static str,
    /// Each user's recent notifications, replayed to a client that reconnects with `?after=`.
    pub history: Option<Arc<dyn NotificationHistory>>,
    pub shutting_down: AtomicBool,
}

impl Hub {
    pub fn new(
        validator: Arc<TokenValidator>,
        lookup: StatusLookup,
        limits: Limits,
        fanout: &'static str,
        history: Option<Arc<dyn NotificationHistory>>,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        Arc::new(Hub {
            validator,
            registry: Registry::new(limits.clone(), Arc::clone(&metrics)),
            metrics,
            lookup,
            limits,
            fanout,
            history,
            shutting_down: AtomicBool::new(false),
        })
    }
}

fn bad_arguments(target: &str, given: usize, expected: usize) -> String {
    format!(
        "Failed to invoke '{target}' due to an error on the server. InvalidDataException: \
         Invocation provides {given} argument(s) but target expects {expected}."
    )
}

/// Runs a hub method. Names match case-insensitively, as in ASP.NET Core SignalR.
pub async fn invoke(
    hub: &Hub,
    user: &UserId,
    target: &str,
    arguments: Vec<Value>,
) -> Result<Value, String> {
    match target.to_ascii_lowercase().as_str() {
        "ping" => {
            if !arguments.is_empty() {
                return Err(bad_arguments(target, arguments.len(), 0));
            }
            Ok(json!("pong"))
        }
        "getcurrentstatus" => {
            let [argument] = <[Value; 1]>::try_from(arguments)
                .map_err(|args| bad_arguments(target, args.len(), 1))?;
            let cid = argument
                .as_str()
                .and_then(|s| s.parse::<CorrelationId>().ok())
                .ok_or_else(|| {
                    format!(
                        "Failed to invoke '{target}' due to an error on the server. \
                         InvalidDataException: correlationId must be a UUID string."
                    )
                })?;
            tokio::time::timeout(LOOKUP_TIMEOUT, hub.lookup.current_status(user, cid))
                .await
                .unwrap_or_else(|_| {
                    Err("The status could not be read right now; try again.".to_owned())
                })
        }
        _ => Err(format!("Unknown hub method '{target}'")),
    }
}
