//! What the Functions host sends a custom handler for a non-HTTP invocation, and what it makes
//! of the answer's `Outputs`. A model of Azure/azure-functions-host @ 89dc438d (see
//! tests/conformance/README.md for every source line), so that the handler that passes here is
//! the handler that runs in Azure:
//!
//! - `ScriptInvocationContextExtensions.ToHttpScriptInvocationContext`: `Data` holds each input
//!   and `Metadata` each non-null binding datum, both through `GetHttpScriptInvocationContextValue`:
//!   a string is JSON-serialized a second time, a scalar becomes its JSON text as a string,
//!   `byte[]` becomes base64, an object stays an object, a date loses its fraction and its zone.
//! - `WorkerFunctionInvoker.TransformInput` -> `Utility.ApplyBindingData`: a string trigger value
//!   that is a JSON object adds its top-level non-array properties to the binding data, as
//!   strings (objects stay objects), overwriting names case-insensitively.
//! - `HttpScriptInvocationResultExtensions.GetBindingValue`: an output string that parses as
//!   base64 becomes `byte[]` unless the binding says `dataType: binary`; the Service Bus output
//!   is an `IAsyncCollector<string>` (webjobs-sdk `JobHostMetadataProvider.GetDefaultType`), so
//!   `FunctionBinding.BindAsyncCollectorAsync<string>` sends that `byte[]` as its `ToString()`,
//!   the text `System.Byte[]`; it sends a JSON array as one message per element and
//!   re-serializes a JSON object indented (`ReadAsEnumerable`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A binding's `dataType` in function.json (absent means string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataType {
    #[default]
    String,
    Binary,
}

impl DataType {
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::to_ascii_lowercase).as_deref() {
            None | Some("string") => Ok(DataType::String),
            Some("binary") => Ok(DataType::Binary),
            Some(other) => Err(format!(
                "dataType {other:?} is not supported here (string or binary)"
            )),
        }
    }
}

/// A binding value as the .NET host holds it, before it is encoded for the handler.
#[derive(Debug, Clone, PartialEq)]
pub enum HostValue {
    Text(String),
    Bytes(Vec<u8>),
    Int(i64),
    Bool(bool),
    /// `DateTime` (its `Kind` is lost on the way).
    DateTime(DateTime<Utc>),
    /// `DateTimeOffset`.
    DateTimeOffset(DateTime<Utc>),
    /// A POCO or a dictionary (`JObject.FromObject` succeeds).
    Object(Map<String, Value>),
}

impl HostValue {
    /// `GetHttpScriptInvocationContextValue`, as it appears in the request's JSON.
    pub fn encode(&self) -> Value {
        match self {
            // byte[] is base64 whatever the dataType: returned raw for binary, Newtonsoft then
            // writes byte[] as base64 too.
            HostValue::Bytes(bytes) => Value::String(BASE64.encode(bytes)),
            // DateTime.Parse(value.ToString()): whole seconds, no zone.
            HostValue::DateTime(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string()),
            HostValue::DateTimeOffset(t) => {
                Value::String(t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
            }
            HostValue::Object(map) => Value::Object(map.clone()),
            // JObject.FromObject throws for a scalar, so JsonConvert.SerializeObject(value).
            HostValue::Text(text) => Value::String(Value::String(text.clone()).to_string()),
            HostValue::Int(n) => Value::String(n.to_string()),
            HostValue::Bool(b) => Value::String(b.to_string()),
        }
    }
}

/// One invocation: the trigger value and the binding data, in the host's insertion order.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub trigger_binding: String,
    pub trigger_value: HostValue,
    pub binding_data: Vec<(String, Option<HostValue>)>,
}

/// The `sys` binding datum of the WebJobs SDK (`SystemBindingData`).
#[derive(Debug, Clone)]
pub struct Sys {
    pub utc_now: DateTime<Utc>,
    pub rand_guid: uuid::Uuid,
}

impl Sys {
    pub fn now() -> Self {
        Sys {
            utc_now: Utc::now(),
            rand_guid: uuid::Uuid::new_v4(),
        }
    }
}

