//! In-process adapters for the embedded mode, with the same semantics as their server twins.

mod fanout;
mod state;

pub(crate) use fanout::{HISTORY_AGE, HISTORY_PER_USER, fanout_message, history_horizon, now_ms};
pub use fanout::{MemoryFanout, MemorySubscription};
pub use state::MemoryState;
