//! The wire format of Service Bus "Send Message" and of SAS tokens, as Microsoft's REST API
//! reference documents them; pure functions, so tests can check every byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use orders_core::ports::OutboundMessage;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// Characters left as they are when encoding a SAS resource or signature (RFC 3986
/// unreserved), as .NET's `WebUtility.UrlEncode` does for these inputs.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One HTTP request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `POST https://{namespace}/{queue}/messages`: the body is the payload, `BrokerProperties`
/// (JSON) carries MessageId and SessionId, and each application property is a header of its
/// own whose string value is quoted, so Service Bus keeps it a string.
pub fn send_request(
    namespace: &str,
    queue: &str,
    message: &OutboundMessage,
    authorization: &str,
) -> SendRequest {
    let mut broker = serde_json::Map::new();
    broker.insert("MessageId".into(), message.message_id.clone().into());
    if let Some(session) = &message.session_id {
        broker.insert("SessionId".into(), session.clone().into());
    }
    if let Some(correlation) = message.properties.get("correlationId") {
        broker.insert("CorrelationId".into(), correlation.clone().into());
    }
    let mut headers = vec![
        ("Authorization".to_owned(), authorization.to_owned()),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (
            "BrokerProperties".to_owned(),
            serde_json::Value::Object(broker).to_string(),
        ),
    ];
    headers.extend(message.properties.iter().map(|(name, value)| {
        (
            name.clone(),
            serde_json::Value::from(value.as_str()).to_string(),
        )
    }));
    SendRequest {
        url: format!(
            "https://{namespace}/{}/messages?timeout=60",
            utf8_percent_encode(queue, UNRESERVED)
        ),
        headers,
        body: message.body.clone(),
    }
}

/// `SharedAccessSignature sr=…&sig=…&se=…&skn=…`: an HMAC-SHA256, keyed with the key's text,
/// over the URL-encoded resource URI, a newline and the expiry in Unix seconds.
pub fn sas_token(resource_uri: &str, key_name: &str, key: &str, expiry: u64) -> String {
    let resource = utf8_percent_encode(resource_uri, UNRESERVED).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{resource}\n{expiry}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={key_name}",
        utf8_percent_encode(&signature, UNRESERVED)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn accepted() -> OutboundMessage {
        OutboundMessage {
            message_id: "0b8f0f5e-8d1e-4f3c-9a57-2d7a3c1e9f10".into(),
            session_id: Some("alice".into()),
            body: r#"{"type":"order.accepted","version":1}"#.into(),
            properties: BTreeMap::from([
                (
                    "correlationId".into(),
                    "0b8f0f5e-8d1e-4f3c-9a57-2d7a3c1e9f10".into(),
                ),
                (
                    "traceparent".into(),
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                ),
            ]),
        }
    }

    fn header<'a>(request: &'a SendRequest, name: &str) -> &'a str {
        let found: Vec<_> = request.headers.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one {name} header: {:?}",
            request.headers
        );
        &found[0].1
    }

    #[test]
    fn send_message_carries_ids_session_and_properties() {
        let request = send_request(
            "contoso.servicebus.windows.net",
            "order.accepted",
            &accepted(),
            "Bearer t0ken",
        );
        assert_eq!(
            request.url,
            "https://contoso.servicebus.windows.net/order.accepted/messages?timeout=60"
        );
        assert_eq!(header(&request, "Authorization"), "Bearer t0ken");
        assert_eq!(header(&request, "Content-Type"), "application/json");
        let broker: serde_json::Value =
            serde_json::from_str(header(&request, "BrokerProperties")).unwrap();
        assert_eq!(
            broker,
            serde_json::json!({
                "MessageId": "0b8f0f5e-8d1e-4f3c-9a57-2d7a3c1e9f10",
                "SessionId": "alice",
                "CorrelationId": "0b8f0f5e-8d1e-4f3c-9a57-2d7a3c1e9f10",
            })
        );
        assert_eq!(
            header(&request, "traceparent"),
            "\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\""
        );
        assert_eq!(
            header(&request, "correlationId"),
            "\"0b8f0f5e-8d1e-4f3c-9a57-2d7a3c1e9f10\""
        );
        assert_eq!(request.body, accepted().body);
    }

    #[test]
    fn a_message_without_session_has_no_session_id() {
        let mut message = accepted();
        message.session_id = None;
        message.properties.clear();
        let request = send_request(
            "ns.servicebus.windows.net",
            "order.processed",
            &message,
            "x",
        );
        let broker: serde_json::Value =
            serde_json::from_str(header(&request, "BrokerProperties")).unwrap();
        assert_eq!(broker, serde_json::json!({"MessageId": message.message_id}));
        assert_eq!(request.headers.len(), 3);
    }

    #[test]
    fn property_values_are_json_strings_so_quotes_cannot_break_out() {
        let mut message = accepted();
        message.properties = BTreeMap::from([("note".into(), "say \"hi\"".into())]);
        let request = send_request("ns.servicebus.windows.net", "q", &message, "x");
        assert_eq!(header(&request, "note"), r#""say \"hi\"""#);
    }

    /// A known answer, computed outside Rust with Python's hmac, base64 and urllib.parse.quote
    /// following Microsoft's "Generate SAS token" recipe.
    #[test]
    fn sas_token_matches_a_known_answer() {
        let token = sas_token(
            "https://contoso.servicebus.windows.net/order.accepted",
            "RootManageSharedAccessKey",
            "c2VjcmV0LWtleS1mb3ItdGVzdHM=",
            1_800_000_000,
        );
        assert_eq!(
            token,
            "SharedAccessSignature \
             sr=https%3A%2F%2Fcontoso.servicebus.windows.net%2Forder.accepted\
             &sig=PJngPEbfNzRQqVlJ2ZFdqjQxNozyRwkB%2F5EVJRzwkhA%3D&se=1800000000\
             &skn=RootManageSharedAccessKey"
        );
    }
}
