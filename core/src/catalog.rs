//! The in-memory catalog: loaded once at start-up, so intake never touches SQL.

use crate::ids::ProductId;
use crate::paging::{Page, PageRequest};
use crate::product::Product;
use std::collections::HashMap;

/// Filters for browsing the catalog. Text matching is case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    /// Words that must all appear in the id, name, vendor or category.
    pub text: Option<String>,
    pub vendor: Option<String>,
    pub category: Option<String>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    /// Active products in display order (vendor, then id).
    listed: Vec<Product>,
    /// Every product, active or not, by id.
    by_id: HashMap<ProductId, Product>,
    /// Lower-cased search text per listed product, built once.
    haystacks: Vec<String>,
}

impl Catalog {
    pub fn new(products: Vec<Product>) -> Self {
        let by_id = products
            .iter()
            .map(|p| (p.product_id.clone(), p.clone()))
            .collect();
        let mut listed: Vec<Product> = products.into_iter().filter(|p| p.is_active).collect();
        listed.sort_by(|a, b| (&a.vendor, &a.product_id).cmp(&(&b.vendor, &b.product_id)));
        let haystacks = listed
            .iter()
            .map(|p| {
                format!("{} {} {} {}", p.product_id, p.name, p.vendor, p.category).to_lowercase()
            })
            .collect();
        Catalog {
            listed,
            by_id,
            haystacks,
        }
    }

    /// Any product by id, inactive ones included (callers decide what inactive means).
    pub fn get(&self, id: &ProductId) -> Option<&Product> {
        self.by_id.get(id)
    }

    /// Active products only.
    pub fn get_active(&self, id: &ProductId) -> Option<&Product> {
        self.get(id).filter(|p| p.is_active)
    }

    pub fn len(&self) -> usize {
        self.listed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    pub fn search(&self, query: &ProductQuery, page: PageRequest) -> Page<Product> {
        let words: Vec<String> = query
            .text
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let matches: Vec<&Product> = self
            .listed
            .iter()
            .zip(&self.haystacks)
            .filter(|(p, hay)| {
                words.iter().all(|w| hay.contains(w.as_str()))
                    && eq_ignore_case(query.vendor.as_deref(), &p.vendor)
                    && eq_ignore_case(query.category.as_deref(), &p.category)
            })
            .map(|(p, _)| p)
            .collect();
        Page {
            offset: page.offset,
            size: page.size,
            total: matches.len() as u64,
            items: matches
                .into_iter()
                .skip(page.offset as usize)
                .take(page.size as usize)
                .cloned()
                .collect(),
        }
    }
}

fn eq_ignore_case(wanted: Option<&str>, actual: &str) -> bool {
    wanted.is_none_or(|w| w.eq_ignore_ascii_case(actual))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::money::Money;
    use crate::product::BillingPeriod;

    pub fn product(id: &str, vendor: &str, category: &str, active: bool) -> Product {
        Product {
            product_id: ProductId::parse(id).unwrap(),
            name: format!("{id} Practice Exams"),
            category: category.into(),
            vendor: vendor.into(),
            image_url: String::new(),
            price: Money::from_cents(2999),
            discount_percent: 10,
            billing_period: BillingPeriod::Monthly,
            is_subscription: true,
            is_active: active,
        }
    }

    fn catalog() -> Catalog {
        Catalog::new(vec![
            product("AZ-104", "Microsoft", "Cloud", true),
            product("SC-200", "Microsoft", "Security", true),
            product("SAA-C03", "AWS", "Cloud", true),
            product("AZ-303", "Microsoft", "Cloud", false),
        ])
    }

    #[test]
    fn lists_active_products_sorted_by_vendor() {
        let page = catalog().search(&ProductQuery::default(), PageRequest::default());
        let ids: Vec<_> = page.items.iter().map(|p| p.product_id.as_str()).collect();
        assert_eq!(ids, ["SAA-C03", "AZ-104", "SC-200"]);
        assert_eq!(page.total, 3);
    }

    #[test]
    fn filters_and_searches_case_insensitively() {
        let c = catalog();
        let q = |text: Option<&str>, vendor: Option<&str>, category: Option<&str>| {
            let query = ProductQuery {
                text: text.map(Into::into),
                vendor: vendor.map(Into::into),
                category: category.map(Into::into),
            };
            c.search(&query, PageRequest::default()).total
        };
        assert_eq!(q(Some("az-104"), None, None), 1);
        assert_eq!(q(Some("practice microsoft"), None, None), 2);
        assert_eq!(q(None, Some("microsoft"), None), 2);
        assert_eq!(q(None, Some("microsoft"), Some("security")), 1);
        assert_eq!(q(Some("nothing-like-this"), None, None), 0);
    }

    #[test]
    fn pages_and_keeps_inactive_products_addressable() {
        let c = catalog();
        let page = c.search(
            &ProductQuery::default(),
            PageRequest::new(Some(2), Some(2)).unwrap(),
        );
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.total, 3);
        let retired = ProductId::parse("AZ-303").unwrap();
        assert!(c.get(&retired).is_some());
        assert!(c.get_active(&retired).is_none());
    }
}
