//! The custom-handler invocation contract for non-HTTP functions: the host POSTs
//! `{"Data": {<binding>: <value>}, "Metadata": {...}}` to `/{FunctionName}` and expects
//! `{"Outputs": {<binding>: <value>}, "Logs": [...], "ReturnValue": ...}`. A non-2xx answer fails
//! the invocation, so the host retries the message and finally dead-letters it.

use crate::problem::ApiError;
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

impl InvokeRequest {
    /// The trigger's message body. The host sends it as a JSON string, or (for JSON content) as
    /// the parsed object; both arrive here as the body's bytes.
    pub fn message(&self, binding: &str) -> Result<Vec<u8>, ApiError> {
        match self.data.get(binding) {
            Some(Value::String(text)) => Ok(text.clone().into_bytes()),
            Some(Value::Null) | None => Err(ApiError::bad_request(
                format!("Data.{binding}"),
                "the trigger binding carries no message",
            )),
            Some(other) => Ok(other.to_string().into_bytes()),
        }
    }

    /// A metadata value by name, whatever its casing (`MessageId`, `messageId`).
    pub fn metadata(&self, name: &str) -> Option<&Value> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn delivery_count(&self) -> u64 {
        self.metadata("DeliveryCount")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .unwrap_or(1)
    }

    /// Application properties (Service Bus `ApplicationProperties`, formerly `UserProperties`).
    pub fn properties(&self) -> BTreeMap<String, String> {
        let props = self
            .metadata("ApplicationProperties")
            .or_else(|| self.metadata("UserProperties"));
        props
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_message_as_a_string_or_an_object() {
        let as_string: InvokeRequest = serde_json::from_value(json!({
            "Data": { "order": "{\"a\":1}" }, "Metadata": { "DeliveryCount": 3 }
        }))
        .unwrap();
        assert_eq!(as_string.message("order").unwrap(), br#"{"a":1}"#);
        assert_eq!(as_string.delivery_count(), 3);
        let as_object: InvokeRequest = serde_json::from_value(
            json!({ "Data": { "order": { "a": 1 } }, "Metadata": { "deliveryCount": "2" } }),
        )
        .unwrap();
        assert_eq!(as_object.message("order").unwrap(), br#"{"a":1}"#);
        assert_eq!(as_object.delivery_count(), 2);
        assert!(as_object.message("other").is_err());
    }

    #[test]
    fn reads_application_or_user_properties() {
        let req: InvokeRequest = serde_json::from_value(json!({
            "Data": {}, "Metadata": { "UserProperties": { "correlationId": "c-1", "n": 5 } }
        }))
        .unwrap();
        let props = req.properties();
        assert_eq!(props["correlationId"], "c-1");
        assert_eq!(props["n"], "5");
    }
}
