//! Workflow state in Redis: the server twin of [`crate::memory::MemoryState`], with the same
//! semantics, shared by every replica of every function.

use super::{connect, error, millis, timed};
use async_trait::async_trait;
use orders_core::ports::{BackendError, IdempotencyRecord, WorkflowState, owner_key, status_key};
use orders_core::status::TrackedStatus;
use orders_core::{CorrelationId, OrderStatus, UserId};
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every status, for deriving the forward-only rule from [`OrderStatus::advance`].
const STATUSES: [OrderStatus; 4] = [
    OrderStatus::Accepted,
    OrderStatus::Processing,
    OrderStatus::Completed,
    OrderStatus::Failed,
];

/// The statuses that `next` may replace. Passed to the advance script so Lua applies exactly
/// the rule of [`OrderStatus::advance`] without a copy of it.
fn replaceable_by(next: OrderStatus) -> impl Iterator<Item = &'static str> {
    STATUSES
        .into_iter()
        .filter(move |current| current.advance(next).is_ok())
        .map(OrderStatus::as_str)
}

/// An idempotency record as stored: JSON, so the body needs no escaping rules of our own.
#[derive(Serialize, Deserialize)]
struct StoredRecord {
    fingerprint: String,
    response: Option<StoredResponse>,
}

#[derive(Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    body: String,
}

fn encode_record(record: &IdempotencyRecord) -> String {
    let stored = StoredRecord {
        fingerprint: record.fingerprint.clone(),
        response: record
            .response
            .clone()
            .map(|(status, body)| StoredResponse { status, body }),
    };
    serde_json::to_string(&stored).expect("idempotency records serialise to JSON")
}

fn decode_record(key: &str, raw: &str) -> Result<IdempotencyRecord, BackendError> {
    let stored: StoredRecord = serde_json::from_str(raw)
        .map_err(|e| error(&format!("idempotency key {key} holds no record"), e))?;
    Ok(IdempotencyRecord {
        fingerprint: stored.fingerprint,
        response: stored.response.map(|r| (r.status, r.body)),
    })
}

fn decode_status(cid: CorrelationId, raw: &str) -> Result<TrackedStatus, BackendError> {
    TrackedStatus::decode(raw).map_err(|e| error(&format!("status of {cid}"), e))
}

#[derive(Clone)]
pub struct RedisState {
    connection: ConnectionManager,
    advance: Script,
}

impl RedisState {
    /// Connects to `redis://host:port[/db]` (or `rediss://` for TLS); fails if Redis cannot be
    /// reached now. Later outages fail single calls and are reconnected from by themselves.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        Ok(RedisState {
            connection: connect(url).await?,
            advance: Script::new(include_str!("advance.lua")),
        })
    }
}

#[async_trait]
impl WorkflowState for RedisState {
    async fn track(
        &self,
        cid: CorrelationId,
        owner: &UserId,
        status: TrackedStatus,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let ttl = millis(ttl);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(owner_key(cid))
            .arg(owner.as_str())
            .arg("PX")
            .arg(ttl)
            .cmd("SET")
            .arg(status_key(cid))
            .arg(status.encode())
            .arg("PX")
            .arg(ttl)
            .arg("NX");
        timed("track", pipe.exec_async(&mut self.connection.clone())).await
    }

    async fn advance(
        &self,
        cid: CorrelationId,
        next: TrackedStatus,
        ttl: Duration,
    ) -> Result<TrackedStatus, BackendError> {
        let mut invocation = self.advance.prepare_invoke();
        invocation
            .key(status_key(cid))
            .key(owner_key(cid))
            .arg(millis(ttl))
            .arg(next.status.as_str())
            .arg(next.order_id.map(|id| id.to_string()).unwrap_or_default());
        for current in replaceable_by(next.status) {
            invocation.arg(current);
        }
        let stored: String = timed(
            "advance",
            invocation.invoke_async(&mut self.connection.clone()),
        )
        .await?;
        decode_status(cid, &stored)
    }

    async fn status(&self, cid: CorrelationId) -> Result<Option<TrackedStatus>, BackendError> {
        let raw: Option<String> = timed(
            "status",
            redis::cmd("GET")
                .arg(status_key(cid))
                .query_async(&mut self.connection.clone()),
        )
        .await?;
        raw.map(|raw| decode_status(cid, &raw)).transpose()
    }

    async fn owner(&self, cid: CorrelationId) -> Result<Option<UserId>, BackendError> {
        let raw: Option<String> = timed(
            "owner",
            redis::cmd("GET")
                .arg(owner_key(cid))
                .query_async(&mut self.connection.clone()),
        )
        .await?;
        raw.map(|raw| UserId::parse(raw).map_err(|e| error(&format!("owner of {cid}"), e)))
            .transpose()
    }

    async fn claim_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<Option<IdempotencyRecord>, BackendError> {
        let encoded = encode_record(record);
        // SET NX then GET is two commands: the existing key may expire in between, in which
        // case the claim is simply tried again.
        for _ in 0..2 {
            let set: Value = timed(
                "claim idempotency key",
                redis::cmd("SET")
                    .arg(key)
                    .arg(&encoded)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async(&mut self.connection.clone()),
            )
            .await?;
            if set != Value::Nil {
                return Ok(None);
            }
            let existing: Option<String> = timed(
                "read idempotency key",
                redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut self.connection.clone()),
            )
            .await?;
            if let Some(raw) = existing {
                return decode_record(key, &raw).map(Some);
            }
        }
        Err(error(
            "claim idempotency key",
            format_args!("{key} expired twice while being claimed"),
        ))
    }

    async fn complete_idempotency_key(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<(), BackendError> {
        timed(
            "complete idempotency key",
            redis::cmd("SET")
                .arg(key)
                .arg(encode_record(record))
                .arg("PX")
                .arg(millis(ttl))
                .exec_async(&mut self.connection.clone()),
        )
        .await
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), BackendError> {
        timed(
            "release idempotency key",
            redis::cmd("DEL")
                .arg(key)
                .exec_async(&mut self.connection.clone()),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_replaces_what_is_in_flight_and_completed_replaces_failed() {
        let replaceable = |next| replaceable_by(next).collect::<Vec<_>>();
        assert_eq!(replaceable(OrderStatus::Accepted), ["ACCEPTED"]);
        assert_eq!(
            replaceable(OrderStatus::Processing),
            ["ACCEPTED", "PROCESSING"]
        );
        // A retried FAILED order completes; a COMPLETED one never fails.
        assert_eq!(
            replaceable(OrderStatus::Completed),
            ["ACCEPTED", "PROCESSING", "COMPLETED", "FAILED"]
        );
        assert_eq!(
            replaceable(OrderStatus::Failed),
            ["ACCEPTED", "PROCESSING", "FAILED"]
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let record = IdempotencyRecord {
            fingerprint: "abc".into(),
            response: Some((202, "{\"a\":\"ü|\\n\"}".into())),
        };
        assert_eq!(decode_record("k", &encode_record(&record)).unwrap(), record);
        assert!(decode_record("k", "COMPLETED").is_err());
    }
}
