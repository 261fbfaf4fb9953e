//! Azure Service Bus, the send side: intake's publisher in Azure, where the Functions host
//! receives `order.accepted` and `order.processed` through its trigger bindings.
//!
//! This talks to the documented Service Bus REST API ("Send Message") rather than using the
//! `azure_messaging_servicebus` crate: the official crate is marked early development and not
//! for production, and it brings an AMQP stack whose link would have to outlive each short
//! Functions invocation. One HTTPS POST per order carries everything intake needs: the body,
//! `MessageId` (duplicate detection), `SessionId` (per-user FIFO) and application properties,
//! and a `201 Created` means the message is stored.

mod request;
mod settings;

pub use request::{SendRequest, sas_token, send_request};
pub use settings::{ServiceBusAuth, ServiceBusSettings};

use crate::entra::entra_credential;
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use orders_core::ports::{BackendError, MessagePublisher, OutboundMessage};
use orders_core::secret::Secret;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The scope of Entra ID tokens for Service Bus data-plane calls.
const SCOPE: &str = "https://servicebus.azure.net/.default";
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime of the SAS tokens made from a connection string's key.
const SAS_LIFETIME: Duration = Duration::from_secs(3600);

pub struct ServiceBusPublisher {
    http: reqwest::Client,
    namespace: String,
    signer: Signer,
}

enum Signer {
    Entra(Arc<dyn TokenCredential>),
    SharedAccessKey { key_name: String, key: Secret },
}

fn backend(cause: impl std::fmt::Display) -> BackendError {
    BackendError::new("servicebus", cause)
}

impl ServiceBusPublisher {
    pub fn new(settings: &ServiceBusSettings) -> Result<Self, BackendError> {
        let signer = match &settings.auth {
            ServiceBusAuth::Entra { client_id } => {
                Signer::Entra(entra_credential(client_id.as_deref()).map_err(backend)?)
            }
            ServiceBusAuth::SharedAccessKey { key_name, key } => Signer::SharedAccessKey {
                key_name: key_name.clone(),
                key: key.clone(),
            },
        };
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(backend)?;
        Ok(ServiceBusPublisher {
            http,
            namespace: settings.namespace.clone(),
            signer,
        })
    }

    /// An `Authorization` value: an Entra ID bearer token (the credential caches and renews
    /// it) or a SAS token for the queue.
    async fn authorization(&self, queue: &str) -> Result<String, BackendError> {
        match &self.signer {
            Signer::Entra(credential) => {
                let token = credential
                    .get_token(&[SCOPE], None)
                    .await
                    .map_err(backend)?;
                Ok(format!("Bearer {}", token.token.secret()))
            }
            Signer::SharedAccessKey { key_name, key } => {
                let expiry = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    + SAS_LIFETIME;
                let resource = format!("https://{}/{queue}", self.namespace);
                Ok(sas_token(
                    &resource,
                    key_name,
                    key.expose(),
                    expiry.as_secs(),
                ))
            }
        }
    }
}

#[async_trait]
impl MessagePublisher for ServiceBusPublisher {
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        let authorization = self.authorization(queue).await?;
        let request = send_request(&self.namespace, queue, &message, &authorization);
        let mut call = self.http.post(&request.url).body(request.body);
        for (name, value) in &request.headers {
            call = call.header(name, value);
        }
        let response = call.send().await.map_err(backend)?;
        let status = response.status();
        if status == reqwest::StatusCode::CREATED {
            return Ok(());
        }
        let detail = response.text().await.unwrap_or_default();
        Err(backend(format!(
            "sending to {queue} answered {status}: {}",
            detail.chars().take(300).collect::<String>()
        )))
    }
}