impl Invocation {
    /// The request body: `{"Data": {...}, "Metadata": {...}}`.
    pub fn payload(&self, sys: &Sys) -> Value {
        let mut metadata = Map::new();
        for (name, value) in self.binding_data() {
            let Some(value) = value else { continue };
            // Names end up unique case-insensitively (the SDK's binding data dictionary).
            let name = metadata
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&name))
                .cloned()
                .unwrap_or(name);
            metadata.insert(name, value.encode());
        }
        metadata.insert("sys".into(), sys_value(&self.function, sys));
        let mut data = Map::new();
        data.insert(self.trigger_binding.clone(), self.trigger_value.encode());
        serde_json::json!({ "Data": data, "Metadata": metadata })
    }

    /// The extension's binding data, then what `ApplyBindingData` adds from a JSON body.
    fn binding_data(&self) -> Vec<(String, Option<HostValue>)> {
        let mut all = self.binding_data.clone();
        if let HostValue::Text(text) = &self.trigger_value
            && let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text)
        {
            all.extend(body.into_iter().filter_map(|(name, value)| {
                let value = match value {
                    Value::Array(_) | Value::Null => return None,
                    Value::Object(map) => HostValue::Object(map),
                    scalar => HostValue::Text(as_dotnet_string(&scalar)),
                };
                Some((name, Some(value)))
            }));
        }
        all
    }
}

/// `(string)JValue` of a token `JObject.Parse` read: `Convert.ToString(value,
/// InvariantCulture)`. Newtonsoft parses ISO 8601 strings as dates, which print as
/// `MM/dd/yyyy HH:mm:ss`; booleans print as `True`/`False`.
fn as_dotnet_string(scalar: &Value) -> String {
    match scalar {
        Value::String(text) => iso_datetime(text)
            .map(|t| t.format("%m/%d/%Y %H:%M:%S").to_string())
            .unwrap_or_else(|| text.clone()),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_u64().map(|u| u.to_string()))
            .unwrap_or_else(|| n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string())),
        other => other.to_string(),
    }
}

/// A string Newtonsoft's default `DateParseHandling.DateTime` reads as a date: ISO 8601 with a
/// time, its zone kept as written (UTC here, as every date this app writes).
fn iso_datetime(text: &str) -> Option<chrono::NaiveDateTime> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.naive_local())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

fn sys_value(function: &str, sys: &Sys) -> Value {
    serde_json::json!({
        "MethodName": function,
        "UtcNow": iso_date(sys.utc_now, "Z"),
        "RandGuid": sys.rand_guid.to_string(),
    })
}

