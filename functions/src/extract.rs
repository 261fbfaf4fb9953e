//! Request extractors that turn every kind of bad input into a problem naming the field.

use crate::app::AppState;
use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use orders_auth::Principal;
use orders_core::paging::PageRequest;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Largest request body accepted anywhere in the API.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body: 415 without a JSON content type, 413 over the size limit, 400 naming the field
/// for malformed JSON, a wrong type, or an array where the contract has an object.
pub struct ValidJson<T>(pub T);

/// A request body that is a JSON object, with the fields whose arrays hold objects. serde's
/// derived structs also accept arrays (`["AZ-104", 1]` for a line); the contract does not.
pub trait ObjectBody {
    const OBJECT_ARRAYS: &'static [&'static str] = &[];
}

impl<T: DeserializeOwned + ObjectBody, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge(MAX_BODY_BYTES)
                    } else {
                        ApiError::bad_request("body", rejection.body_text())
                    }
                })?;
        parse_body(&bytes).map(ValidJson)
    }
}

/// A body as [`ValidJson`] reads it, once its media type and size are checked.
pub fn parse_body<T: DeserializeOwned + ObjectBody>(bytes: &[u8]) -> Result<T, ApiError> {
    require_objects(bytes, T::OBJECT_ARRAYS)?;
    parse_json(bytes)
}

fn require_objects(bytes: &[u8], object_arrays: &[&str]) -> Result<(), ApiError> {
    // A second, cheap parse of a small body: a `serde_json::Value` keeps the last of duplicate
    // keys, so the typed parse (which refuses them) stays the one that decides. Malformed JSON is
    // left to `parse_json`, which says where it breaks.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request("body", "must be a JSON object"));
    };
    for field in object_arrays {
        if let Some(serde_json::Value::Array(elements)) = object.get(*field)
            && let Some(i) = elements.iter().position(|e| !e.is_object())
        {
            return Err(ApiError::bad_request(
                format!("{field}[{i}]"),
                "must be a JSON object",
            ));
        }
    }
    Ok(())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request("body", format!("malformed JSON: {inner}"))
        } else {
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::bad_request(field, inner.to_string())
        }
    })?;
    // Anything after the JSON value makes the body malformed, not ignorable.
    de.end()
        .map_err(|err| ApiError::bad_request("body", format!("malformed JSON: {err}")))?;
    Ok(value)
}

/// The route's one path parameter as text. A segment that does not decode to UTF-8 becomes ""
/// so the handler's own validation refuses it as a problem (not axum's plain-text 400).
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let segment = Path::<String>::from_request_parts(parts, state).await;
        Ok(PathText(segment.map(|Path(text)| text).unwrap_or_default()))
    }
}

/// The authenticated caller (`Authorization: Bearer …`).
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let principal = state.auth.authenticate_header(header).await?;
        Ok(Caller(principal))
    }
}

/// Raw query parameters; the handlers parse the ones they know, naming the field on error.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|_| ApiError::bad_request("query", "the query string is not valid"))
    }
}

impl QueryParams {
    pub fn text(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn number(&self, name: &'static str) -> Result<Option<u32>, ApiError> {
        self.text(name)
            .map(|raw| {
                raw.parse::<u32>().map_err(|_| {
                    ApiError::bad_request(name, format!("{name} must be a whole number"))
                })
            })
            .transpose()
    }

    pub fn page(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(
            self.number("offset")?,
            self.number("size")?,
        )?)
    }
}
