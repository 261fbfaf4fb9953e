//! Where to send and how to sign in. The names are those of the Functions Service Bus binding's
//! `connection: "ServiceBusConnection"`, so one set of app settings serves the trigger bindings
//! and intake's publisher alike.

use orders_core::env::{ConfigError, Env};
use orders_core::secret::Secret;

const NAMESPACE: &str = "ServiceBusConnection__fullyQualifiedNamespace";
const CLIENT_ID: &str = "ServiceBusConnection__clientId";
const CONNECTION_STRING: &str = "ServiceBusConnection";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBusSettings {
    /// `contoso.servicebus.windows.net`
    pub namespace: String,
    pub auth: ServiceBusAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceBusAuth {
    /// Entra ID: the user-assigned identity `client_id`, else the platform's or developer's.
    Entra { client_id: Option<String> },
    /// A connection string's shared access key (local use; Azure uses Entra ID).
    SharedAccessKey { key_name: String, key: Secret },
}

impl ServiceBusSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        if let Some(connection_string) = env.string(CONNECTION_STRING) {
            return parse_connection_string(&connection_string);
        }
        let namespace = env.required(NAMESPACE, "QUEUE_TRANSPORT=servicebus")?;
        let namespace = namespace.trim().trim_end_matches('/').to_owned();
        if namespace.contains("://") || !namespace.contains('.') {
            return Err(ConfigError::new(
                NAMESPACE,
                "must be a host name such as contoso.servicebus.windows.net",
            ));
        }
        Ok(ServiceBusSettings {
            namespace,
            auth: ServiceBusAuth::Entra {
                client_id: env.string(CLIENT_ID),
            },
        })
    }
}

/// `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=…;SharedAccessKey=…`
fn parse_connection_string(raw: &str) -> Result<ServiceBusSettings, ConfigError> {
    let field = |name: &str| {
        raw.split(';')
            .filter_map(|part| part.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let missing = |what: &str| ConfigError::new(CONNECTION_STRING, format!("has no {what}"));
    let endpoint = field("Endpoint").ok_or_else(|| missing("Endpoint"))?;
    let namespace = endpoint
        .strip_prefix("sb://")
        .ok_or_else(|| ConfigError::new(CONNECTION_STRING, "Endpoint must start with sb://"))?
        .trim_end_matches('/')
        .to_owned();
    Ok(ServiceBusSettings {
        namespace,
        auth: ServiceBusAuth::SharedAccessKey {
            key_name: field("SharedAccessKeyName").ok_or_else(|| missing("SharedAccessKeyName"))?,
            key: field("SharedAccessKey")
                .map(Secret::new)
                .ok_or_else(|| missing("SharedAccessKey"))?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<ServiceBusSettings, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        let get = |name: &str| map.get(name).map(|v| v.to_string());
        ServiceBusSettings::from_env(&Env::new(&get))
    }

    #[test]
    fn the_bindings_namespace_setting_means_entra_id() {
        let settings = read(&[
            (NAMESPACE, "contoso.servicebus.windows.net"),
            (CLIENT_ID, "3f1c…"),
        ])
        .unwrap();
        assert_eq!(settings.namespace, "contoso.servicebus.windows.net");
        assert_eq!(
            settings.auth,
            ServiceBusAuth::Entra {
                client_id: Some("3f1c…".into())
            }
        );
    }

    #[test]
    fn a_connection_string_signs_with_its_key_and_is_never_printed() {
        let settings = read(&[(
            CONNECTION_STRING,
            "Endpoint=sb://contoso.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=s3cr3t=",
        )])
        .unwrap();
        assert_eq!(settings.namespace, "contoso.servicebus.windows.net");
        assert_eq!(
            settings.auth,
            ServiceBusAuth::SharedAccessKey {
                key_name: "send".into(),
                key: Secret::new("s3cr3t=")
            }
        );
        assert!(!format!("{settings:?}").contains("s3cr3t"));
    }

    #[test]
    fn refuses_what_cannot_work_naming_the_setting() {
        assert_eq!(read(&[]).unwrap_err().name, NAMESPACE);
        assert_eq!(
            read(&[(NAMESPACE, "https://contoso.servicebus.windows.net")])
                .unwrap_err()
                .name,
            NAMESPACE
        );
        let no_key = read(&[(
            CONNECTION_STRING,
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send",
        )]);
        assert_eq!(no_key.unwrap_err().name, CONNECTION_STRING);
    }
}
