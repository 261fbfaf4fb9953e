//! The Contoso Orders custom handler: one axum server holding every function, routed by
//! function name, as the Azure Functions custom-handler contract describes.

pub mod api;
pub mod app;
pub mod config;
pub mod extract;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod host_version;
mod idempotency;
mod intake;
pub mod problem;
mod shed;
pub mod trace_context;
pub mod triggers;

pub use app::{App, AppState};
pub use config::Settings;
