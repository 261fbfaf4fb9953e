//! Microsoft Entra ID credentials for the Azure adapters (Azure SQL, Service Bus).

use azure_core::credentials::TokenCredential;
use azure_identity::{
    DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};
use std::sync::Arc;

/// A user-assigned managed identity when `client_id` is given; the platform's identity where
/// one exists; the developer's `az`/`azd` sign-in otherwise.
pub(crate) fn entra_credential(
    client_id: Option<&str>,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let credential: Arc<dyn TokenCredential> = match client_id {
        Some(id) => ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: Some(UserAssignedId::ClientId(id.to_owned())),
            ..Default::default()
        }))?,
        // App Service, Functions and Container Apps set IDENTITY_ENDPOINT for their identity.
        None if std::env::var_os("IDENTITY_ENDPOINT").is_some() => {
            ManagedIdentityCredential::new(None)?
        }
        None => DeveloperToolsCredential::new(None)?,
    };
    Ok(credential)
}
