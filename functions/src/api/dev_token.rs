//! `POST /dev/token`: a signed token for any user name. Only routed when AUTH_MODE=dev.

use crate::app::AppState;
use crate::extract::{ObjectBody, ValidJson};
use crate::problem::ApiError;
use axum::Json;
use axum::extract::State;
use orders_core::UserId;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    user_id: String,
}

impl ObjectBody for TokenRequest {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

pub async fn issue(
    State(app): State<AppState>,
    ValidJson(req): ValidJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let issuer = app
        .dev_tokens
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))?;
    let user = UserId::parse(req.user_id.trim())
        .map_err(|e| ApiError::bad_request("userId", e.to_string()))?;
    let token = issuer.issue(&user);
    Ok(Json(TokenResponse {
        access_token: token.access_token,
        token_type: "Bearer",
        expires_in: token.expires_in,
    }))
}
