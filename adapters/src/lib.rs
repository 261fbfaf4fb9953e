//! Adapters that implement the `orders-core` ports.
//!
//! - [`sqlite`]: the embedded system of record (WAL file under the data directory).
//! - [`sqlserver`]: the system of record on SQL Server / Azure SQL (docker-compose and Azure).
//! - [`memory`]: in-process workflow state for the embedded mode.
//! - [`rabbitmq`]: the queue transport on RabbitMQ (local servers and docker-compose).
//! - [`redis`]: workflow state and the notification fan-out channel on Redis (server modes).
//! - [`servicebus`]: intake's publisher on Azure Service Bus (REST, Entra ID or SAS).
//! - [`deferred`]: any of these ports while its server is still being connected to in the
//!   background (the handler serves at once, whatever state its dependencies are in).
//! - [`seed`]: the product catalog shipped with the app (`data/catalog.json`).

pub mod deferred;
mod entra;
pub mod memory;
pub mod namespaced;
pub mod rabbitmq;
pub mod redis;
pub mod seed;
pub mod servicebus;
pub mod sqlite;
pub mod sqlserver;
pub mod system_of_record;
