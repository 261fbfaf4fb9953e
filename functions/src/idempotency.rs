//! `Idempotency-Key`: the same key and body from the same user replays the first answer; the same
//! key with another body is refused (422); a retry while the first request is still running gets
//! 409 so the client can retry again. The key also fixes the order's correlation id
//! (`CorrelationId::for_idempotency_key`), which is what keeps a retry to one order while this
//! store is down.

use crate::app::AppState;
use crate::problem::ApiError;
use axum::http::HeaderMap;
use orders_core::UserId;
use orders_core::ports::IdempotencyRecord;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// How long an unanswered claim holds its key. Only the answer is kept for the full TTL, so a
/// claim whose request died somehow blocks retries for a minute, not a day.
const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// A claimed key: either this request runs (and must `finish` or `abandon`), or it replays.
pub enum Claim {
    Run(Option<ClaimedKey>),
    Replay { status: u16, body: String },
}

pub struct ClaimedKey {
    key: String,
    fingerprint: String,
}

/// Reads and validates the header: 1 to 255 visible ASCII characters.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "Idempotency-Key",
            "must be 1 to 255 visible ASCII characters",
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    let ok = (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| Some(key.to_owned())).ok_or_else(invalid)
}

/// Claims `key` for `owner` and a request whose canonical form is `canonical`.
pub async fn claim(
    app: &AppState,
    owner: &UserId,
    key: Option<String>,
    canonical: &str,
) -> Result<Claim, ApiError> {
    let Some(key) = key else {
        return Ok(Claim::Run(None));
    };
    // Length-prefixed, so user "a" with key "b:c" and user "a:b" with key "c" never collide.
    let key = format!("idem:{}:{owner}:{key}", owner.as_str().len());
    let fingerprint = format!("{:x}", Sha256::digest(canonical.as_bytes()));
    let record = IdempotencyRecord {
        fingerprint: fingerprint.clone(),
        response: None,
    };
    match app
        .workflow
        .claim_idempotency_key(&key, &record, CLAIM_LEASE)
        .await
    {
        Ok(None) => Ok(Claim::Run(Some(ClaimedKey { key, fingerprint }))),
        Ok(Some(existing)) if existing.fingerprint != fingerprint => Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body".into(),
        )),
        Ok(Some(IdempotencyRecord {
            response: Some((status, body)),
            ..
        })) => Ok(Claim::Replay { status, body }),
        Ok(Some(_)) => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still being processed".into(),
        )),
        Err(err) => {
            // Without the store there is no replay and no 422 for a changed body, but the key
            // still fixes the correlation id: the queue's duplicate detection and the unique
            // correlation id at persistence keep a retry from making a second order.
            tracing::warn!(error = %err, "idempotency store unavailable; the derived correlation id deduplicates");
            Ok(Claim::Run(None))
        }
    }
}

impl ClaimedKey {
    /// Stores the answer to replay.
    pub async fn finish(self, app: &AppState, status: u16, body: &str) {
        let record = IdempotencyRecord {
            fingerprint: self.fingerprint,
            response: Some((status, body.to_owned())),
        };
        if let Err(err) = app
            .workflow
            .complete_idempotency_key(&self.key, &record, app.settings.idempotency_ttl)
            .await
        {
            tracing::warn!(error = %err, "could not store the idempotent answer");
        }
    }

    /// Frees the key after a failure, so the client's retry runs afresh.
    pub async fn abandon(self, app: &AppState) {
        if let Err(err) = app.workflow.release_idempotency_key(&self.key).await {
            tracing::warn!(error = %err, "could not release an idempotency key");
        }
    }
}
