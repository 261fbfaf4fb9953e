//! Orders as the system of record holds them.

use crate::ids::{CorrelationId, OrderId, ProductId, UserId};
use crate::money::Money;
use crate::status::OrderStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One priced line of an order: the product's name and unit price are fixed at purchase time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: ProductId,
    pub product_name: String,
    #[serde(rename = "unitPriceCents")]
    pub unit_price: Money,
    pub quantity: u32,
}

impl OrderLine {
    pub fn line_total(&self) -> Money {
        // Quantities are at most 1000 and prices are catalog prices: this cannot overflow.
        self.unit_price.times(self.quantity).unwrap_or(Money::ZERO)
    }
}

pub fn order_total(lines: &[OrderLine]) -> Money {
    lines.iter().map(OrderLine::line_total).sum()
}

/// An order to persist, as the processor receives it from `OrderAccepted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub correlation_id: CorrelationId,
    pub user_id: UserId,
    pub lines: Vec<OrderLine>,
    pub accepted_at: DateTime<Utc>,
}

/// What persisting a `NewOrder` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedOrder {
    pub order_id: OrderId,
    /// False when the correlation id was already persisted (a redelivery): nothing was written.
    pub created: bool,
}

/// An order whose message was dead-lettered: kept with its lines and the reason, so its owner
/// sees why and an operator can retry it once the cause is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedOrder {
    pub order: crate::events::OrderAccepted,
    /// `DeadLetterReason: DeadLetterErrorDescription`, as the broker recorded them.
    pub reason: String,
    pub failed_at: DateTime<Utc>,
}

/// What recording a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureRecorded {
    /// The order is FAILED now (or again, with the latest reason).
    Failed,
    /// The order was persisted after all (a redelivery won the race): it stays COMPLETED.
    AlreadyPersisted(OrderId),
}

/// A persisted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: OrderId,
    pub correlation_id: CorrelationId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub lines: Vec<OrderLine>,
}
