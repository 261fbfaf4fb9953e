//! In-process adapters for the embedded mode, with the same semantics as their server twins.

mod fanout;
mod state;

pub(crate) use fanout::fanout_message;
pub use fanout::{MemoryFanout, MemorySubscription};
pub use state::MemoryState;
