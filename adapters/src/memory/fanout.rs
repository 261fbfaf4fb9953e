//! Notification fan-out in process memory: the embedded twin of
//! [`crate::redis::RedisFanout`], for a hub that shares the process with the notifier.

use async_trait::async_trait;
use orders_core::UserId;
use orders_core::events::{FanoutMessage, Notification};
use orders_core::ports::{BackendError, FanoutEvent, FanoutSubscription, NotificationFanout};
use tokio::sync::broadcast;

/// The message for `user`, in the publishing span's trace.
pub(crate) fn fanout_message(user: &UserId, notification: &Notification) -> FanoutMessage {
    FanoutMessage {
        user_id: user.clone(),
        notification: notification.clone(),
        traceparent: orders_telemetry::current_traceparent(),
    }
}

/// How many messages a slow subscriber may fall behind before it misses some (it then sees
/// `RecvError::Lagged`): bounded, so a stuck hub cannot grow memory without limit.
const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct MemoryFanout {
    sender: broadcast::Sender<FanoutMessage>,
}

impl Default for MemoryFanout {
    fn default() -> Self {
        MemoryFanout {
            sender: broadcast::channel(CAPACITY).0,
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
        let message = fanout_message(user, notification);
        // Sending fails only when nobody subscribes: then no user is connected to tell.
        let _ = self.sender.send(message);
        Ok(())
    }
}
