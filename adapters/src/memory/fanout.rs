//! Notification fan-out in process memory: the embedded twin of
//! [`crate::redis::RedisFanout`], for a hub that shares the process with the notifier. Like the
//! Redis backplane it numbers every message with a cursor and keeps each user's recent ones.

use async_trait::async_trait;
use orders_core::UserId;
use orders_core::cursor::Cursor;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{
    BackendError, FanoutEvent, FanoutSubscription, NotificationFanout, NotificationHistory,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many of a user's notifications the backplane keeps for clients that reconnect...
pub(crate) const HISTORY_PER_USER: usize = 32;
/// ...and for how long.
pub(crate) const HISTORY_AGE: Duration = Duration::from_secs(600);

/// The message for `user`, in the publishing span's trace.
pub(crate) fn fanout_message(user: &UserId, notification: &Notification) -> FanoutMessage {
    FanoutMessage {
        user_id: user.clone(),
        notification: notification.clone(),
        traceparent: orders_telemetry::current_traceparent(),
    }
}

pub(crate) fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// The oldest position a history read still returns at `now_ms`.
pub(crate) fn history_horizon(now_ms: u64) -> Cursor {
    Cursor {
        millis: now_ms.saturating_sub(HISTORY_AGE.as_millis() as u64),
        sequence: 0,
    }
}

/// How many messages a slow subscriber may fall behind before it misses some (it then sees
/// `RecvError::Lagged`): bounded, so a stuck hub cannot grow memory without limit.
const CAPACITY: usize = 1024;
/// Every this many publishes, users with nothing recent are forgotten.
const PRUNE_EVERY: u64 = 1024;

#[derive(Default)]
struct Backplane {
    last: Cursor,
    published: u64,
    history: HashMap<UserId, VecDeque<Notification>>,
}

impl Backplane {
    fn append(&mut self, user: &UserId, notification: &mut Notification) {
        let now = now_ms();
        self.last = Cursor::next_after(self.last, now);
        notification.cursor = Some(self.last);
        let kept = self.history.entry(user.clone()).or_default();
        if kept.len() == HISTORY_PER_USER {
            kept.pop_front();
        }
        kept.push_back(notification.clone());
        self.published += 1;
        if self.published.is_multiple_of(PRUNE_EVERY) {
            let horizon = history_horizon(now);
            self.history
                .retain(|_, kept| kept.back().and_then(|n| n.cursor) >= Some(horizon));
        }
    }
}

#[derive(Clone)]
pub struct MemoryFanout {
    sender: broadcast::Sender<FanoutMessage>,
    backplane: Arc<Mutex<Backplane>>,
}

impl Default for MemoryFanout {
    fn default() -> Self {
        MemoryFanout {
            sender: broadcast::channel(CAPACITY).0,
            backplane: Arc::default(),
        }
    }
}

impl MemoryFanout {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message published from now on.
    pub fn subscribe(&self) -> MemorySubscription {
        MemorySubscription(self.sender.subscribe())
    }
}

pub struct MemorySubscription(broadcast::Receiver<FanoutMessage>);

#[async_trait]
impl FanoutSubscription for MemorySubscription {
    async fn next(&mut self) -> Option<FanoutEvent> {
        match self.0.recv().await {
            Ok(message) => Some(FanoutEvent::Message(message)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(FanoutEvent::Missed(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    fn backlog(&self) -> usize {
        self.0.len()
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[async_trait]
impl NotificationFanout for MemoryFanout {
    async fn publish(
        &self,
        user: &UserId,
        notification: &Notification,
    ) -> Result<(), BackendError> {
        let mut message = fanout_message(user, notification);
        let mut backplane = self.backplane.lock().expect("fan-out lock");
        backplane.append(user, &mut message.notification);
        // Sent under the lock, so subscribers see cursors in order. Sending fails only when
        // nobody subscribes: then no user is connected to tell.
        let _ = self.sender.send(message);
        Ok(())
    }
}

#[async_trait]
impl NotificationHistory for MemoryFanout {
    async fn since(&self, user: &UserId, after: Cursor) -> Result<Vec<Notification>, BackendError> {
        let after = Some(after.max(history_horizon(now_ms())));
        let backplane = self.backplane.lock().expect("fan-out lock");
        Ok(backplane
            .history
            .get(user)
            .map(|kept| kept.iter().filter(|n| n.cursor > after).cloned().collect())
            .unwrap_or_default())
    }
}