/// A date nested in an object, as Newtonsoft writes it (`yyyy-MM-ddTHH:mm:ss.FFFFFFF`, trailing
/// zeros of the fraction dropped), then `zone` (`Z` for a UTC DateTime, `+00:00` for an offset).
pub fn iso_date(t: DateTime<Utc>, zone: &str) -> String {
    let fraction = format!("{:07}", t.timestamp_subsec_nanos() / 100);
    let fraction = fraction.trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!("{}{dot}{fraction}{zone}", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// What `byte[]` becomes in an `IAsyncCollector<string>`: `Object.ToString()`.
pub const BYTES_AS_STRING: &str = "System.Byte[]";

/// What the host makes of one output binding's value: the message bodies to send.
pub fn output_messages(value: &Value, data_type: DataType) -> Vec<Vec<u8>> {
    match value {
        Value::Null => Vec::new(),
        Value::String(text) => {
            if data_type != DataType::Binary && from_base64(text).is_some() {
                tracing::error!(
                    value = %text,
                    "an output string that parses as base64 reaches the queue as the text System.Byte[]"
                );
                return vec![BYTES_AS_STRING.as_bytes().to_vec()];
            }
            collected(serde_json::from_str(text).ok(), text)
        }
        other => collected(Some(other.clone()), &other.to_string()),
    }
}

/// `Convert.FromBase64String`: whitespace ignored, padded, a multiple of four.
fn from_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    BASE64.decode(compact).ok()
}

/// `FunctionBinding.ReadAsEnumerable` for an `IAsyncCollector<string>`.
fn collected(json: Option<Value>, text: &str) -> Vec<Vec<u8>> {
    match json {
        Some(Value::Array(items)) => items.iter().map(indented).collect(),
        Some(object @ Value::Object(_)) => vec![indented(&object)],
        _ => vec![text.as_bytes().to_vec()],
    }
}

/// `JToken.ToString()`: Newtonsoft's indented JSON, strings unquoted at the top level (object
/// keys sorted here, where Newtonsoft keeps their order; no consumer depends on it).
fn indented(token: &Value) -> Vec<u8> {
    match token {
        Value::String(s) => s.clone().into_bytes(),
        other => serde_json::to_vec_pretty(other).expect("JSON values serialize"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_values_as_get_http_script_invocation_context_value_does() {
        // ScriptInvocationContextExtensionsTests.GetHttpScriptInvocationContextValueTest_String.
        assert_eq!(
            HostValue::Text("stringTest".into()).encode(),
            json!("\"stringTest\"")
        );
        // DefaultHttpWorkerServiceTests (HttpWorkerTestUtilities' binding data): dequeueCount 4
        // -> "4", "helloMetadata" -> "\"helloMetadata\"", VisibleTime DateTime(2019, 10, 1) and
        // its DateTimeOffset round-tripped through ToString().
        assert_eq!(HostValue::Int(4).encode(), json!("4"));
        assert_eq!(
            HostValue::Text("helloMetadata".into()).encode(),
            json!("\"helloMetadata\"")
        );
        let visible = DateTime::parse_from_rfc3339("2019-10-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            HostValue::DateTime(visible).encode(),
            json!("2019-10-01T00:00:00")
        );
        assert_eq!(
            HostValue::DateTimeOffset(visible).encode(),
            json!("2019-10-01T00:00:00+00:00")
        );
        assert_eq!(HostValue::Bool(false).encode(), json!("false"));
        assert_eq!(HostValue::Bytes(vec![1, 2, 3]).encode(), json!("AQID"));
        let t = DateTime::parse_from_rfc3339("2024-05-17T16:13:45.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            HostValue::DateTime(t).encode(),
            json!("2024-05-17T16:13:45")
        );
        assert_eq!(
            HostValue::DateTimeOffset(t).encode(),
            json!("2024-05-17T16:13:45+00:00")
        );
    }

    #[test]
    fn a_json_body_adds_its_top_level_properties_as_dotnet_strings() {
        let invocation = Invocation {
            function: "F".into(),
            trigger_binding: "msg".into(),
            trigger_value: HostValue::Text(
                r#"{"correlationId":"c","n":1,"o":{"a":1},"l":[1],"at":"2026-11-30T10:00:00.5Z","b":true,"x":1.0}"#.into(),
            ),
            binding_data: vec![
                ("CorrelationId".into(), Some(HostValue::Text("x".into()))),
                ("To".into(), None),
            ],
        };
        let payload = invocation.payload(&Sys::now());
        let metadata = payload["Metadata"].as_object().unwrap();
        assert_eq!(metadata["CorrelationId"], "\"c\"");
        assert_eq!(metadata["n"], "\"1\"");
        assert_eq!(metadata["at"], "\"11/30/2026 10:00:00\"");
        assert_eq!(metadata["b"], "\"True\"");
        assert_eq!(metadata["x"], "\"1\"");
        assert_eq!(metadata["o"], json!({ "a": 1 }));
        assert!(!metadata.contains_key("l") && !metadata.contains_key("To"));
        assert!(!metadata.contains_key("correlationId"));
        let data: String = serde_json::from_str(payload["Data"]["msg"].as_str().unwrap()).unwrap();
        assert!(data.starts_with(r#"{"correlationId":"c","n":1"#), "{data}");
    }

    #[test]
    fn outputs_follow_the_base64_rule_then_the_collector() {
        // "test" is valid base64 (ProcessDefaultInvocationRequest_BinaryData_Succeeds): the
        // host decodes it, and the string collector sends the byte[]'s ToString().
        assert_eq!(
            output_messages(&json!("test"), DataType::String),
            [b"System.Byte[]".to_vec()]
        );
        assert_eq!(
            output_messages(&json!("test"), DataType::Binary),
            [b"test".to_vec()]
        );
        assert_eq!(
            output_messages(&json!("hello"), DataType::String),
            [b"hello".to_vec()]
        );
        assert_eq!(
            output_messages(&json!(r#"{"a":1}"#), DataType::String),
            [b"{\n  \"a\": 1\n}".to_vec()]
        );
        assert_eq!(
            output_messages(&json!([{ "a": 1 }, "x"]), DataType::String),
            [b"{\n  \"a\": 1\n}".to_vec(), b"x".to_vec()]
        );
        assert!(output_messages(&Value::Null, DataType::String).is_empty());
    }
}
