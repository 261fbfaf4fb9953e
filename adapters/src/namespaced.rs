//! Queue names under a namespace (`QUEUE_NAMESPACE`): several systems (developers, test runs)
//! can share one broker without taking each other's messages.

use async_trait::async_trait;
use orders_core::ports::{
    BackendError, Backlog, DeadLetter, Delivery, MessagePublisher, OutboundMessage, QueueTransport,
    Settlement,
};
use std::sync::Arc;
use std::time::Duration;

pub struct Namespaced {
    inner: Arc<dyn QueueTransport>,
    prefix: String,
}

impl Namespaced {
    /// `inner` as is for an empty namespace; otherwise every queue becomes `{namespace}.{queue}`.
    pub fn wrap(inner: Arc<dyn QueueTransport>, namespace: &str) -> Arc<dyn QueueTransport> {
        if namespace.is_empty() {
            return inner;
        }
        Arc::new(Namespaced {
            inner,
            prefix: format!("{namespace}."),
        })
    }

    fn name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    /// The delivery as the inner transport named it.
    fn inner_delivery(&self, delivery: &Delivery) -> Delivery {
        let mut inner = delivery.clone();
        inner.queue = self.name(&delivery.queue);
        inner
    }

    /// Deliveries and dead letters report the queue by the name the caller knows.
    fn local<'a>(&self, queue: &'a str) -> &'a str {
        queue.strip_prefix(self.prefix.as_str()).unwrap_or(queue)
    }
}

#[async_trait]
impl MessagePublisher for Namespaced {
    async fn publish(&self, queue: &str, message: OutboundMessage) -> Result<(), BackendError> {
        self.inner.publish(&self.name(queue), message).await
    }
}

#[async_trait]
impl QueueTransport for Namespaced {
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        let deliveries = self.inner.receive(&self.name(queue), max, wait).await?;
        Ok(deliveries
            .into_iter()
            .map(|mut d| {
                d.queue = self.local(&d.queue).to_owned();
                d
            })
            .collect())
    }

    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<(), BackendError> {
        self.inner
            .settle(&self.inner_delivery(delivery), settlement)
            .await
    }

    async fn complete(
        &self,
        delivery: &Delivery,
        outputs: Vec<(String, OutboundMessage)>,
    ) -> Result<(), BackendError> {
        let outputs = outputs
            .into_iter()
            .map(|(queue, message)| (self.name(&queue), message))
            .collect();
        self.inner
            .complete(&self.inner_delivery(delivery), outputs)
            .await
    }

    async fn renew_lock(&self, delivery: &Delivery) -> Result<(), BackendError> {
        self.inner.renew_lock(&self.inner_delivery(delivery)).await
    }

    async fn backlog(&self, queue: &str) -> Result<Backlog, BackendError> {
        self.inner.backlog(&self.name(queue)).await
    }

    async fn dead_letters(
        &self,
        queue: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, BackendError> {
        let letters = self.inner.dead_letters(&self.name(queue), limit).await?;
        Ok(letters
            .into_iter()
            .map(|mut d| {
                d.queue = self.local(&d.queue).to_owned();
                d
            })
            .collect())
    }

    async fn replay_dead_letter(
        &self,
        queue: &str,
        message_id: &str,
    ) -> Result<bool, BackendError> {
        self.inner
            .replay_dead_letter(&self.name(queue), message_id)
            .await
    }
}
