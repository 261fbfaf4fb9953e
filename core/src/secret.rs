//! A setting that must never reach a log: credentials, keys, connection strings. `Debug` and
//! `Display` print `<redacted>`; the value is read only through [`Secret::expose`], so every
//! place that uses it is easy to find.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one call that needs it (a connect, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// For a URL (`redis://user:pass@host:6379/0`): the scheme and the host, credentials
    /// replaced, so a log can say where without saying how to get in.
    pub fn url_location(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split(['/', '?']).next().unwrap_or_default();
        format!("{scheme}://{host}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let secret = Secret::new("amqp://orders:hunter2@broker:5672/%2f");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(<redacted>)");
        assert_eq!(secret.url_location(), "amqp://broker:5672");
        assert_eq!(secret.expose(), "amqp://orders:hunter2@broker:5672/%2f");
    }

    #[test]
    fn a_location_never_carries_credentials_or_paths() {
        assert_eq!(
            Secret::new("redis://:pw@127.0.0.1:6379/0?x=y").url_location(),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            Secret::new("rediss://host.example:10000").url_location(),
            "rediss://host.example:10000"
        );
    }
}
