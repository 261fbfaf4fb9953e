//! Identifier newtypes. Each validates once, at the edge, so the rest of the code can trust it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("user id must be 1 to 128 printable characters")]
    User,
    #[error("product id must be 1 to 32 characters of A-Z, 0-9 and '-'")]
    Product,
    #[error("order reference must be a positive order id or a correlation id (UUID)")]
    OrderRef,
}

/// The JWT `sub` of the user who owns an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
        let raw = raw.into();
        let ok =
            !raw.is_empty() && raw.chars().count() <= 128 && !raw.chars().any(char::is_control);
        ok.then_some(UserId(raw)).ok_or(IdError::User)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        UserId::parse(raw)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A catalog product id such as `AZ-104`. Parsing upper-cases, so `az-104` names the same product.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = (1..=32).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        ok.then(|| ProductId(raw.to_ascii_uppercase()))
            .ok_or(IdError::Product)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductId {
    type Error = IdError;
    fn try_from(raw: String) -> Result<Self, IdError> {
        ProductId::parse(&raw)
    }
}

impl From<ProductId> for String {
    fn from(id: ProductId) -> String {
        id.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The workflow key, made at intake; unique per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(Uuid);

impl CorrelationId {
    /// A fresh id: UUIDv7, its first 48 bits the time in ms and the other 74 random. Ids made
    /// one after another sort together, so the unique indexes they are written to (the
    /// embedded queue's message ids, the orders table) grow at their right edge instead of
    /// touching a random page per insert: fewer pages written per commit.
    pub fn generate() -> Self {
        CorrelationId(Uuid::now_v7())
    }

    pub fn from_uuid(id: Uuid) -> Self {
        CorrelationId(id)
    }

    /// The correlation id of `owner`'s order placed with Idempotency-Key `key` and a request
    /// whose canonical form is `request`: derived, not random, so a retry makes the same id
    /// whatever is down. The queue's duplicate detection (MessageId = correlation id) and the
    /// unique correlation id at persistence then make one order of any number of retries, even
    /// when the idempotency store cannot answer. The request is part of it, so the same key with
    /// another body (refused with 422 while the store answers) is never folded into the first
    /// order.
    pub fn for_idempotency_key(owner: &UserId, key: &str, request: &str) -> Self {
        use sha2::{Digest, Sha256};
        // Length-prefixed, so user "a" with key "b:c" and user "a:b" with key "c" differ.
        let digest = Sha256::new()
            .chain_update(b"contoso-orders/idempotency-key/v1\0")
            .chain_update(owner.as_str().len().to_string())
            .chain_update(b":")
            .chain_update(owner.as_str())
            .chain_update(b":")
            .chain_update(key.len().to_string())
            .chain_update(b":")
            .chain_update(key)
            .chain_update(b":")
            .chain_update(request)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        CorrelationId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for CorrelationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(CorrelationId)
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The id the SQL database gives an order when it is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(i64);

impl OrderId {
    pub fn new(id: i64) -> Self {
        OrderId(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a client names an order: by its numeric id or by its correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRef {
    Id(OrderId),
    Correlation(CorrelationId),
}

impl FromStr for OrderRef {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if let Ok(id) = s.parse::<i64>() {
            return (id > 0)
                .then_some(OrderRef::Id(OrderId(id)))
                .ok_or(IdError::OrderRef);
        }
        s.parse::<CorrelationId>()
            .map(OrderRef::Correlation)
            .map_err(|_| IdError::OrderRef)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_derives_one_correlation_id_per_user() {
        let (alice, bob) = (
            UserId::parse("alice").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        let first = CorrelationId::for_idempotency_key(&alice, "k-1", "[1]");
        assert_eq!(
            first,
            CorrelationId::for_idempotency_key(&alice, "k-1", "[1]")
        );
        assert_ne!(
            first,
            CorrelationId::for_idempotency_key(&alice, "k-2", "[1]")
        );
        assert_ne!(
            first,
            CorrelationId::for_idempotency_key(&bob, "k-1", "[1]")
        );
        // Another body under the same key is another order, never folded into the first.
        assert_ne!(
            first,
            CorrelationId::for_idempotency_key(&alice, "k-1", "[2]")
        );
        let (a, b_c) = (UserId::parse("a").unwrap(), UserId::parse("a:b").unwrap());
        assert_ne!(
            CorrelationId::for_idempotency_key(&a, "b:c", "x"),
            CorrelationId::for_idempotency_key(&b_c, "c", "x")
        );
        assert_ne!(
            CorrelationId::for_idempotency_key(&alice, "k:1", "x"),
            CorrelationId::for_idempotency_key(&alice, "k", "1:x")
        );
        // A custom (version 8) UUID: derived, not random.
        assert_eq!(first.as_uuid().get_version_num(), 8);
        assert_eq!(first.to_string().parse::<CorrelationId>().unwrap(), first);
    }

    #[test]
    fn product_ids_are_normalised_and_checked() {
        assert_eq!(ProductId::parse("az-104").unwrap().as_str(), "AZ-104");
        assert!(ProductId::parse("").is_err());
        assert!(ProductId::parse("AZ 104").is_err());
        assert!(ProductId::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn user_ids_reject_empty_long_and_control_characters() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a\nb").is_err());
        assert!(UserId::parse("x".repeat(129)).is_err());
    }

    #[test]
    fn order_refs_parse_ids_and_uuids() {
        assert_eq!("42".parse::<OrderRef>(), Ok(OrderRef::Id(OrderId(42))));
        assert!("0".parse::<OrderRef>().is_err());
        assert!("-3".parse::<OrderRef>().is_err());
        let cid = CorrelationId::generate();
        assert_eq!(
            cid.to_string().parse::<OrderRef>(),
            Ok(OrderRef::Correlation(cid))
        );
        assert!("nope".parse::<OrderRef>().is_err());
    }
}
