//! A SignalR-protocol hub (ASP.NET Core SignalR wire protocol; JSON and MessagePack hub
//! protocols) for order notifications: negotiate, WebSockets and Long Polling at
//! `/hubs/order-status`, hub methods `GetCurrentStatus` and `Ping`, server-to-client
//! `Notification`, fanned out through Redis.

pub mod app;
pub mod config;
pub mod connection;
pub mod fanout;
pub mod hub;
pub mod metrics;
pub mod negotiate;
pub mod protocol;
pub mod replay;
pub mod session;
pub mod transports;

pub use app::{HUB_PATH, build, drain, router, serve, spawn_fanout};
pub use config::{Limits, Settings};
pub use fanout::FanoutSource;
pub use hub::{Hub, StatusLookup};
