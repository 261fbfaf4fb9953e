//! The one place errors become HTTP answers: RFC 9457 problem details (`application/problem+json`).
//! Internal causes are logged here and never sent to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orders_auth::AuthError;
use orders_core::intake::OrderRequestError;
use orders_core::paging::PagingError;
use orders_core::ports::BackendError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    BadRequest { field: String, detail: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("unknown or unavailable products")]
    UnknownProducts(Vec<String>),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: u32,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "productIds")]
    product_ids: Option<&'a [String]>,
}

impl ApiError {
    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.into(),
            detail: detail.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::UnknownProducts(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, documented problem type per kind of error.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "/problems/validation",
            ApiError::Unauthorized(_) => "/problems/unauthorized",
            ApiError::Forbidden(_) => "/problems/forbidden",
            ApiError::NotFound(_) => "/problems/not-found",
            ApiError::UnknownProducts(_) => "/problems/unknown-products",
            ApiError::MethodNotAllowed => "/problems/method-not-allowed",
            ApiError::Conflict(_) => "/problems/conflict",
            ApiError::PayloadTooLarge(_) => "/problems/payload-too-large",
            ApiError::UnsupportedMediaType(_) => "/problems/unsupported-media-type",
            ApiError::Unprocessable(_) => "/problems/idempotency-key-reused",
            ApiError::Unavailable { .. } => "/problems/unavailable",
            ApiError::Internal(_) => "/problems/internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let detail = match &self {
            ApiError::UnknownProducts(ids) => {
                format!("unknown or unavailable products: {}", ids.join(", "))
            }
            other => other.to_string(),
        };
        let body = Problem {
            kind: self.kind(),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            field: match &self {
                ApiError::BadRequest { field, .. } => Some(field),
                ApiError::UnknownProducts(_) => Some("items"),
                _ => None,
            },
            product_ids: match &self {
                ApiError::UnknownProducts(ids) => Some(ids),
                _ => None,
            },
        };
        let mut response =
            (status, serde_json::to_string(&body).unwrap_or_default()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            ApiError::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            // The same request is still running; its answer is moments away.
            ApiError::Conflict(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
            }
            _ => {}
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Missing | AuthError::Invalid(_) => ApiError::Unauthorized(err.to_string()),
            AuthError::NoSubject => ApiError::Forbidden(err.to_string()),
            AuthError::KeysUnavailable(cause) => {
                tracing::warn!(%cause, "cannot fetch the issuer's signing keys");
                ApiError::Unavailable {
                    detail: "cannot verify tokens right now".into(),
                    retry_after_secs: 5,
                }
            }
        }
    }
}

impl From<OrderRequestError> for ApiError {
    fn from(err: OrderRequestError) -> Self {
        match err {
            OrderRequestError::UnknownProducts(ids) => {
                ApiError::UnknownProducts(ids.into_iter().map(String::from).collect())
            }
            other => ApiError::bad_request(other.field(), other.to_string()),
        }
    }
}

impl From<PagingError> for ApiError {
    fn from(err: PagingError) -> Self {
        ApiError::bad_request(err.field(), err.to_string())
    }
}

/// A transient failure is 503 with Retry-After (try again); a permanent one is 500 (the same
/// request will fail again). Either way the client sees no detail; the log has the chain.
impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        if err.is_transient() {
            tracing::error!(error = %error_chain(&err), "dependency failed");
            ApiError::Unavailable {
                detail: "a dependency is unavailable; try again shortly".into(),
                retry_after_secs: 5,
            }
        } else {
            // Logged with its chain when the response is made.
            ApiError::Internal(anyhow::Error::new(err))
        }
    }
}

/// `error: cause: cause's cause`, for one log line.
fn error_chain(err: &BackendError) -> String {
    let mut text = err.to_string();
    let mut next = std::error::Error::source(err).and_then(std::error::Error::source);
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_core::ports::ErrorKind;

    #[test]
    fn a_transient_failure_is_503_with_retry_after_and_a_permanent_one_500() {
        let down = ApiError::from(BackendError::new("redis", "connection refused"));
        let response = down.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let refused = BackendError::caused_by(
            "sqlite",
            ErrorKind::Permanent,
            std::io::Error::other("constraint failed"),
        );
        let response = ApiError::from(refused).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!response.headers().contains_key("retry-after"));
    }
}
