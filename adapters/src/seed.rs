//! The catalog seed: 145 certification-prep products on sale plus 3 retired ones, compiled into the binary so every
//! deployment seeds the same catalog. Stores upsert it at start-up.

use orders_core::product::Product;

const CATALOG_JSON: &str = include_str!("../../data/catalog.json");

/// The seed products. The data file is checked by a test, so this cannot fail at run time.
pub fn products() -> Vec<Product> {
    serde_json::from_str(CATALOG_JSON).expect("data/catalog.json is a valid catalog")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_has_145_active_unique_products_from_at_least_six_vendors() {
        let products = products();
        assert_eq!(products.iter().filter(|p| p.is_active).count(), 145);
        assert_eq!(products.len(), 148, "plus 3 retired products");
        let ids: HashSet<_> = products.iter().map(|p| &p.product_id).collect();
        assert_eq!(ids.len(), products.len(), "product ids are unique");
        let vendors: HashSet<_> = products.iter().map(|p| &p.vendor).collect();
        assert!(vendors.len() >= 6);
        for p in &products {
            assert!(p.price.cents() > 0 && p.discount_percent <= 50, "{p:?}");
            assert_eq!(
                p.is_subscription,
                p.billing_period != orders_core::product::BillingPeriod::OneTime
            );
        }
    }
}
