//! The order status and its forward-only transitions.

use crate::ids::OrderId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Accepted,
    Processing,
    Completed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("order status cannot move from {from} back to {to}")]
pub struct BackwardTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::Processing => "PROCESSING",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Failed => "FAILED",
        }
    }

    /// Position in the lifecycle. FAILED (dead-lettered) ranks below COMPLETED: a failed order
    /// that is retried once its cause is fixed may still complete, and a completed one never
    /// fails.
    fn rank(self) -> u8 {
        match self {
            OrderStatus::Accepted => 0,
            OrderStatus::Processing => 1,
            OrderStatus::Failed => 2,
            OrderStatus::Completed => 3,
        }
    }

    /// The status after a transition to `next`. Repeating the current status is allowed (a
    /// redelivered message re-applies it); going back is not, so a retried FAILED order stays
    /// FAILED until it is COMPLETED.
    pub fn advance(self, next: OrderStatus) -> Result<OrderStatus, BackwardTransition> {
        if next == self || next.rank() > self.rank() {
            Ok(next)
        } else {
            Err(BackwardTransition {
                from: self,
                to: next,
            })
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        match s {
            "ACCEPTED" => Ok(OrderStatus::Accepted),
            "PROCESSING" => Ok(OrderStatus::Processing),
            "COMPLETED" => Ok(OrderStatus::Completed),
            "FAILED" => Ok(OrderStatus::Failed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// What the workflow state holds for an order: its status and, once persisted, its id.
/// Stored as `STATUS` or `STATUS|orderId` (e.g. `COMPLETED|42`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedStatus {
    pub status: OrderStatus,
    pub order_id: Option<OrderId>,
}

impl TrackedStatus {
    pub fn new(status: OrderStatus, order_id: Option<OrderId>) -> Self {
        TrackedStatus { status, order_id }
    }

    pub fn encode(&self) -> String {
        match self.order_id {
            Some(id) => format!("{}|{id}", self.status),
            None => self.status.to_string(),
        }
    }

    pub fn decode(raw: &str) -> Result<Self, UnknownStatus> {
        let (status, id) = match raw.split_once('|') {
            Some((status, id)) => (status, Some(id)),
            None => (raw, None),
        };
        let order_id = id
            .map(|id| id.parse::<i64>().map(OrderId::new))
            .transpose()
            .map_err(|_| UnknownStatus(raw.to_owned()))?;
        Ok(TrackedStatus {
            status: status.parse()?,
            order_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn statuses_only_move_forward() {
        assert_eq!(Accepted.advance(Processing), Ok(Processing));
        assert_eq!(Processing.advance(Completed), Ok(Completed));
        assert_eq!(Accepted.advance(Completed), Ok(Completed));
        assert_eq!(Processing.advance(Failed), Ok(Failed));
        assert_eq!(Completed.advance(Completed), Ok(Completed));
        assert!(Completed.advance(Processing).is_err());
        assert!(Processing.advance(Accepted).is_err());
        assert!(Completed.advance(Failed).is_err());
        // A retried failure completes, but shows no PROCESSING on the way.
        assert_eq!(Failed.advance(Completed), Ok(Completed));
        assert!(Failed.advance(Processing).is_err());
        assert!(Failed.advance(Accepted).is_err());
    }

    #[test]
    fn tracked_status_round_trips() {
        let done = TrackedStatus::new(Completed, Some(OrderId::new(42)));
        assert_eq!(done.encode(), "COMPLETED|42");
        assert_eq!(TrackedStatus::decode("COMPLETED|42"), Ok(done));
        assert_eq!(
            TrackedStatus::decode("ACCEPTED"),
            Ok(TrackedStatus::new(Accepted, None))
        );
        assert!(TrackedStatus::decode("DONE").is_err());
        assert!(TrackedStatus::decode("COMPLETED|x").is_err());
    }

    #[test]
    fn serialises_as_screaming_strings() {
        assert_eq!(
            serde_json::to_string(&Processing).unwrap(),
            "\"PROCESSING\""
        );
    }
}
