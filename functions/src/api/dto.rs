//! The API's JSON shapes (camelCase). Money goes out as exact decimal strings plus integer cents.

use chrono::{DateTime, Utc};
use orders_core::CorrelationId;
use orders_core::OrderStatus;
use orders_core::order::{Charges, FailedOrder, Order, OrderLine, charges};
use orders_core::paging::Page;
use orders_core::product::Product;
use orders_core::status::TrackedStatus;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageDto<T> {
    pub offset: u32,
    pub size: u32,
    pub total: u64,
    pub items: Vec<T>,
}

impl<T> PageDto<T> {
    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> Self {
        let page = page.map(f);
        PageDto {
            offset: page.offset,
            size: page.size,
            total: page.total,
            items: page.items,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDto {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub vendor: String,
    pub image_url: String,
    /// List price, decimal string.
    pub price: String,
    pub price_cents: i64,
    /// Percent off the list price.
    pub discount: u8,
    /// What a customer pays per unit today.
    pub final_price: String,
    pub final_price_cents: i64,
    pub currency: &'static str,
    pub billing_period: &'static str,
    pub is_subscription: bool,
}

impl From<&Product> for ProductDto {
    fn from(p: &Product) -> Self {
        let unit = p.unit_price();
        ProductDto {
            product_id: p.product_id.to_string(),
            name: p.name.clone(),
            category: p.category.clone(),
            vendor: p.vendor.clone(),
            image_url: p.image_url.clone(),
            price: p.price.to_string(),
            price_cents: p.price.cents(),
            discount: p.discount_percent,
            final_price: unit.to_string(),
            final_price_cents: unit.cents(),
            currency: orders_core::money::CURRENCY,
            billing_period: p.billing_period.as_str(),
            is_subscription: p.is_subscription,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedDto {
    pub correlation_id: CorrelationId,
    pub status: &'static str,
    pub status_url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemDto {
    pub product_id: String,
    pub product_name: String,
    pub unit_price: String,
    pub unit_price_cents: i64,
    pub quantity: u32,
    pub billing_period: &'static str,
}

impl From<OrderLine> for OrderItemDto {
    fn from(line: OrderLine) -> Self {
        OrderItemDto {
            product_id: line.product_id.into(),
            product_name: line.product_name,
            unit_price: line.unit_price.to_string(),
            unit_price_cents: line.unit_price.cents(),
            quantity: line.quantity,
            billing_period: line.billing_period.as_str(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderDto {
    /// Null until the order is persisted.
    pub order_id: Option<i64>,
    pub correlation_id: CorrelationId,
    pub status: &'static str,
    pub created_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub total: Option<String>,
    pub total_cents: Option<i64>,
    #[serde(flatten)]
    pub charges: ChargesDto,
    pub currency: &'static str,
    pub items: Vec<OrderItemDto>,
    /// Why the order FAILED (its message was dead-lettered); null otherwise.
    pub failure: Option<FailureDto>,
}

/// What is due today and what then recurs per billing period; null and empty while no items are
/// known, like `total`.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargesDto {
    /// Every line's first charge: equals `total`.
    pub due_today: Option<String>,
    pub due_today_cents: Option<i64>,
    pub recurring: Vec<RecurringDto>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurringDto {
    pub billing_period: &'static str,
    pub amount: String,
    pub amount_cents: i64,
}

impl From<Charges> for ChargesDto {
    fn from(charges: Charges) -> Self {
        ChargesDto {
            due_today: Some(charges.due_today.to_string()),
            due_today_cents: Some(charges.due_today.cents()),
            recurring: charges
                .recurring
                .into_iter()
                .map(|(period, amount)| RecurringDto {
                    billing_period: period.as_str(),
                    amount: amount.to_string(),
                    amount_cents: amount.cents(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureDto {
    pub reason: String,
    pub failed_at: DateTime<Utc>,
}

impl From<Order> for OrderDto {
    fn from(order: Order) -> Self {
        OrderDto {
            order_id: Some(order.order_id.get()),
            correlation_id: order.correlation_id,
            status: order.status.as_str(),
            created_at: Some(order.created_at),
            completed_at: order.completed_at,
            total: Some(order.total.to_string()),
            total_cents: Some(order.total.cents()),
            charges: charges(&order.lines).into(),
            currency: orders_core::money::CURRENCY,
            items: order.lines.into_iter().map(Into::into).collect(),
            failure: None,
        }
    }
}

impl From<FailedOrder> for OrderDto {
    fn from(failed: FailedOrder) -> Self {
        let charges = charges(&failed.order.items);
        let total = charges.due_today;
        OrderDto {
            order_id: None,
            correlation_id: failed.order.correlation_id,
            status: OrderStatus::Failed.as_str(),
            created_at: Some(failed.order.accepted_at),
            completed_at: None,
            total: Some(total.to_string()),
            total_cents: Some(total.cents()),
            charges: charges.into(),
            currency: orders_core::money::CURRENCY,
            items: failed.order.items.into_iter().map(Into::into).collect(),
            failure: Some(FailureDto {
                reason: failed.reason,
                failed_at: failed.failed_at,
            }),
        }
    }
}

impl OrderDto {
    /// An order known only to the workflow state: accepted, not yet persisted.
    pub fn in_flight(correlation_id: CorrelationId, tracked: TrackedStatus) -> Self {
        OrderDto {
            order_id: tracked.order_id.map(|id| id.get()),
            correlation_id,
            status: tracked.status.as_str(),
            created_at: None,
            completed_at: None,
            total: None,
            total_cents: None,
            charges: ChargesDto::default(),
            currency: orders_core::money::CURRENCY,
            items: Vec::new(),
            failure: None,
        }
    }
}
