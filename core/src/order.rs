//! Orders as the system of record holds them.

use crate::ids::{CorrelationId, OrderId, ProductId, UserId};
use crate::money::Money;
use crate::product::BillingPeriod;
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
    /// Absent from `OrderAccepted` messages enqueued before lines carried it, and from the
    /// pinned conformance payloads. Such a line reads as one-time: its price was charged once in
    /// `total`, so it stays due today and no recurring charge is invented for it. (Persisted
    /// lines read the period from their product, so only FAILED orders can show this default.)
    #[serde(default = "billed_once")]
    pub billing_period: BillingPeriod,
}

fn billed_once() -> BillingPeriod {
    BillingPeriod::OneTime
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

/// What an order charges: due today, then again per billing period. Amounts of different
/// periods add up only in what is due today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charges {
    /// Every line's first charge (one-time lines and each subscription's first period): the
    /// order's total.
    pub due_today: Money,
    /// What is charged again each period, one entry per recurring period present, shortest first.
    pub recurring: Vec<(BillingPeriod, Money)>,
}

pub fn charges(lines: &[OrderLine]) -> Charges {
    let of_period = |period| lines.iter().filter(move |l| l.billing_period == period);
    let recurring = BillingPeriod::RECURRING
        .into_iter()
        .filter(|&period| of_period(period).next().is_some())
        .map(|period| (period, of_period(period).map(OrderLine::line_total).sum()))
        .collect();
    Charges {
        due_today: order_total(lines),
        recurring,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use BillingPeriod::{Monthly, OneTime, Quarterly, Yearly};

    fn line(cents: i64, quantity: u32, billing_period: BillingPeriod) -> OrderLine {
        OrderLine {
            product_id: ProductId::parse("AZ-104").unwrap(),
            product_name: "Azure Administrator".into(),
            unit_price: Money::from_cents(cents),
            quantity,
            billing_period,
        }
    }

    fn cents(c: i64) -> Money {
        Money::from_cents(c)
    }

    #[test]
    fn due_today_is_every_first_charge_and_each_period_recurs_on_its_own() {
        let lines = [
            line(35_998, 1, Yearly),
            line(1_274, 1, OneTime),
            line(3_499, 1, Monthly),
            line(1_000, 2, Monthly),
            line(500, 3, Yearly),
        ];
        let got = charges(&lines);
        assert_eq!(got.due_today, order_total(&lines));
        assert_eq!(got.due_today, cents(35_998 + 1_274 + 3_499 + 2_000 + 1_500));
        assert_eq!(
            got.recurring,
            [(Monthly, cents(5_499)), (Yearly, cents(37_498))]
        );
    }

    #[test]
    fn one_time_lines_never_recur() {
        let got = charges(&[line(1_274, 2, OneTime)]);
        assert_eq!(got.due_today, cents(2_548));
        assert!(got.recurring.is_empty());
        assert_eq!(charges(&[]).due_today, Money::ZERO);
    }

    #[test]
    fn recurring_periods_come_shortest_first_whatever_the_line_order() {
        let lines = [
            line(300, 1, Yearly),
            line(200, 1, Quarterly),
            line(100, 1, Monthly),
        ];
        let periods: Vec<_> = charges(&lines)
            .recurring
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(periods, [Monthly, Quarterly, Yearly]);
    }

    #[test]
    fn a_line_without_a_billing_period_reads_as_one_time() {
        let line: OrderLine = serde_json::from_str(
            r#"{"productId":"AZ-104","productName":"Azure Administrator","unitPriceCents":2699,"quantity":2}"#,
        )
        .unwrap();
        assert_eq!(line.billing_period, OneTime);
        let json = serde_json::to_value(line).unwrap();
        assert_eq!(json["billingPeriod"], "one-time");
    }
}
