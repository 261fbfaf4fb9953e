//! Notification fan-out in process memory: the embedded twin of
//! [`crate::redis::RedisFanout`], for a hub that shares the process with the notifier.

use async_trait::async_trait;
use orders_core::UserId;
use orders_core::events::Notification;
use orders_core::ports::{BackendError, NotificationFanout};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// One notification for one user, as every hub replica receives it. On the Redis channel it is
/// JSON: `{"userId":"…","notification":{"correlationId":"…","status":"COMPLETED","orderId":42},
/// "traceparent":"00-…"}`; the `traceparent` (present when traces are exported) lets the hub's
/// push join the order's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutMessage {
    pub user_id: UserId,
    pub notification: Notification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl FanoutMessage {
    /// The message for `user`, in the publishing span's trace.
    pub fn new(user: &UserId, notification: &Notification) -> Self {
        FanoutMessage {
            user_id: user.clone(),
            notification: notification.clone(),
            traceparent: orders_telemetry::current_traceparent(),
        }
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
    pub fn subscribe(&self) -> broadcast::Receiver<FanoutMessage> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl NotificationFanout for MemoryFanout {
    async fn publish(
        &self,
        user: &UserId,
        notification: &Notification,
    ) -> Result<(), BackendError> {
        let message = FanoutMessage::new(user, notification);
        // Sending fails only when nobody subscribes: then no user is connected to tell.
        let _ = self.sender.send(message);
        Ok(())
    }
}
