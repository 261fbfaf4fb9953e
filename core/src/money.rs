//! Exact money: integer minor units (cents) of a single currency. Never a float.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;

/// The shop sells in one currency.
pub const CURRENCY: &str = "USD";

/// An amount in minor units (cents).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub const fn cents(self) -> i64 {
        self.0
    }

    /// The amount after a percentage discount, rounded half-up to the cent.
    pub fn discounted(self, percent: u8) -> Money {
        let percent = i64::from(percent.min(100));
        Money((self.0 * (100 - percent) + 50).div_euclid(100))
    }

    /// `self * quantity`, or `None` on overflow.
    pub fn times(self, quantity: u32) -> Option<Money> {
        self.0.checked_mul(i64::from(quantity)).map(Money)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

/// Formats as a decimal string with two places (`"29.99"`), the exact form the API returns.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        Money(iter.map(|m| m.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_exact_decimal() {
        assert_eq!(Money::from_cents(2999).to_string(), "29.99");
        assert_eq!(Money::from_cents(5).to_string(), "0.05");
        assert_eq!(Money::from_cents(-150).to_string(), "-1.50");
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }

    #[test]
    fn discount_rounds_half_up() {
        assert_eq!(
            Money::from_cents(2999).discounted(10),
            Money::from_cents(2699)
        ); // 2699.1
        assert_eq!(
            Money::from_cents(1999).discounted(25),
            Money::from_cents(1499)
        ); // 1499.25
        assert_eq!(
            Money::from_cents(1998).discounted(25),
            Money::from_cents(1499)
        ); // 1498.5
        assert_eq!(
            Money::from_cents(1000).discounted(0),
            Money::from_cents(1000)
        );
        assert_eq!(Money::from_cents(1000).discounted(200), Money::ZERO);
    }

    #[test]
    fn multiplication_detects_overflow() {
        assert_eq!(
            Money::from_cents(250).times(4),
            Some(Money::from_cents(1000))
        );
        assert_eq!(Money::from_cents(i64::MAX).times(2), None);
    }
}
