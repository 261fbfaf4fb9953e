//! Development tokens: HS256, signed with the configured shared key.

use crate::LEEWAY_SECS;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orders_core::UserId;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

pub struct DevTokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

/// A freshly issued token and how long it lives.
pub struct DevToken {
    pub access_token: String,
    pub expires_in: u64,
}

impl DevTokenIssuer {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, lifetime: Duration) -> Self {
        DevTokenIssuer {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime,
        }
    }

    pub fn issue(&self, user: &UserId) -> DevToken {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user.as_str(),
            name: user.as_str(),
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            nbf: now.saturating_sub(LEEWAY_SECS),
            exp: now + self.lifetime.as_secs(),
        };
        let access_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing with an in-memory key cannot fail");
        DevToken {
            access_token,
            expires_in: self.lifetime.as_secs(),
        }
    }
}
