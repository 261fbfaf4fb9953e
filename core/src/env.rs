//! Reading settings from an environment-like lookup, so every binary validates its variables
//! the same way and tests can pass a map instead of the process environment.

use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// A setting that is missing or malformed, named so the operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{name} is not valid: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            name,
            reason: reason.into(),
        }
    }
}

pub struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { get }
    }

    /// The value, unless unset or blank.
    pub fn string(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value, or an error saying when it is needed.
    pub fn required(&self, name: &'static str, when: &str) -> Result<String, ConfigError> {
        self.string(name)
            .ok_or_else(|| ConfigError::new(name, format!("required when {when}")))
    }

    /// A credential-bearing value (a URL with a password, a key), unless unset or blank.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.string(name).map(Secret::new)
    }

    /// A credential-bearing value, or an error saying when it is needed.
    pub fn required_secret(&self, name: &'static str, when: &str) -> Result<Secret, ConfigError> {
        self.required(name, when).map(Secret::new)
    }

    /// A URL carrying credentials, with one of `schemes` (`redis`, `amqp`, ...). An error never
    /// echoes the value.
    pub fn secret_url(
        &self,
        name: &'static str,
        schemes: &[&str],
    ) -> Result<Option<Secret>, ConfigError> {
        let Some(url) = self.string(name) else {
            return Ok(None);
        };
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if scheme.is_some_and(|s| schemes.contains(&s.as_str())) {
            return Ok(Some(Secret::new(url)));
        }
        let allowed: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Err(ConfigError::new(
            name,
            format!("must be a URL starting with {}", allowed.join(" or ")),
        ))
    }

    /// A directory, `default` when unset; an error when the path exists and is no directory.
    pub fn directory(&self, name: &'static str, default: &str) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(self.string(name).unwrap_or_else(|| default.to_owned()));
        if path.exists() && !path.is_dir() {
            return Err(ConfigError::new(
                name,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(path)
    }

    /// A path that must exist when set; `what` says what it should be.
    pub fn existing_path(
        &self,
        name: &'static str,
        what: &str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        match self.string(name).map(PathBuf::from) {
            Some(path) if !path.exists() => Err(ConfigError::new(
                name,
                format!("{} does not exist (expected {what})", path.display()),
            )),
            path => Ok(path),
        }
    }

    pub fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(name, e.to_string())),
        }
    }

    pub fn ranged<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(name, default)?;
        if !range.contains(&value) {
            return Err(ConfigError::new(
                name,
                format!("must be {} to {}", range.start(), range.end()),
            ));
        }
        Ok(value)
    }

    /// Comma-separated exact `http(s)` origins (CORS); never `*`. None when unset.
    pub fn origins(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        let origins: Vec<String> = self
            .string(name)
            .map(|raw| {
                raw.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        match origins
            .iter()
            .find(|o| *o == "*" || !(o.starts_with("http://") || o.starts_with("https://")))
        {
            Some(bad) => Err(ConfigError::new(
                name,
                format!("{bad:?} is not an exact http(s) origin (never '*')"),
            )),
            None => Ok(origins),
        }
    }

    /// One of `allowed` (`default` when unset); anything else is an error naming them.
    pub fn choice(
        &self,
        name: &'static str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(value) = self.string(name) else {
            return Ok(default);
        };
        allowed
            .iter()
            .find(|a| **a == value)
            .copied()
            .ok_or_else(|| ConfigError::new(name, format!("{value:?} is not one of {allowed:?}")))
    }

    pub fn seconds(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.ranged(name, default, range).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parses_and_bounds_values() {
        let get = |name: &str| match name {
            "A" => Some("42".to_owned()),
            "BLANK" => Some("  ".to_owned()),
            "BAD" => Some("x".to_owned()),
            _ => None,
        };
        let env = Env::new(&get);
        assert_eq!(env.parse("A", 0u32), Ok(42));
        assert_eq!(env.string("BLANK"), None);
        assert_eq!(env.parse("MISSING", 7u32), Ok(7));
        assert_eq!(env.parse::<u32>("BAD", 0).unwrap_err().name, "BAD");
        assert_eq!(env.choice("MISSING", "text", &["text", "json"]), Ok("text"));
        assert_eq!(
            env.choice("BAD", "text", &["text", "json"])
                .unwrap_err()
                .name,
            "BAD"
        );
        assert_eq!(
            env.seconds("A", 1, 1..=10).unwrap_err().reason,
            "must be 1 to 10"
        );
        assert!(
            env.required("MISSING", "X=y")
                .unwrap_err()
                .reason
                .contains("X=y")
        );
    }

    #[test]
    fn urls_with_credentials_are_checked_without_echoing_them() {
        let get = |name: &str| match name {
            "GOOD" => Some("rediss://:pw-1@cache:6380".to_owned()),
            "BAD" => Some("http://:pw-2@cache".to_owned()),
            _ => None,
        };
        let env = Env::new(&get);
        let good = env.secret_url("GOOD", &["redis", "rediss"]).unwrap();
        assert_eq!(good.unwrap().expose(), "rediss://:pw-1@cache:6380");
        let bad = env.secret_url("BAD", &["redis", "rediss"]).unwrap_err();
        assert_eq!(
            bad.reason,
            "must be a URL starting with redis:// or rediss://"
        );
        assert!(!bad.to_string().contains("pw-2"));
        assert_eq!(env.secret_url("MISSING", &["redis"]), Ok(None));
    }

    #[test]
    fn paths_must_be_what_they_name() {
        let file = std::env::current_exe().unwrap();
        let file = file.to_str().unwrap().to_owned();
        let get = move |name: &str| match name {
            "FILE" => Some(file.clone()),
            "GONE" => Some("/nonexistent/x".to_owned()),
            _ => None,
        };
        let env = Env::new(&get);
        assert_eq!(env.directory("FILE", ".").unwrap_err().name, "FILE");
        assert_eq!(env.directory("MISSING", "d"), Ok(PathBuf::from("d")));
        assert!(env.existing_path("FILE", "x").unwrap().is_some());
        assert_eq!(env.existing_path("GONE", "x").unwrap_err().name, "GONE");
        assert_eq!(env.existing_path("MISSING", "x"), Ok(None));
    }
}
