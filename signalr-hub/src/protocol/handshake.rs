//! The handshake: JSON records whatever hub protocol follows (`HandshakeProtocol.ts`).

use super::json::record;
use super::{Frame, HubProtocol};
use serde::Deserialize;
use serde_json::json;

/// `{"protocol":"json"|"messagepack","version":1}`.
#[derive(Debug, Deserialize)]
struct HandshakeRequest {
    protocol: String,
    version: u64,
}

/// Reads a handshake record (separator removed): the protocol and its version. Version 2 (a
/// client with stateful reconnect) adds the Ack and Sequence messages; both are accepted, as
/// ASP.NET Core does. `Err` holds the text for the `{"error": ...}` reply.
pub fn parse_handshake(record: &[u8]) -> Result<(HubProtocol, u64), String> {
    let request: HandshakeRequest = serde_json::from_slice(record)
        .map_err(|_| "Handshake request is not valid JSON with 'protocol' and 'version'.")?;
    let protocol = HubProtocol::ALL
        .into_iter()
        .find(|p| p.name() == request.protocol)
        .ok_or_else(|| {
            format!(
                "The protocol '{}' is not supported; this hub speaks 'json' and 'messagepack'.",
                request.protocol
            )
        })?;
    if !(1..=2).contains(&request.version) {
        return Err(format!(
            "The server does not support version {} of the '{}' protocol.",
            request.version, request.protocol
        ));
    }
    Ok((protocol, request.version))
}

/// The successful reply, `{}` and a separator, in the frame type `protocol` uses from now on
/// (ASP.NET Core switches the transport to binary before it writes the reply).
pub fn handshake_ok(protocol: HubProtocol) -> Frame {
    let text = record(&json!({}));
    match protocol {
        HubProtocol::Json => Frame::Text(text.into()),
        HubProtocol::MessagePack => Frame::Binary(text.into_bytes().into()),
    }
}

/// The refusal: no protocol was agreed, so it is text.
pub fn handshake_error(error: &str) -> Frame {
    Frame::Text(record(&json!({ "error": error })).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_json_and_messagepack_versions_1_and_2() {
        let parse = |s: &str| parse_handshake(s.as_bytes());
        assert_eq!(
            parse(r#"{"version":1,"protocol":"json"}"#),
            Ok((HubProtocol::Json, 1))
        );
        assert_eq!(
            parse(r#"{"protocol":"messagepack","version":2}"#),
            Ok((HubProtocol::MessagePack, 2))
        );
        assert!(parse(r#"{"protocol":"blazorpack","version":1}"#).is_err());
        assert!(parse(r#"{"protocol":"json","version":7}"#).is_err());
        assert!(parse("garbage").is_err());
    }

    #[test]
    fn replies_in_the_chosen_protocols_frame_type() {
        assert_eq!(
            handshake_ok(HubProtocol::Json),
            Frame::Text("{}\u{1e}".into())
        );
        assert_eq!(handshake_ok(HubProtocol::MessagePack).as_bytes(), b"{}\x1e");
        assert!(matches!(
            handshake_ok(HubProtocol::MessagePack),
            Frame::Binary(_)
        ));
    }
}
