//! In-process adapters for the embedded mode, with the same semantics as their server twins.

mod fanout;
mod state;

pub use fanout::{FanoutMessage, MemoryFanout};
pub use state::MemoryState;
