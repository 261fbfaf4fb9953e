//! Adapters that implement the `orders-core` ports.
//!
//! - [`sqlite`]: the embedded system of record (WAL file under the data directory).
//! - [`sqlserver`]: the system of record on SQL Server / Azure SQL (docker-compose and Azure).
//! - [`memory`]: in-process workflow state for the embedded mode.
//! - [`seed`]: the product catalog shipped with the app (`data/catalog.json`).

pub mod memory;
pub mod seed;
pub mod sqlite;
pub mod sqlserver;
