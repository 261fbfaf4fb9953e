//! The Functions host's version, which it sends on every request it makes to us
//! (`X-Azure-Functions-HostVersion`, `DefaultHttpWorkerService.AddHeaders`, also on proxied
//! requests). host.json's `customHandler.enableProxyingHttpRequest` needs a host with YARP
//! proxying (Azure/azure-functions-host PR #11035, 2025); an older host ignores the setting and
//! would send HTTP functions the `{Data, Metadata}` payload, which this handler does not serve.
//! So the first request logs the version, and warns when it is older than 4.1043, by which
//! proxying had shipped (its first release is not known here, so an older host may still have
//! it).

use axum::http::Request;
use std::sync::Once;

pub const HEADER: &str = "x-azure-functions-hostversion";
/// Release 4.1043 already fixes a proxying bug (#11262), so proxying shipped by then; the exact
/// first release is not known here (see tests/conformance/README.md).
pub const MIN_FOR_PROXYING: (u32, u32) = (4, 1043);

static LOGGED: Once = Once::new();

/// Major and minor of a host version such as `4.1043.100.1`.
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.').map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// Whether a host of this version proxies HTTP requests; `None` when the version is unreadable.
pub fn proxies_http(version: &str) -> Option<bool> {
    major_minor(version).map(|v| v >= MIN_FOR_PROXYING)
}

/// Middleware: logs the host's version once.
pub fn log_once<B>(request: Request<B>) -> Request<B> {
    if let Some(version) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        LOGGED.call_once(|| match proxies_http(version) {
            Some(false) => tracing::warn!(
                host_version = version,
                minimum = ?MIN_FOR_PROXYING,
                "this Functions host may predate enableProxyingHttpRequest: if so, HTTP functions will not reach the API"
            ),
            _ => tracing::info!(host_version = version, "Functions host"),
        });
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_major_and_minor() {
        assert_eq!(proxies_http("4.1043.100.1"), Some(true));
        assert_eq!(proxies_http("4.1045.200"), Some(true));
        assert_eq!(proxies_http("4.1037.0.1"), Some(false));
        assert_eq!(proxies_http("4.24.4.4"), Some(false));
        assert_eq!(proxies_http("5.0"), Some(true));
        assert_eq!(proxies_http("dev"), None);
    }
}
