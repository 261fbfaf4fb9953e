//! Black-box tests of the HTTP API: each test spawns the real app on a random port.

mod auth;
mod bad_input;
mod helpers;
mod orders;
mod products;
mod triggers;
