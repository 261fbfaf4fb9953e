//! The Service Bus session processor's concurrency model, as the Functions host runs it: at most
//! `maxConcurrentSessions` sessions are open at once, and a session stays open, holding its slot,
//! until `sessionIdleTimeout` has passed with no message for it (`ServiceBusSessionProcessor`,
//! Azure/azure-sdk-for-net; see tests/conformance/README.md). So with one message per session a
//! host instance completes about `maxConcurrentSessions / sessionIdleTimeout` messages a second,
//! however fast the function is.
//!
//! The transports keep each session FIFO; this only decides when a message of a session that
//! holds no slot may start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Open {
    in_flight: usize,
    /// When the session's last message finished (None while one is in flight).
    idle_since: Option<Instant>,
}

#[derive(Debug)]
struct Slots {
    capacity: usize,
    idle_timeout: Duration,
    open: Mutex<HashMap<String, Open>>,
    released: Notify,
}

/// The session slots of one session-enabled trigger.
#[derive(Debug, Clone)]
pub struct SessionSlots(Arc<Slots>);

/// A message's hold on its session's slot; the slot's idle timer starts when it drops.
#[derive(Debug)]
pub struct SlotGuard {
    slots: SessionSlots,
    session: String,
}

impl SessionSlots {
    pub fn new(capacity: usize, idle_timeout: Duration) -> Self {
        SessionSlots(Arc::new(Slots {
            capacity: capacity.max(1),
            idle_timeout,
            open: Mutex::new(HashMap::new()),
            released: Notify::new(),
        }))
    }

    /// Waits until `session` is open (already, or in a slot freed by an idle session).
    pub async fn enter(&self, session: &str) -> SlotGuard {
        loop {
            let released = self.0.released.notified();
            let wait = match self.try_enter(session) {
                Ok(()) => {
                    return SlotGuard {
                        slots: self.clone(),
                        session: session.to_owned(),
                    };
                }
                Err(next_expiry) => next_expiry,
            };
            match wait {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, released).await;
                }
                None => released.await,
            }
        }
    }

    /// Opens or joins the session; else the earliest moment an idle slot expires, if any.
    fn try_enter(&self, session: &str) -> Result<(), Option<Instant>> {
        let mut open = self.0.open.lock().expect("session slots lock");
        let now = Instant::now();
        let idle = self.0.idle_timeout;
        // A slot expires `idle` after its last message (never, for an unbounded timeout).
        let expiry = |since: Instant| since.checked_add(idle);
        open.retain(|_, s| {
            s.idle_since
                .is_none_or(|since| expiry(since).is_none_or(|at| at > now))
        });
        if let Some(slot) = open.get_mut(session) {
            slot.in_flight += 1;
            slot.idle_since = None;
            return Ok(());
        }
        if open.len() < self.0.capacity {
            open.insert(
                session.to_owned(),
                Open {
                    in_flight: 1,
                    idle_since: None,
                },
            );
            return Ok(());
        }
        Err(open
            .values()
            .filter_map(|s| s.idle_since)
            .min()
            .map(|t| t + idle))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut open = self.slots.0.open.lock().expect("session slots lock");
        if let Some(slot) = open.get_mut(&self.session) {
            slot.in_flight -= 1;
            if slot.in_flight == 0 {
                slot.idle_since = Some(Instant::now());
            }
        }
        drop(open);
        self.slots.0.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sessions` sessions of one message each, each taking `work`: how long all of them take.
    async fn run(slots: &SessionSlots, sessions: usize, work: Duration) -> Duration {
        let started = Instant::now();
        let tasks: Vec<_> = (0..sessions)
            .map(|n| {
                let slots = slots.clone();
                tokio::spawn(async move {
                    let _slot = slots.enter(&format!("user-{n}")).await;
                    tokio::time::sleep(work).await;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_session_runs_at_slots_per_idle_timeout() {
        let slots = SessionSlots::new(8, Duration::from_secs(5));
        // 32 sessions through 8 slots: four waves, each slot idling 5 s between them, so after
        // the first wave 24 messages take 15 s: 8 / 5 s = 1.6 a second.
        let took = run(&slots, 32, Duration::from_millis(10)).await;
        let expected = Duration::from_secs(15) + Duration::from_millis(40);
        assert!(took >= expected, "{took:?}");
        assert!(took < expected + Duration::from_millis(50), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_session_takes_its_next_message_without_waiting() {
        let slots = SessionSlots::new(1, Duration::from_secs(5));
        drop(slots.enter("alice").await);
        let started = Instant::now();
        drop(slots.enter("alice").await);
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Bob waits for Alice's session to idle out.
        drop(slots.enter("bob").await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
