//! Bearer-token authentication shared by the functions and the hub (one implementation, so both
//! accept and refuse exactly the same tokens).
//!
//! - Development: HS256 tokens signed with a configured shared key ([`DevTokenIssuer`] makes them).
//! - Real identity providers: RS256/ES256 tokens whose keys come from the issuer's JWKS, found
//!   through OIDC discovery, cached, and re-fetched on rotation ([`jwks::JwksCache`]).
//!
//! Either way the issuer, audience, expiry and not-before claims are checked, only the expected
//! algorithms are accepted (so `alg: none` and HS/RS key confusion fail), and the subject becomes
//! the caller's [`UserId`].

mod dev;
pub mod dev_key;
mod error;
pub mod jwks;
mod settings;
mod validator;

pub use dev::{DevToken, DevTokenIssuer};
pub use error::AuthError;
pub use settings::{AuthMode, AuthSettings};
pub use validator::{KeySource, TokenValidator, ValidatorConfig};

use orders_core::UserId;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
}

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
