//! The Contoso Orders domain core: products, orders, exact money, the forward-only order status,
//! the versioned integration events, and the ports (small traits) that adapters implement.
//!
//! Nothing in this crate performs I/O; everything here can be unit-tested in isolation.

pub mod catalog;
pub mod cursor;
pub mod env;
pub mod events;
pub mod hash;
pub mod ids;
pub mod intake;
pub mod money;
pub mod order;
pub mod paging;
pub mod ports;
pub mod product;
pub mod secret;
pub mod status;

pub use ids::{CorrelationId, OrderId, OrderRef, ProductId, UserId};
pub use money::Money;
pub use status::OrderStatus;
