//! The signing keys of an OIDC issuer: discovered, cached as ready decoding keys, and re-fetched
//! when they rotate.
//!
//! Validations read the cached keys and never wait on the issuer when a key fits. Fetches run
//! one at a time: a stale set is refreshed in the background while it keeps serving, and a
//! token with an unknown `kid` (a rotation) fetches at most once per `min_refresh`, failed
//! attempts included (negative caching). So an issuer outage costs one fetch timeout per
//! interval, never one per request, and with no keys at all requests fail fast with 503.

use crate::AuthError;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Keys are re-fetched at least this often, so a rotated-out key stops working.
const MAX_AGE: Duration = Duration::from_secs(600);

pub struct JwksCache {
    client: reqwest::Client,
    discovery_url: String,
    issuer: String,
    /// An unknown `kid` triggers a re-fetch, but no more often than this: tokens with made-up
    /// kids must not turn us into a request amplifier against the issuer.
    min_refresh: Duration,
    keys: RwLock<Arc<Keys>>,
    /// Held by the one fetch in flight.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// What the last fetches left: the keys, and when they were fetched and last attempted.
#[derive(Default)]
struct Keys {
    set: Vec<(Jwk, Arc<DecodingKey>)>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Keys {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
        let fits = |jwk: &Jwk| fits(jwk, alg);
        let found = match kid {
            Some(kid) => self
                .set
                .iter()
                .find(|(jwk, _)| jwk.common.key_id.as_deref() == Some(kid) && fits(jwk)),
            None if self.set.len() == 1 => self.set.first().filter(|(jwk, _)| fits(jwk)),
            None => None,
        };
        found.map(|(_, key)| Arc::clone(key))
    }

    /// Whether another attempt is allowed now.
    fn may_attempt(&self, min_refresh: Duration) -> bool {
        self.attempted_at
            .is_none_or(|at| at.elapsed() >= min_refresh)
    }

    fn stale(&self) -> bool {
        self.fetched_at.is_none_or(|at| at.elapsed() > MAX_AGE)
    }
}

impl JwksCache {
    /// Keys of `issuer`, from `{issuer}/.well-known/openid-configuration`; nothing is fetched
    /// until the first token arrives.
    pub fn discover(issuer: &str, min_refresh: Duration) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with a timeout builds");
        Arc::new(JwksCache {
            client,
            discovery_url: format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
            issuer: issuer.into(),
            min_refresh,
            keys: RwLock::new(Arc::default()),
            fetching: Arc::default(),
        })
    }

    fn snapshot(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The key that verifies a token with this `kid` and algorithm.
    pub async fn key(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, AuthError> {
        let keys = self.snapshot();
        if let Some(key) = keys.find(kid, alg) {
            // Stale: refresh in the background, unless a fetch is already running.
            if keys.stale()
                && keys.may_attempt(self.min_refresh)
                && let Ok(fetching) = Arc::clone(&self.fetching).try_lock_owned()
            {
                let cache = Arc::clone(self);
                tokio::spawn(async move {
                    cache.refresh(&keys).await;
                    drop(fetching);
                });
            }
            return Ok(key);
        }
        if keys.may_attempt(self.min_refresh) {
            let _fetching = self.fetching.lock().await;
            self.refresh(&keys).await;
        }
        let keys = self.snapshot();
        if let Some(key) = keys.find(kid, alg) {
            return Ok(key);
        }
        match (&keys.error, keys.set.is_empty()) {
            (Some(error), true) => Err(AuthError::KeysUnavailable(error.clone())),
            _ => Err(AuthError::Invalid("unknown signing key")),
        }
    }

    /// Fetches and stores the keys, with `fetching` held. A caller that saw `seen` and then
    /// waited while another fetched does not fetch again: the keys it would fetch are there.
    async fn refresh(&self, seen: &Arc<Keys>) {
        let before = self.snapshot();
        if !Arc::ptr_eq(seen, &before) || !before.may_attempt(self.min_refresh) {
            return;
        }
        let now = Instant::now();
        let next = match self.fetch().await {
            Ok(set) => Keys {
                set,
                fetched_at: Some(now),
                attempted_at: Some(now),
                error: None,
            },
            Err(err) => {
                // An issuer outage must not lock everyone out: keep the keys we have.
                tracing::warn!(error = %err, keys = before.set.len(), "signing keys not refreshed");
                Keys {
                    set: before.set.clone(),
                    fetched_at: before.fetched_at,
                    attempted_at: Some(now),
                    error: Some(err.to_string()),
                }
            }
        };
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
    }

    /// The issuer's keys, each made a decoding key once (unusable ones are left out).
    async fn fetch(&self) -> Result<Vec<(Jwk, Arc<DecodingKey>)>, AuthError> {
        let discovery: Discovery = self.get_json(&self.discovery_url).await?;
        if discovery.issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(AuthError::KeysUnavailable(format!(
                "discovery document names issuer {}",
                discovery.issuer
            )));
        }
        let jwks: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        tracing::info!(keys = jwks.keys.len(), uri = %discovery.jwks_uri, "fetched signing keys");
        Ok(jwks
            .keys
            .into_iter()
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                Some((jwk, Arc::new(key)))
            })
            .collect())
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

/// Whether the key's type (and declared algorithm, if any) fits the token's algorithm.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
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
}
