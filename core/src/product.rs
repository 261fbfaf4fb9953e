//! Catalog products.

use crate::ids::ProductId;
use crate::money::Money;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BillingPeriod {
    Monthly,
    Quarterly,
    Yearly,
    OneTime,
}

impl BillingPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingPeriod::Monthly => "monthly",
            BillingPeriod::Quarterly => "quarterly",
            BillingPeriod::Yearly => "yearly",
            BillingPeriod::OneTime => "one-time",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Monthly, Self::Quarterly, Self::Yearly, Self::OneTime]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }
}

/// A certification-prep subscription (or one-time purchase) the shop sells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_id: ProductId,
    pub name: String,
    pub category: String,
    pub vendor: String,
    pub image_url: String,
    /// List price per billing period.
    #[serde(rename = "priceCents")]
    pub price: Money,
    pub discount_percent: u8,
    pub billing_period: BillingPeriod,
    pub is_subscription: bool,
    pub is_active: bool,
}

impl Product {
    /// What a customer pays per unit today: the list price less the discount.
    pub fn unit_price(&self) -> Money {
        self.price.discounted(self.discount_percent)
    }
}
