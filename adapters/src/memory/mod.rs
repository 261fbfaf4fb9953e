//! In-process adapters for the embedded mode, with the same semantics as their server twins.

mod state;

pub use state::MemoryState;
