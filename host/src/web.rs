//! The shop's single-page app, served from its built folder (`web/dist`) on the host's origin,
//! so the SPA, the API and the hub need no CORS locally. Vite names assets by content hash, so
//! they are cached for good; `index.html` and `config.json` are revalidated on every load.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use tower::{Layer, ServiceExt};
use tower_http::compression::{Compression, CompressionLayer};
use tower_http::services::{ServeDir, ServeFile};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The built SPA. A missing path without a file extension gets `index.html`, so deep links load
/// the app; a missing file (`/assets/x.js`, `/images/y.svg`) is a plain 404, never an HTML page
/// served as a script or an image.
#[derive(Clone)]
pub struct Site {
    pages: Compression<ServeDir<ServeFile>>,
    files: Compression<ServeDir>,
}

impl Site {
    /// The site in `dir`, which must hold an `index.html`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let index = dir.join("index.html");
        anyhow::ensure!(
            index.is_file(),
            "{} has no index.html: build the SPA (npm ci && npm run build in web/)",
            dir.display()
        );
        Ok(Site {
            pages: CompressionLayer::new()
                .layer(ServeDir::new(dir).fallback(ServeFile::new(index))),
            files: CompressionLayer::new().layer(ServeDir::new(dir)),
        })
    }

    /// Answers a GET or HEAD.
    pub async fn serve(&self, request: Request) -> Response {
        let path = request.uri().path();
        let immutable = path.starts_with("/assets/");
        let is_file = path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains('.'));
        let served = if is_file {
            self.files
                .clone()
                .oneshot(request)
                .await
                .map(|r| r.map(Body::new))
        } else {
            self.pages
                .clone()
                .oneshot(request)
                .await
                .map(|r| r.map(Body::new))
        };
        let mut response = match served {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let cache = if immutable { IMMUTABLE } else { REVALIDATE };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response.into_response()
    }
}

/// `WEB_DIST` when set; otherwise `web/dist` if it has been built.
pub fn locate(configured: Option<PathBuf>) -> Option<PathBuf> {
    configured.or_else(|| {
        let default = PathBuf::from("web/dist");
        default.join("index.html").is_file().then_some(default)
    })
}
