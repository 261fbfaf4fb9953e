//! The host's HTTP listener: requests whose path and method match an HTTP-triggered function are
//! passed to the handler unchanged but for the proxy's headers (`enableProxyingHttpRequest`);
//! anything else is 404, as on the real host. So the queue-trigger endpoints (`/OrderProcess`,
//! ...) are never reachable from outside. Other GETs go to the shop's SPA when one is served.

use crate::app_dir::{FunctionApp, Trigger};
use crate::handler::{HOST_VERSION, HOST_VERSION_HEADER, Handler, INVOCATION_ID_HEADER};
use crate::web::Site;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// An HTTP function's route, with the host's route prefix applied.
#[derive(Debug, Clone)]
struct Route {
    segments: Vec<String>,
    methods: Vec<String>,
}

impl Route {
    fn new(prefix: &str, template: &str, methods: Vec<String>) -> Self {
        let segments = prefix
            .split('/')
            .chain(template.split('/'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Route { segments, methods }
    }

    /// Literal segments match case-insensitively, `{name}` matches one segment and a final
    /// `{*name}` matches the rest (possibly nothing).
    fn matches(&self, method: &str, path: &str) -> bool {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        let mut parts = path.split('/').filter(|s| !s.is_empty());
        for segment in &self.segments {
            if segment.starts_with("{*") {
                return true;
            }
            let Some(part) = parts.next() else {
                return false;
            };
            if !segment.starts_with('{') && !segment.eq_ignore_ascii_case(part) {
                return false;
            }
        }
        parts.next().is_none()
    }
}

struct FrontDoor {
    routes: Vec<Route>,
    handler: Handler,
    site: Option<Site>,
}

pub fn router(app: &FunctionApp, handler: Handler, site: Option<Site>) -> Router {
    let routes = app
        .functions
        .iter()
        .filter_map(|f| match &f.trigger {
            Trigger::Http { route, methods } => {
                Some(Route::new(&app.host.route_prefix, route, methods.clone()))
            }
            Trigger::Queue(_) => None,
        })
        .collect();
    Router::new()
        .fallback(dispatch)
        .with_state(Arc::new(FrontDoor {
            routes,
            handler,
            site,
        }))
}

async fn dispatch(State(door): State<Arc<FrontDoor>>, request: Request) -> Response {
    let (method, path) = (
        request.method().as_str().to_owned(),
        request.uri().path().to_owned(),
    );
    if !door.routes.iter().any(|r| r.matches(&method, &path)) {
        return match &door.site {
            Some(site) if request.method() == Method::GET || request.method() == Method::HEAD => {
                site.serve(request).await
            }
            _ => not_found(),
        };
    }
    match door.handler.forward(proxied(request)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, %path, "handler unreachable");
            (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "application/problem+json")], Body::from(
                r#"{"type":"/problems/unavailable","title":"Bad Gateway","status":502,"detail":"the function handler is unavailable"}"#,
            ))
                .into_response()
        }
    }
}

/// The headers the host's proxy sets on a forwarded request (`AddProxyingHeaders`, overwriting
/// any the client sent, and `x-ms-invocation-id`).
fn proxied(mut request: Request) -> Request {
    let invocation = uuid::Uuid::new_v4().to_string();
    let headers = request.headers_mut();
    headers.insert(HOST_VERSION_HEADER, HeaderValue::from_static(HOST_VERSION));
    for name in [INVOCATION_ID_HEADER, "x-ms-invocation-id"] {
        if let Ok(value) = HeaderValue::from_str(&invocation) {
            headers.insert(name, value);
        }
    }
    request
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/problem+json")], Body::from(
        r#"{"type":"/problems/not-found","title":"Not Found","status":404,"detail":"no function serves this path"}"#,
    ))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_like_the_host() {
        let api = Route::new("", "api/{*path}", vec!["GET".into(), "POST".into()]);
        assert!(api.matches("GET", "/api/products"));
        assert!(api.matches("POST", "/api/orders/1/x"));
        assert!(api.matches("GET", "/api"));
        assert!(!api.matches("DELETE", "/api/orders/1"));
        assert!(!api.matches("POST", "/OrderProcess"));
        let token = Route::new("", "dev/token", vec![]);
        assert!(token.matches("POST", "/dev/token"));
        assert!(!token.matches("POST", "/dev/token/extra"));
        let prefixed = Route::new("api", "orders/{id}", vec![]);
        assert!(prefixed.matches("GET", "/api/orders/7"));
        assert!(!prefixed.matches("GET", "/orders/7"));
    }
}
