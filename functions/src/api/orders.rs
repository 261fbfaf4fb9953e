//! The caller's orders: place (202 + Location), list, get by id or correlation id, soft delete.

use super::dto::{AcceptedDto, OrderDto, PageDto};
use crate::app::AppState;
use crate::extract::{Caller, ObjectBody, PathText, QueryParams, ValidJson};
use crate::idempotency::{self, Claim};
use crate::intake;
use crate::problem::ApiError;
use crate::trace_context::TraceParent;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_core::intake::RequestedLine;
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, OrderRef, OrderStatus, UserId};
use serde::Deserialize;
use tracing::Instrument;

#[derive(Deserialize)]
pub struct PlaceOrderRequest {
    items: Vec<LineRequest>,
}

impl ObjectBody for PlaceOrderRequest {
    const OBJECT_ARRAYS: &'static [&'static str] = &["items"];
}

impl PlaceOrderRequest {
    /// The lines as requested, and their canonical form: what the request means, not how its
    /// JSON was spaced or cased (the idempotency fingerprint).
    pub fn lines(self) -> (Vec<RequestedLine>, String) {
        let lines: Vec<RequestedLine> = self
            .items
            .into_iter()
            .map(|l| RequestedLine {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect();
        let canonical: Vec<(String, i64)> = lines
            .iter()
            .map(|l| (l.product_id.to_ascii_uppercase(), l.quantity))
            .collect();
        let canonical = serde_json::to_string(&canonical).unwrap_or_default();
        (lines, canonical)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LineRequest {
    product_id: String,
    quantity: i64,
}

#[tracing::instrument(
    name = "place_order",
    skip_all,
    fields(user_id = %caller.user_id, correlation_id = tracing::field::Empty, trace_id = tracing::field::Empty)
)]
pub async fn place(
    State(app): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    ValidJson(request): ValidJson<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency::key_from(&headers)?;
    let (lines, canonical) = request.lines();
    // A key (with the request) fixes the correlation id, so a retry is the same order even when
    // the idempotency store is down and cannot replay.
    let correlation_id = key.as_deref().map_or_else(CorrelationId::generate, |key| {
        CorrelationId::for_idempotency_key(&caller.user_id, key, &canonical)
    });
    let claimed = match idempotency::claim(&app, &caller.user_id, key, &canonical).await? {
        Claim::Replay { status, body } => return Ok(replay(status, body)),
        Claim::Run(claimed) => claimed,
    };
    // Runs to the end even if the client goes away, so a claimed key is always answered or freed.
    let owner = caller.user_id;
    let incoming = headers.get("traceparent").and_then(|v| v.to_str().ok());
    // With traces exported (the HTTP span joined the caller's trace), the message carries this
    // span's ids so the next hop is its child.
    let trace = orders_telemetry::current_traceparent()
        .and_then(|exported| TraceParent::parse(&exported))
        .unwrap_or_else(|| TraceParent::continue_or_start(incoming));
    tracing::Span::current().record("trace_id", trace.trace_id.as_str());
    let task = async move {
        let accepted = intake::accept_order(&app, &owner, correlation_id, &lines, &trace).await;
        if let Some(claimed) = claimed {
            match &accepted {
                Ok(cid) => {
                    claimed
                        .finish(&app, StatusCode::ACCEPTED.as_u16(), &accepted_body(*cid))
                        .await
                }
                Err(_) => claimed.abandon(&app).await,
            }
        }
        accepted
    };
    let outcome = tokio::spawn(task.instrument(tracing::Span::current()));
    let correlation_id = outcome.await.map_err(|e| ApiError::Internal(e.into()))??;
    Ok(accepted_response(
        accepted_body(correlation_id),
        &status_url(correlation_id),
        false,
    ))
}

fn status_url(cid: CorrelationId) -> String {
    format!("/api/orders/{cid}")
}

fn accepted_body(correlation_id: CorrelationId) -> String {
    let dto = AcceptedDto {
        correlation_id,
        status: OrderStatus::Accepted.as_str(),
        status_url: status_url(correlation_id),
    };
    serde_json::to_string(&dto).unwrap_or_default()
}

fn accepted_response(body: String, location: &str, replayed: bool) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The first answer again, Location included.
fn replay(status: u16, body: String) -> Response {
    let location = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["statusUrl"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut response = accepted_response(body, &location, true);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
    response
}

pub async fn list(
    State(app): State<AppState>,
    Caller(caller): Caller,
    query: QueryParams,
) -> Result<Json<PageDto<OrderDto>>, ApiError> {
    let page = app
        .store
        .list_orders(&caller.user_id, query.page()?)
        .await?;
    Ok(Json(PageDto::from_page(page, OrderDto::from)))
}

fn parse_ref(raw: &str) -> Result<OrderRef, ApiError> {
    raw.parse()
        .map_err(|e: orders_core::ids::IdError| ApiError::bad_request("ref", e.to_string()))
}

fn no_such_order() -> ApiError {
    ApiError::NotFound("no such order".into())
}

/// Workflow state first (cheap, and it knows orders not yet persisted), SQL as the authority.
pub async fn get(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathText(raw): PathText,
) -> Result<Json<OrderDto>, ApiError> {
    let order_ref = parse_ref(&raw)?;
    let tracked = match order_ref {
        OrderRef::Correlation(cid) => tracked_status(&app, &caller.user_id, cid)
            .await?
            .map(|t| (cid, t)),
        OrderRef::Id(_) => None,
    };
    let in_flight =
        |t: &TrackedStatus| matches!(t.status, OrderStatus::Accepted | OrderStatus::Processing);
    if let Some((cid, t)) = tracked
        && in_flight(&t)
    {
        return Ok(Json(OrderDto::in_flight(cid, t)));
    }
    if let Some(order) = app.store.find_order(&caller.user_id, order_ref).await? {
        return Ok(Json(order.into()));
    }
    // A FAILED order lives in SQL beside the orders, with its reason.
    if let OrderRef::Correlation(cid) = order_ref
        && let Some(failed) = app.store.find_failure(&caller.user_id, cid).await?
    {
        return Ok(Json(failed.into()));
    }
    // COMPLETED in the state but not in SQL means deleted (or not visible): not found.
    tracked
        .filter(|(_, t)| t.status != OrderStatus::Completed)
        .map(|(cid, t)| Json(OrderDto::in_flight(cid, t)))
        .ok_or_else(no_such_order)
}

/// The tracked status of the caller's order; another user's order is "not found".
/// An unavailable state store is not an error: SQL answers instead.
async fn tracked_status(
    app: &AppState,
    caller: &UserId,
    cid: CorrelationId,
) -> Result<Option<TrackedStatus>, ApiError> {
    let owner = match app.workflow.owner(cid).await {
        Ok(owner) => owner,
        Err(err) => {
            tracing::warn!(error = %err, correlation_id = %cid, "workflow state unavailable; reading SQL");
            return Ok(None);
        }
    };
    match owner {
        None => Ok(None),
        Some(owner) if &owner != caller => Err(no_such_order()),
        Some(_) => Ok(app.workflow.status(cid).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, correlation_id = %cid, "workflow state unavailable; reading SQL");
            None
        })),
    }
}

pub async fn delete(
    State(app): State<AppState>,
    Caller(caller): Caller,
    PathText(raw): PathText,
) -> Result<StatusCode, ApiError> {
    let order = app
        .store
        .find_order(&caller.user_id, parse_ref(&raw)?)
        .await?
        .ok_or_else(no_such_order)?;
    if app
        .store
        .delete_order(&caller.user_id, order.order_id)
        .await?
    {
        tracing::info!(order_id = %order.order_id, correlation_id = %order.correlation_id, "order deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such_order())
    }
}
