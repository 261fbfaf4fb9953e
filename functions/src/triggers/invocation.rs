//! The custom-handler invocation contract for non-HTTP functions: the host POSTs
//! `{"Data": {<binding>: <value>}, "Metadata": {...}}` to `/{FunctionName}` and expects
//! `{"Outputs": {<binding>: <value>}, "Logs": [...], "ReturnValue": ...}`. A non-2xx answer fails
//! the invocation, so the host retries the message and finally dead-letters it.
//!
//! Values reach us as the host encodes them, not as the docs' examples show: the host passes
//! every value through `GetHttpScriptInvocationContextValue`
//! (Azure/azure-functions-host, `ScriptInvocationContextExtensions.cs`), so a string arrives
//! JSON-serialized a second time, `byte[]` arrives base64, and an object arrives as itself. The
//! same goes for metadata: `"DeliveryCount":"3"`, `"MessageId":"\"m-1\""`. The golden payloads
//! in `tests/conformance/` pin every shape this module reads.

use crate::problem::ApiError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub struct InvokeRequest {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct InvokeResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

/// How a trigger value was encoded, for logs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A string trigger value as the real host sends it: a JSON string literal holding the text.
    JsonStringLiteral,
    /// The text itself (what a host that does not re-serialize would send).
    RawText,
    /// A JSON object or array (the host's `JObject.FromObject` of a structured value).
    Json,
    /// A `byte[]` trigger value (`dataType: binary`), base64 as `Convert.ToBase64String` makes it.
    Base64,
}

/// The trigger value and how it arrived.
#[derive(Debug)]
pub struct Message {
    pub body: Vec<u8>,
    pub encoding: Encoding,
}

/// Decodes one trigger value. Refuses anything the host cannot have sent, naming what it found.
pub fn decode_value(value: &Value) -> Result<Message, String> {
    let (body, encoding) = match value {
        Value::Object(_) | Value::Array(_) => (value.to_string().into_bytes(), Encoding::Json),
        Value::String(text) => decode_text(text)?,
        Value::Null => return Err("null: the trigger binding carries no message".into()),
        Value::Bool(_) | Value::Number(_) => {
            return Err(format!(
                "a JSON {}: expected a JSON string literal, JSON text, an object or base64",
                if value.is_boolean() {
                    "boolean"
                } else {
                    "number"
                }
            ));
        }
    };
    Ok(Message { body, encoding })
}

fn decode_text(text: &str) -> Result<(Vec<u8>, Encoding), String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('"') {
        return serde_json::from_str::<String>(text)
            .map(|inner| (inner.into_bytes(), Encoding::JsonStringLiteral))
            .map_err(|e| format!("a string that opens a JSON string literal but is not one: {e}"));
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return Ok((text.as_bytes().to_vec(), Encoding::RawText));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(|bytes| (bytes, Encoding::Base64))
        .map_err(|_| {
            "a string that is neither a JSON string literal, JSON text nor base64".to_owned()
        })
}

/// A metadata value as text: a JSON string literal is unwrapped, other scalars are shown as JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone()),
        other => other.to_string(),
    }
}

impl InvokeRequest {
    /// The trigger's message body, whichever way the host encoded it.
    pub fn message(&self, binding: &str) -> Result<Message, ApiError> {
        let value = self.data.get(binding).unwrap_or(&Value::Null);
        decode_value(value).map_err(|found| {
            ApiError::bad_request(
                format!("Data.{binding}"),
                format!("unsupported trigger value encoding: {found}"),
            )
        })
    }

    /// The trigger value of `binding`, read as the event `E`; a 400 naming the binding otherwise.
    pub fn event<E: orders_core::events::IntegrationEvent>(
        &self,
        binding: &str,
    ) -> Result<E, ApiError> {
        let message = self.message(binding)?;
        E::from_json(&message.body)
            .map_err(|e| ApiError::bad_request(format!("Data.{binding}"), e.to_string()))
    }

    /// A metadata value by name, whatever its casing (`MessageId`, `messageId`).
    fn metadata(&self, name: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// A metadata value as text, unwrapped from the host's second serialization.
    pub fn metadata_text(&self, name: &str) -> Option<String> {
        self.metadata(name).map(text)
    }

    /// Service Bus `DeliveryCount`. The RabbitMQ trigger has none (its retries count in a
    /// header of `BasicProperties`), so there every execution reads 1.
    pub fn delivery_count(&self) -> u64 {
        self.metadata_text("DeliveryCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// Application properties (Service Bus `ApplicationProperties`, formerly `UserProperties`),
    /// keyed in lower case: properties sent through the Service Bus REST API arrive as HTTP
    /// headers, whose names the `http` crate lowercases (`correlationId` -> `correlationid`).
    pub fn properties(&self) -> BTreeMap<String, String> {
        let props = self
            .metadata("ApplicationProperties")
            .or_else(|| self.metadata("UserProperties"));
        props
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), text(v)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(data: Value, metadata: Value) -> InvokeRequest {
        serde_json::from_value(json!({ "Data": data, "Metadata": metadata })).unwrap()
    }

    #[test]
    fn decodes_every_encoding_the_host_can_send() {
        let body = r#"{"a":1}"#;
        let cases = [
            (
                json!(serde_json::to_string(body).unwrap()),
                Encoding::JsonStringLiteral,
            ),
            (json!(body), Encoding::RawText),
            (json!({ "a": 1 }), Encoding::Json),
            (json!("eyJhIjoxfQ=="), Encoding::Base64),
        ];
        for (value, encoding) in cases {
            let message = request(json!({ "order": value }), json!({}))
                .message("order")
                .unwrap();
            assert_eq!(message.body, body.as_bytes(), "{value}");
            assert_eq!(message.encoding, encoding, "{value}");
        }
    }

    #[test]
    fn refuses_other_encodings_naming_them() {
        for (value, named) in [
            (json!(42), "number"),
            (json!(true), "boolean"),
            (json!("not base64!"), "neither"),
            (json!("\"unterminated"), "not one"),
            (Value::Null, "no message"),
        ] {
            let err = request(json!({ "order": value }), json!({}))
                .message("order")
                .unwrap_err();
            assert!(err.to_string().contains(named), "{value}: {err}");
        }
        assert!(request(json!({}), json!({})).message("order").is_err());
    }

    #[test]
    fn reads_metadata_serialized_a_second_time() {
        let req = request(
            json!({}),
            json!({ "DeliveryCount": "3", "MessageId": "\"m-1\"", "sessionId": "alice" }),
        );
        assert_eq!(req.delivery_count(), 3);
        assert_eq!(req.metadata_text("messageId").as_deref(), Some("m-1"));
        assert_eq!(req.metadata_text("SessionId").as_deref(), Some("alice"));
        assert_eq!(
            request(json!({}), json!({ "DeliveryCount": 2 })).delivery_count(),
            2
        );
    }

    #[test]
    fn reads_application_or_user_properties_whatever_their_casing() {
        let req = request(
            json!({}),
            json!({ "UserProperties": { "correlationid": "c-1", "n": 5 } }),
        );
        let props = req.properties();
        assert_eq!(props["correlationid"], "c-1");
        assert_eq!(props["n"], "5");
        let req = request(
            json!({}),
            json!({ "ApplicationProperties": { "correlationId": "c-2" } }),
        );
        assert_eq!(req.properties()["correlationid"], "c-2");
    }
}
