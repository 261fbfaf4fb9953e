//! The signing keys of an OIDC issuer: discovered, cached, and re-fetched when they rotate.

use crate::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Keys are re-fetched at least this often, so a rotated-out key stops working.
const MAX_AGE: Duration = Duration::from_secs(600);

pub struct JwksCache {
    client: reqwest::Client,
    discovery_url: String,
    issuer: String,
    /// An unknown `kid` triggers a re-fetch, but no more often than this: tokens with made-up
    /// kids must not turn us into a request amplifier against the issuer.
    min_refresh: Duration,
    state: Mutex<State>,
}

struct State {
    jwks: JwkSet,
    fetched_at: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl JwksCache {
    /// Keys of `issuer`, from `{issuer}/.well-known/openid-configuration`; nothing is fetched
    /// until the first token arrives.
    pub fn discover(issuer: &str, min_refresh: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with a timeout builds");
        JwksCache {
            client,
            discovery_url: format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            issuer: issuer.into(),
            min_refresh,
            state: Mutex::new(State {
                jwks: JwkSet { keys: Vec::new() },
                fetched_at: None,
            }),
        }
    }

    /// The key that verifies a token with this `kid` and algorithm.
    pub async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let mut state = self.state.lock().await;
        let age = state.fetched_at.map(|at| at.elapsed());
        let stale = age.is_none_or(|age| age > MAX_AGE);
        let may_refresh = age.is_none_or(|age| age >= self.min_refresh);
        if stale || (find(&state.jwks, kid, alg).is_none() && may_refresh) {
            match self.fetch().await {
                Ok(jwks) => state.jwks = jwks,
                // An issuer outage must not lock everyone out: keep the keys we have, retry later.
                Err(err) if !state.jwks.keys.is_empty() => {
                    tracing::warn!(error = %err, "keeping cached signing keys; refresh failed");
                }
                Err(err) => return Err(err),
            }
            state.fetched_at = Some(Instant::now());
        }
        let jwk = find(&state.jwks, kid, alg).ok_or(AuthError::Invalid("unknown signing key"))?;
        DecodingKey::from_jwk(jwk).map_err(|_| AuthError::Invalid("unusable signing key"))
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let discovery: Discovery = self.get_json(&self.discovery_url).await?;
        if discovery.issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(AuthError::KeysUnavailable(format!(
                "discovery document names issuer {}",
                discovery.issuer
            )));
        }
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        tracing::info!(keys = jwks.keys.len(), uri = %discovery.jwks_uri, "fetched signing keys");
        Ok(jwks)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let unavailable = |e: reqwest::Error| AuthError::KeysUnavailable(e.to_string());
        let response = self.client.get(url).send().await.map_err(unavailable)?;
        response
            .error_for_status()
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

/// A key with this kid (or the only key, for a token without one) whose type fits the algorithm.
fn find<'a>(
    jwks: &'a JwkSet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Option<&'a jsonwebtoken::jwk::Jwk> {
    let fits = |jwk: &&jsonwebtoken::jwk::Jwk| {
        let kty_fits = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256)
                | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
        );
        let alg_fits = jwk
            .common
            .key_algorithm
            .is_none_or(|ka| ka.to_string() == format!("{alg:?}"));
        kty_fits && alg_fits
    };
    match kid {
        Some(kid) => jwks.find(kid).filter(fits),
        None if jwks.keys.len() == 1 => jwks.keys.first().filter(fits),
        None => None,
    }
}
