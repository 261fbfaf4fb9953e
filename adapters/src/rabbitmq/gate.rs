//! One message per session in hand, with several prefetched per shard.
//!
//! A shard's consumer has [`PREFETCH`] deliveries outstanding, so the broker never waits for an
//! ack before sending the next one. Sessions stay FIFO here instead: a delivery is handed out
//! only while nothing else of its session is; the rest wait, parked in the order the broker
//! sent them (the queue's order), and the next of a session is handed out when the one before
//! it is settled. So sessions that share a shard no longer wait for each other either, as with
//! Service Bus sessions.
//!
//! An abandoned delivery goes back to the head of its quorum queue and, this consumer being the
//! shard's single active one, comes back here; its session's parked deliveries, which came
//! after it, wait until it has. Whatever is parked when the channel closes is requeued by the
//! broker, in queue order, for the next consumer; the gate starts empty on the next channel.

use super::codec;
use lapin::message::Delivery as AmqpDelivery;
use std::collections::{HashMap, VecDeque};

/// Unsettled deliveries per shard consumer. Higher overlaps more of the broker's round trips;
/// it is also how much a shard holds back from the other replicas while it is handed over.
pub(super) const PREFETCH: u16 = 16;

/// Which session a delivery belongs to; `None` has no order to keep.
pub(super) type Session = Option<String>;

#[derive(Default)]
pub(super) struct Gate {
    /// Per session, the delivery tag out in hand (or on its way to a receiver).
    holders: HashMap<String, u64>,
    /// Sessions whose abandoned message (by id) must come back before the rest of them.
    returning: HashMap<String, String>,
    /// Deliveries waiting for their session, in the order the broker sent them.
    parked: VecDeque<(String, AmqpDelivery)>,
}

impl Gate {
    /// `delivery` if it may be handed out now (its session is then held for it); else parks it.
    pub(super) fn admit(
        &mut self,
        session: Session,
        delivery: AmqpDelivery,
    ) -> Option<AmqpDelivery> {
        let Some(session) = session else {
            return Some(delivery);
        };
        if self.free(&session, &delivery) {
            self.returning.remove(&session);
            self.holders.insert(session, delivery.delivery_tag);
            Some(delivery)
        } else {
            self.parked.push_back((session, delivery));
            None
        }
    }

    fn free(&self, session: &str, delivery: &AmqpDelivery) -> bool {
        !self.holders.contains_key(session)
            && self
                .returning
                .get(session)
                .is_none_or(|awaited| *awaited == codec::message_id(delivery))
    }

    /// The delivery `tag` of `session` was settled; `abandoned` names its message if it went
    /// back to the queue. The session's next delivery, if it may now be handed out.
    pub(super) fn settled(
        &mut self,
        session: &str,
        tag: u64,
        abandoned: Option<&str>,
    ) -> Option<AmqpDelivery> {
        if self.holders.get(session) != Some(&tag) {
            return None;
        }
        self.holders.remove(session);
        if let Some(message_id) = abandoned {
            self.returning
                .insert(session.to_owned(), message_id.to_owned());
            return None;
        }
        let at = self.parked.iter().position(|(s, _)| s == session)?;
        let (session, delivery) = self.parked.remove(at)?;
        self.admit(Some(session), delivery)
    }

    /// No session in hand and nothing parked.
    pub(super) fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.parked.is_empty()
    }

    /// A new channel: what the last one held is the broker's again.
    pub(super) fn clear(&mut self) {
        *self = Gate::default();
    }
}
