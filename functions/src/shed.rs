//! Load shedding: at most `API_MAX_CONCURRENT_REQUESTS` API requests are in progress at once.
//! One more is refused at once with 503 + Retry-After instead of waiting its turn, so the
//! requests admitted keep their latency when a flood arrives (and a client's retry comes back
//! later, not into a queue that only grows).

use crate::problem::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The requests in progress, as permits.
#[derive(Clone)]
pub struct InProgress(Arc<Semaphore>);

impl InProgress {
    pub fn at_most(limit: usize) -> Self {
        InProgress(Arc::new(Semaphore::new(limit)))
    }
}

pub async fn shed_load(
    State(in_progress): State<InProgress>,
    request: Request,
    next: Next,
) -> Response {
    match in_progress.0.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            tracing::warn!(path = %request.uri().path(), "busy: request shed");
            ApiError::Unavailable {
                detail: "the service is busy; try again shortly".into(),
                retry_after_secs: 1,
            }
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    #[tokio::test]
    async fn past_the_limit_a_request_is_refused_at_once_and_admitted_again_after() {
        let release = Arc::new(Notify::new());
        let waiting = Arc::clone(&release);
        let app = Router::new()
            .route(
                "/slow",
                get(move || async move { waiting.notified().await }),
            )
            .route("/fast", get(|| async {}))
            .route_layer(axum::middleware::from_fn_with_state(
                InProgress::at_most(2),
                shed_load,
            ));
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let held: Vec<_> = (0..2)
            .map(|_| tokio::spawn(app.clone().oneshot(get("/slow"))))
            .collect();
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let refused = app.clone().oneshot(get("/fast")).await.unwrap();
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "1");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );

        release.notify_waiters();
        for request in held {
            assert_eq!(request.await.unwrap().unwrap().status(), 200);
        }
        let admitted = app.oneshot(get("/fast")).await.unwrap();
        assert_eq!(admitted.status(), 200);
    }
}
