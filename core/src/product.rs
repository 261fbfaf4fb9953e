//! Catalog products.

use crate::ids::ProductId;
use crate::money::Money;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BillingPeriod {
    Monthly,
    Quarterly,
    Yearly,
    OneTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown billing period {0:?}")]
pub struct UnknownBillingPeriod(pub String);

impl BillingPeriod {
    /// The periods that charge again, shortest first; one-time never does.
    pub const RECURRING: [BillingPeriod; 3] = [Self::Monthly, Self::Quarterly, Self::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            BillingPeriod::Monthly => "monthly",
            BillingPeriod::Quarterly => "quarterly",
            BillingPeriod::Yearly => "yearly",
            BillingPeriod::OneTime => "one-time",
        }
    }
}

impl FromStr for BillingPeriod {
    type Err = UnknownBillingPeriod;
    fn from_str(s: &str) -> Result<Self, UnknownBillingPeriod> {
        Self::RECURRING
            .into_iter()
            .chain([Self::OneTime])
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownBillingPeriod(s.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_periods_parse_from_their_api_strings_only() {
        use BillingPeriod::{Monthly, OneTime, Quarterly, Yearly};
        for period in [Monthly, Quarterly, Yearly, OneTime] {
            assert_eq!(period.as_str().parse(), Ok(period));
            let json = serde_json::to_string(&period).unwrap();
            assert_eq!(json, format!("\"{}\"", period.as_str()));
        }
        assert_eq!(
            "Monthly".parse::<BillingPeriod>(),
            Err(UnknownBillingPeriod("Monthly".into()))
        );
    }
}
