//! The custom handler as the host sees it: something that answers HTTP. Either the handler's
//! router in this process (the embedded mode) or a child process on `FUNCTIONS_CUSTOMHANDLER_PORT`;
//! both get exactly the same requests.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Notify;
use tower::ServiceExt;

/// The host version the emulator presents: the first release known to proxy HTTP requests
/// (`enableProxyingHttpRequest`), which this app needs.
pub const HOST_VERSION: &str = "4.1043.100";
pub const HOST_VERSION_HEADER: &str = "x-azure-functions-hostversion";
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

#[derive(Debug, Error)]
pub enum InvokeError {
    #[error("the handler answered {status}: {body}")]
    Failed { status: StatusCode, body: String },
    #[error("the handler did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the handler is unreachable: {0}")]
    Unreachable(String),
    #[error("the handler's answer is not the invocation JSON: {0}")]
    BadResponse(String),
}

#[derive(Clone)]
pub enum Handler {
    InProcess(Router),
    Remote {
        port: u16,
        client: Client<HttpConnector, Body>,
        /// Asks the supervisor to restart the process.
        restart: Arc<Notify>,
    },
}

impl Handler {
    pub fn remote(port: u16, restart: Arc<Notify>) -> Self {
        Handler::Remote {
            port,
            client: Client::builder(TokioExecutor::new()).build_http(),
            restart,
        }
    }

    /// What the host does after a function timeout: restart the handler process, failing every
    /// invocation in flight (`WebScriptHostExceptionHandler` -> `RestartWorkerWithInvocationIdAsync`).
    /// The embedded mode shares our process, so only the timed-out invocation fails there.
    pub fn restart(&self) {
        if let Handler::Remote { restart, .. } = self {
            restart.notify_one();
        }
    }

    /// Passes a request through unchanged (`enableProxyingHttpRequest`).
    pub async fn forward(&self, request: Request<Body>) -> Result<Response<Body>, InvokeError> {
        match self {
            Handler::InProcess(router) => Ok(router
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {})),
            Handler::Remote { port, client, .. } => {
                let (mut parts, body) = request.into_parts();
                let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                parts.uri = format!("http://127.0.0.1:{port}{path}")
                    .parse::<Uri>()
                    .map_err(|e| InvokeError::Unreachable(e.to_string()))?;
                let response = client
                    .request(Request::from_parts(parts, body))
                    .await
                    .map_err(|e| InvokeError::Unreachable(e.to_string()))?;
                Ok(response.map(Body::new))
            }
        }
    }

    /// Invokes a non-HTTP function: `POST /{function}` with the invocation payload; the answer's
    /// JSON on 2xx. Anything else (status, timeout, garbage) fails the invocation.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<Value, InvokeError> {
        // The headers `DefaultHttpWorkerService.AddHeaders` sets on every invocation.
        let request = Request::post(format!("/{function}"))
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(HOST_VERSION_HEADER, HOST_VERSION)
            .header(INVOCATION_ID_HEADER, uuid::Uuid::new_v4().to_string())
            .header(
                header::USER_AGENT,
                format!("Azure-Functions-Host/{HOST_VERSION}"),
            )
            .body(Body::from(payload.to_string()))
            .expect("a POST with a JSON body is a valid request");
        let call = async {
            let response = self.forward(request).await?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| InvokeError::Unreachable(e.to_string()))?
                .to_bytes();
            if !status.is_success() {
                let body = String::from_utf8_lossy(&bytes).chars().take(500).collect();
                return Err(InvokeError::Failed { status, body });
            }
            serde_json::from_slice(&bytes).map_err(|e| InvokeError::BadResponse(e.to_string()))
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| InvokeError::Timeout(timeout))?
    }
}
