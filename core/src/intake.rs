//! Validating and pricing an order request against the catalog.

use crate::catalog::Catalog;
use crate::ids::ProductId;
use crate::order::OrderLine;
use std::collections::HashSet;
use thiserror::Error;

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 1000;

/// One requested line, as the client sent it (types already checked, values not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLine {
    pub product_id: String,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderRequestError {
    #[error("an order needs at least one item")]
    NoItems,
    #[error("an order can have at most {MAX_LINES} items")]
    TooManyItems,
    #[error("items[{index}].productId is not a valid product id")]
    BadProductId { index: usize },
    #[error("items[{index}].quantity must be between 1 and {MAX_QUANTITY}")]
    BadQuantity { index: usize },
    #[error("items[{index}].productId repeats {product_id}; put the quantity on one line")]
    DuplicateProduct { index: usize, product_id: ProductId },
    #[error("unknown or unavailable products: {}", .0.iter().map(ProductId::as_str).collect::<Vec<_>>().join(", "))]
    UnknownProducts(Vec<ProductId>),
}

impl OrderRequestError {
    /// The JSON path of the offending field, for problem details.
    pub fn field(&self) -> String {
        match self {
            OrderRequestError::NoItems | OrderRequestError::TooManyItems => "items".into(),
            OrderRequestError::BadProductId { index }
            | OrderRequestError::DuplicateProduct { index, .. } => {
                format!("items[{index}].productId")
            }
            OrderRequestError::BadQuantity { index } => format!("items[{index}].quantity"),
            OrderRequestError::UnknownProducts(_) => "items".into(),
        }
    }
}

/// Checks the lines and prices them at today's catalog prices.
pub fn price_lines(
    requested: &[RequestedLine],
    catalog: &Catalog,
) -> Result<Vec<OrderLine>, OrderRequestError> {
    if requested.is_empty() {
        return Err(OrderRequestError::NoItems);
    }
    if requested.len() > MAX_LINES {
        return Err(OrderRequestError::TooManyItems);
    }
    let mut seen = HashSet::with_capacity(requested.len());
    let mut checked = Vec::with_capacity(requested.len());
    for (index, line) in requested.iter().enumerate() {
        let product_id = ProductId::parse(&line.product_id)
            .map_err(|_| OrderRequestError::BadProductId { index })?;
        let quantity = u32::try_from(line.quantity)
            .ok()
            .filter(|q| (1..=MAX_QUANTITY).contains(&i64::from(*q)))
            .ok_or(OrderRequestError::BadQuantity { index })?;
        if !seen.insert(product_id.clone()) {
            return Err(OrderRequestError::DuplicateProduct { index, product_id });
        }
        checked.push((product_id, quantity));
    }
    let unknown: Vec<ProductId> = checked
        .iter()
        .filter(|(id, _)| catalog.get_active(id).is_none())
        .map(|(id, _)| id.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(OrderRequestError::UnknownProducts(unknown));
    }
    Ok(checked
        .into_iter()
        .filter_map(|(id, quantity)| {
            catalog.get_active(&id).map(|p| OrderLine {
                product_id: id,
                product_name: p.name.clone(),
                unit_price: p.unit_price(),
                quantity,
                billing_period: p.billing_period,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::product;
    use crate::money::Money;
    use crate::order::order_total;
    use crate::product::BillingPeriod;

    fn catalog() -> Catalog {
        Catalog::new(vec![
            product("AZ-104", "Microsoft", "Cloud", true),
            product("SAA-C03", "AWS", "Cloud", true),
            product("AZ-303", "Microsoft", "Cloud", false),
        ])
    }

    fn line(id: &str, quantity: i64) -> RequestedLine {
        RequestedLine {
            product_id: id.into(),
            quantity,
        }
    }

    #[test]
    fn prices_valid_lines_with_discount() {
        let lines = price_lines(&[line("az-104", 2), line("SAA-C03", 1)], &catalog()).unwrap();
        assert_eq!(lines[0].product_id.as_str(), "AZ-104");
        assert_eq!(lines[0].unit_price, Money::from_cents(2699));
        assert_eq!(lines[0].billing_period, BillingPeriod::Monthly);
        assert_eq!(order_total(&lines), Money::from_cents(2699 * 3));
    }

    #[test]
    fn rejects_bad_shapes_with_the_field_named() {
        let c = catalog();
        assert_eq!(price_lines(&[], &c), Err(OrderRequestError::NoItems));
        let many: Vec<_> = (0..101).map(|_| line("AZ-104", 1)).collect();
        assert_eq!(price_lines(&many, &c), Err(OrderRequestError::TooManyItems));
        for bad in [0, -1, 1001, i64::MAX] {
            let err = price_lines(&[line("AZ-104", 1), line("SAA-C03", bad)], &c).unwrap_err();
            assert_eq!(err.field(), "items[1].quantity");
        }
        let err = price_lines(&[line("AZ 104", 1)], &c).unwrap_err();
        assert_eq!(err.field(), "items[0].productId");
        let err = price_lines(&[line("AZ-104", 1), line("az-104", 1)], &c).unwrap_err();
        assert!(matches!(
            err,
            OrderRequestError::DuplicateProduct { index: 1, .. }
        ));
    }

    #[test]
    fn lists_every_unknown_or_inactive_product() {
        let err = price_lines(
            &[line("NOPE-1", 1), line("AZ-104", 1), line("AZ-303", 1)],
            &catalog(),
        );
        let Err(OrderRequestError::UnknownProducts(ids)) = err else {
            panic!("{err:?}")
        };
        let ids: Vec<_> = ids.iter().map(ProductId::as_str).collect();
        assert_eq!(ids, ["NOPE-1", "AZ-303"]);
    }
}
