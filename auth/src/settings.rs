//! Authentication settings, read from the same variables by every service (the API and the hub
//! must accept exactly the same tokens): `AUTH_MODE`, `JWT_SIGNING_KEY`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`, `JWKS_MIN_REFRESH_SECS`.

use crate::{KeySource, TokenValidator, ValidatorConfig, dev_key};
use orders_core::env::{ConfigError, Env};
use orders_core::secret::Secret;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// HS256 with a shared key: `JWT_SIGNING_KEY`, or else the key file in the data directory.
    Dev { signing_key: Option<Secret> },
    /// RS256/ES256 from the issuer's JWKS; an unknown key id re-fetches at most once per
    /// `min_key_refresh`.
    Oidc { min_key_refresh: Duration },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    pub mode: AuthMode,
    pub issuer: String,
    pub audience: String,
}

impl AuthSettings {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let mode = match env.string("AUTH_MODE").as_deref().unwrap_or("dev") {
            "dev" => AuthMode::Dev {
                signing_key: env.secret("JWT_SIGNING_KEY"),
            },
            "oidc" => AuthMode::Oidc {
                min_key_refresh: env.seconds("JWKS_MIN_REFRESH_SECS", 10, 0..=3600)?,
            },
            other => {
                return Err(ConfigError::new(
                    "AUTH_MODE",
                    format!("{other:?} is not dev or oidc"),
                ));
            }
        };
        if let AuthMode::Dev {
            signing_key: Some(key),
        } = &mode
            && key.expose().len() < 32
        {
            return Err(ConfigError::new(
                "JWT_SIGNING_KEY",
                "use at least 32 characters",
            ));
        }
        let issuer = env
            .string("JWT_ISSUER")
            .unwrap_or_else(|| "contoso-orders-dev".into());
        let local = issuer.starts_with("http://127.0.0.1");
        if matches!(mode, AuthMode::Oidc { .. }) && !issuer.starts_with("https://") && !local {
            return Err(ConfigError::new(
                "JWT_ISSUER",
                "with AUTH_MODE=oidc it must be the issuer's https URL",
            ));
        }
        let audience = env
            .string("JWT_AUDIENCE")
            .unwrap_or_else(|| "contoso-orders-api".into());
        Ok(AuthSettings {
            mode,
            issuer,
            audience,
        })
    }

    /// The HS256 secret in dev mode: `JWT_SIGNING_KEY`, else the key file in `data_dir` (created
    /// there when `create`, as the API does; the hub only reads it). `None` with OIDC.
    pub fn dev_secret(&self, data_dir: &Path, create: bool) -> std::io::Result<Option<Vec<u8>>> {
        match &self.mode {
            AuthMode::Dev {
                signing_key: Some(key),
            } => Ok(Some(key.expose().as_bytes().to_vec())),
            AuthMode::Dev { signing_key: None } if create => {
                dev_key::load_or_create(data_dir).map(Some)
            }
            AuthMode::Dev { signing_key: None } => dev_key::load(data_dir).map(Some),
            AuthMode::Oidc { .. } => Ok(None),
        }
    }

    /// The validator for these settings; `dev_secret` comes from [`AuthSettings::dev_secret`].
    pub fn validator(&self, dev_secret: Option<Vec<u8>>) -> TokenValidator {
        let keys = match (&self.mode, dev_secret) {
            (AuthMode::Oidc { min_key_refresh }, _) => KeySource::Oidc {
                min_key_refresh: *min_key_refresh,
            },
            (AuthMode::Dev { .. }, secret) => KeySource::SharedSecret(secret.unwrap_or_default()),
        };
        TokenValidator::new(ValidatorConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<AuthSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthSettings::from_env(&Env::new(&|name| map.get(name).cloned()))
    }

    #[test]
    fn defaults_to_dev_mode_with_the_shared_names() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.mode, AuthMode::Dev { signing_key: None });
        assert_eq!(
            (s.issuer.as_str(), s.audience.as_str()),
            ("contoso-orders-dev", "contoso-orders-api")
        );
    }

    #[test]
    fn refuses_bad_values_naming_the_variable() {
        for (vars, name) in [
            (&[("AUTH_MODE", "none")][..], "AUTH_MODE"),
            (&[("JWT_SIGNING_KEY", "short")][..], "JWT_SIGNING_KEY"),
            (
                &[("AUTH_MODE", "oidc"), ("JWT_ISSUER", "issuer")][..],
                "JWT_ISSUER",
            ),
            (
                &[
                    ("AUTH_MODE", "oidc"),
                    ("JWT_ISSUER", "https://i"),
                    ("JWKS_MIN_REFRESH_SECS", "-1"),
                ][..],
                "JWKS_MIN_REFRESH_SECS",
            ),
        ] {
            assert_eq!(settings(vars).unwrap_err().name, name);
        }
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("auth-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = settings(&[]).unwrap();
        assert!(
            s.dev_secret(&dir.join("missing"), false).is_err(),
            "the hub never invents a key"
        );
        let created = s.dev_secret(&dir, true).unwrap().unwrap();
        assert_eq!(s.dev_secret(&dir, false).unwrap().unwrap(), created);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
