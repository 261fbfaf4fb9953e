//! The function app on disk: `host.json` at the root and one folder per function holding its
//! `function.json` (in this repository the folders sit under `functions/`; in a packaged app they
//! are direct children of the root, so both places are searched).

use crate::extensions::{Extension, FROM_INTAKE, TriggerBinding};
use crate::invocation::DataType;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum AppDirError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// What the emulator needs from host.json.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    pub executable: String,
    pub route_prefix: String,
    pub function_timeout: Duration,
    pub max_concurrent_sessions: usize,
    pub max_concurrent_calls: usize,
    /// `extensions.serviceBus.sessionIdleTimeout`; unset, the SDK uses its 60 s try timeout.
    pub session_idle_timeout: Duration,
    /// `extensions.serviceBus.maxAutoLockRenewalDuration` (default 5 min).
    pub max_auto_lock_renewal: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Http { route: String, methods: Vec<String> },
    Queue(TriggerBinding),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub binding: String,
    pub queue: String,
    pub data_type: DataType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub trigger: Trigger,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone)]
pub struct FunctionApp {
    pub root: PathBuf,
    pub host: HostConfig,
    pub functions: Vec<Function>,
}

fn read_json(path: &Path) -> Result<Value, AppDirError> {
    let text = std::fs::read_to_string(path).map_err(|source| AppDirError::Read {
        path: path.into(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| AppDirError::Parse {
        path: path.into(),
        source,
    })
}

/// A .NET TimeSpan as host.json writes durations: `[d.]hh:mm:ss[.fffffff]`; a negative one
/// (`-1`, `-00:00:00.0010000`) means no limit.
fn timespan(raw: &str) -> Option<Duration> {
    if raw.trim_start().starts_with('-') {
        return Some(Duration::MAX);
    }
    let [h, m, s] = raw.split(':').collect::<Vec<_>>()[..] else {
        return None;
    };
    let (d, h): (u64, u64) = match h.split_once('.') {
        Some((d, h)) => (d.parse().ok()?, h.parse().ok()?),
        None => (0, h.parse().ok()?),
    };
    let m: u64 = m.parse().ok()?;
    let seconds: f64 = s
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)?;
    Some(Duration::from_secs(d * 86_400 + h * 3600 + m * 60) + Duration::from_secs_f64(seconds))
}

impl HostConfig {
    fn from_json(host: &Value) -> Result<Self, AppDirError> {
        let executable = host["customHandler"]["description"]["defaultExecutablePath"]
            .as_str()
            .ok_or_else(|| {
                AppDirError::Invalid(
                    "host.json has no customHandler.description.defaultExecutablePath".into(),
                )
            })?;
        let bus = &host["extensions"]["serviceBus"];
        let count = |v: &Value, default: u64| v.as_u64().unwrap_or(default);
        Ok(HostConfig {
            executable: executable.to_owned(),
            route_prefix: host["extensions"]["http"]["routePrefix"]
                .as_str()
                .unwrap_or("api")
                .to_owned(),
            function_timeout: host["functionTimeout"]
                .as_str()
                .and_then(timespan)
                .unwrap_or(Duration::from_secs(300)),
            max_concurrent_sessions: count(&bus["maxConcurrentSessions"], 8).max(1) as usize,
            max_concurrent_calls: count(&bus["maxConcurrentCalls"], 16).max(1) as usize,
            session_idle_timeout: bus["sessionIdleTimeout"]
                .as_str()
                .and_then(timespan)
                .unwrap_or(Duration::from_secs(60)),
            max_auto_lock_renewal: bus["maxAutoLockRenewalDuration"]
                .as_str()
                .and_then(timespan)
                .unwrap_or(Duration::from_secs(300)),
        })
    }
}

#[derive(Deserialize)]
struct Binding {
    #[serde(rename = "type")]
    kind: String,
    direction: String,
    name: String,
    #[serde(rename = "queueName")]
    queue_name: Option<String>,
    route: Option<String>,
    methods: Option<Vec<String>>,
    #[serde(rename = "isSessionsEnabled", default)]
    sessions: bool,
    #[serde(rename = "dataType")]
    data_type: Option<String>,
}

fn function_from_json(name: &str, json: Value, path: &Path) -> Result<Function, AppDirError> {
    #[derive(Deserialize)]
    struct FunctionJson {
        bindings: Vec<Binding>,
    }
    let parsed: FunctionJson =
        serde_json::from_value(json).map_err(|source| AppDirError::Parse {
            path: path.into(),
            source,
        })?;
    let queue = |b: &Binding| {
        b.queue_name.clone().ok_or_else(|| {
            AppDirError::Invalid(format!("{name}: binding {} has no queueName", b.name))
        })
    };
    let data_type = |b: &Binding| {
        DataType::parse(b.data_type.as_deref())
            .map_err(|e| AppDirError::Invalid(format!("{name}: binding {}: {e}", b.name)))
    };
    let mut trigger = None;
    let mut outputs = Vec::new();
    for b in &parsed.bindings {
        match (b.kind.as_str(), b.direction.as_str()) {
            ("httpTrigger", "in") => {
                trigger = Some(Trigger::Http {
                    route: b.route.clone().unwrap_or_else(|| name.to_owned()),
                    methods: b
                        .methods
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .map(|m| m.to_ascii_uppercase())
                        .collect(),
                })
            }
            (kind @ ("serviceBusTrigger" | "rabbitMQTrigger"), "in") => {
                trigger = Some(Trigger::Queue(TriggerBinding {
                    extension: if kind == "rabbitMQTrigger" {
                        Extension::RabbitMq
                    } else {
                        Extension::ServiceBus
                    },
                    name: b.name.clone(),
                    queue: queue(b)?,
                    sessions: b.sessions,
                    data_type: data_type(b)?,
                    content_type: FROM_INTAKE,
                }))
            }
            ("serviceBus" | "rabbitMQ", "out") => outputs.push(Output {
                binding: b.name.clone(),
                queue: queue(b)?,
                data_type: data_type(b)?,
            }),
            ("http", "out") => {}
            (kind, direction) => {
                return Err(AppDirError::Invalid(format!(
                    "{name}: unsupported binding {kind} ({direction})"
                )));
            }
        }
    }
    let trigger = trigger.ok_or_else(|| AppDirError::Invalid(format!("{name} has no trigger")))?;
    Ok(Function {
        name: name.to_owned(),
        trigger,
        outputs,
    })
}

impl FunctionApp {
    pub fn load(root: &Path) -> Result<Self, AppDirError> {
        let host = HostConfig::from_json(&read_json(&root.join("host.json"))?)?;
        let mut functions = Vec::new();
        for dir in [root.to_path_buf(), root.join("functions")] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            entries.sort();
            for folder in entries {
                let path = folder.join("function.json");
                if !path.is_file() {
                    continue;
                }
                let name = folder
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_owned();
                functions.push(function_from_json(&name, read_json(&path)?, &path)?);
            }
        }
        if functions.is_empty() {
            return Err(AppDirError::Invalid(format!(
                "no function.json under {}",
                root.display()
            )));
        }
        Ok(FunctionApp {
            root: root.to_path_buf(),
            host,
            functions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_repositorys_function_app() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let app = FunctionApp::load(&root).unwrap();
        assert_eq!(app.host.executable, "handler");
        assert_eq!(app.host.route_prefix, "");
        assert_eq!(app.host.function_timeout, Duration::from_secs(120));
        // One order per user is the common case: a session slot idles 1 s, not 60 s.
        assert_eq!(app.host.max_concurrent_sessions, 64);
        assert_eq!(app.host.session_idle_timeout, Duration::from_secs(1));
        assert_eq!(app.host.max_auto_lock_renewal, Duration::from_secs(300));
        let process = app
            .functions
            .iter()
            .find(|f| f.name == "OrderProcess")
            .unwrap();
        assert_eq!(
            process.trigger,
            Trigger::Queue(TriggerBinding {
                extension: Extension::ServiceBus,
                name: "order".into(),
                queue: "order.accepted".into(),
                sessions: true,
                data_type: DataType::String,
                content_type: FROM_INTAKE,
            })
        );
        assert_eq!(
            process.outputs,
            [Output {
                binding: "processed".into(),
                queue: "order.processed".into(),
                data_type: DataType::String,
            }]
        );
        let notify = app
            .functions
            .iter()
            .find(|f| f.name == "OrderNotify")
            .unwrap();
        assert!(
            matches!(&notify.trigger, Trigger::Queue(t) if t.queue == "order.processed" && !t.sessions)
        );
        assert!(
            app.functions.iter().any(
                |f| matches!(&f.trigger, Trigger::Http { route, .. } if route == "api/{*path}")
            )
        );
    }

    #[test]
    fn parses_timespans() {
        assert_eq!(timespan("00:02:00"), Some(Duration::from_secs(120)));
        assert_eq!(timespan("01:00:05"), Some(Duration::from_secs(3605)));
        assert_eq!(timespan("00:00:00.250"), Some(Duration::from_millis(250)));
        assert_eq!(timespan("2m"), None);
        assert_eq!(timespan("00:00:-1"), None);
        assert_eq!(timespan("1.00:00:30"), Some(Duration::from_secs(86_430)));
        assert_eq!(timespan("-00:00:00.0010000"), Some(Duration::MAX));
        assert_eq!(timespan("-1"), Some(Duration::MAX));
    }
}
