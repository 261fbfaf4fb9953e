//! The custom handler as the host sees it: something that answers HTTP. Either the handler's
//! router in this process (the embedded mode) or a child process on `FUNCTIONS_CUSTOMHANDLER_PORT`;
//! both get exactly the same requests.

use crate::child::{Restarts, Worker};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri, header};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;
use tower::ServiceExt;

/// The host version the emulator presents: one that proxies HTTP requests
/// (`enableProxyingHttpRequest`; proxying had shipped by 4.1043), which this app needs.
pub const HOST_VERSION: &str = "4.1043.100";
pub const HOST_VERSION_HEADER: &str = "x-azure-functions-hostversion";
pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// How long an invocation waits for a (re)starting handler: the host holds invocations until
/// its dispatcher is initialized, up to (ErrorEventsThreshold + 1) x InitializationTimeout.
const WAIT_FOR_WORKER: Duration = Duration::from_secs(120);

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
        /// Which start of the process is running, and whether it answers yet.
        worker: watch::Receiver<Worker>,
        restarts: Restarts,
    },
}

/// Plain HTTP to the handler, each request sent as written (no Nagle delay behind the last).
fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}

impl Handler {
    pub fn remote(port: u16, worker: watch::Receiver<Worker>, restarts: Restarts) -> Self {
        Handler::Remote {
            port,
            client: Client::builder(TokioExecutor::new()).build(connector()),
            worker,
            restarts,
        }
    }

    /// Passes a request through unchanged (`enableProxyingHttpRequest`), once the handler
    /// answers.
    pub async fn forward(&self, request: Request<Body>) -> Result<Response<Body>, InvokeError> {
        self.ready().await?;
        self.send(request).await
    }

    /// Sends a request to the handler as it is now.
    async fn send(&self, request: Request<Body>) -> Result<Response<Body>, InvokeError> {
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

    /// The running start of the handler process once it answers (`None` in process).
    async fn ready(&self) -> Result<Option<u64>, InvokeError> {
        let Handler::Remote { worker, .. } = self else {
            return Ok(None);
        };
        let mut worker = worker.clone();
        let ready = tokio::time::timeout(WAIT_FOR_WORKER, worker.wait_for(|w| w.ready));
        match ready.await {
            Ok(Ok(worker)) => Ok(Some(worker.generation)),
            Ok(Err(_)) => Err(InvokeError::Unreachable("the handler was stopped".into())),
            Err(_) => Err(InvokeError::Unreachable(format!(
                "the handler did not start within {WAIT_FOR_WORKER:?}"
            ))),
        }
    }

    /// Invokes a non-HTTP function: `POST /{function}` with the invocation payload; the answer's
    /// JSON on 2xx. Anything else (status, not JSON, timeout) fails the invocation. Past
    /// `timeout` (functionTimeout) the handler process is restarted, failing every invocation
    /// in flight (`WebScriptHostExceptionHandler` -> `RestartWorkerWithInvocationIdAsync`); in
    /// the embedded mode it shares our process, so only this invocation fails.
    pub async fn invoke(
        &self,
        function: &str,
        payload: &Value,
        timeout: Duration,
    ) -> Result<Value, InvokeError> {
        let generation = self.ready().await?;
        let call = async {
            let response = self.send(invocation_request(function, payload)).await?;
            let status = response.status();
            let json = is_json(&response);
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
            if bytes.is_empty() {
                // The host's result is never completed: the invocation hangs until the timeout.
                return std::future::pending().await;
            }
            if !json {
                return Err(InvokeError::BadResponse(
                    "the answer is not application/json (UnsupportedMediaTypeException)".into(),
                ));
            }
            serde_json::from_slice(&bytes).map_err(|e| InvokeError::BadResponse(e.to_string()))
        };
        let answer = tokio::time::timeout(timeout, call).await;
        if answer.is_err()
            && let (Handler::Remote { restarts, .. }, Some(generation)) = (self, generation)
        {
            tracing::error!(function, "function timeout: restarting the handler process");
            restarts.request(generation);
        }
        answer.map_err(|_| InvokeError::Timeout(timeout))?
    }
}

/// `POST /{function}` with the headers `DefaultHttpWorkerService.AddHeaders` sets.
fn invocation_request(function: &str, payload: &Value) -> Request<Body> {
    Request::post(format!("/{function}"))
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(HOST_VERSION_HEADER, HOST_VERSION)
        .header(INVOCATION_ID_HEADER, uuid::Uuid::new_v4().to_string())
        .header(
            header::USER_AGENT,
            format!("Azure-Functions-Host/{HOST_VERSION}"),
        )
        .body(Body::from(payload.to_string()))
        .expect("a POST with a JSON body is a valid request")
}

/// The host reads the answer with a JSON formatter: `application/json` or `text/json`.
fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.eq_ignore_ascii_case("text/json")
        })
}
