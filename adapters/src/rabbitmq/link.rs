//! One AMQP connection and what hangs off it: the confirming publisher channel, the topology
//! declared so far, and the shard consumers feeding each queue's inbox. A `Link` is never
//! repaired: once broken it is replaced whole (see `RabbitQueue::link`).

use super::balance;
use super::codec::{self, short};
use super::gate::PREFETCH;
use super::rabbit_err;
use super::reshard;
use super::shard::{Incoming, ShardConsumer};
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use orders_core::ports::{BackendError, DEAD_LETTER_SUFFIX};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The quorum delivery limit. Setting one at all is what makes a rejected message go back to
/// the head of its queue (without one RabbitMQ 3.x requeues at the tail, breaking FIFO). The
/// host dead-letters long before this; past it the broker moves the message to the DLQ itself.
const DELIVERY_LIMIT: i64 = 1000;

pub(super) fn shard_queue(queue: &str, shard: usize) -> String {
    format!("{queue}.s{shard}")
}

/// The classic queue holding what the broker or a dead-letter subqueue gives up on.
pub(super) fn parking_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// `single_active`: one consumer at a time, for per-session FIFO. A dead-letter subqueue has no
/// sessions to keep in order (as in Service Bus), and without it `basic.get` can list it.
fn shard_arguments(dlq: &str, single_active: bool) -> FieldTable {
    let text = |s: &str| AMQPValue::LongString(s.into());
    FieldTable::from(BTreeMap::from([
        ("x-queue-type".into(), text("quorum")),
        (
            "x-single-active-consumer".into(),
            AMQPValue::Boolean(single_active),
        ),
        (
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(DELIVERY_LIMIT),
        ),
        ("x-dead-letter-exchange".into(), text("")),
        ("x-dead-letter-routing-key".into(), text(dlq)),
    ]))
}

/// Deliveries of every shard of one queue, merged; `receive` takes them in batches.
pub(super) struct Inbox {
    pub(super) deliveries: Mutex<mpsc::UnboundedReceiver<Incoming>>,
}

/// The queue whose consumer count is the number of replicas consuming `queue` (see [`balance`]).
fn members_queue(queue: &str) -> String {
    format!("{queue}.members")
}

/// A queue's counts, from its passive declare.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueStat {
    /// Messages waiting, not those delivered and unsettled.
    pub(super) ready: u32,
    pub(super) consumers: u32,
}

impl QueueStat {
    async fn read(channel: &Channel, name: &str) -> Result<Self, lapin::Error> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let name = ShortString::from(name);
        let declared = channel
            .queue_declare(name, passive, FieldTable::default())
            .await?;
        Ok(QueueStat {
            ready: declared.message_count(),
            consumers: declared.consumer_count(),
        })
    }
}

fn not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(e)
        if *e.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

pub(super) struct Link {
    connection: Connection,
    publisher: Channel,
    shards: usize,
    declared: Mutex<HashSet<String>>,
    /// Per queue, its surplus shards' names (see [`Link::surplus`]).
    surplus: Mutex<HashMap<String, Vec<String>>>,
    inboxes: Mutex<HashMap<String, Arc<Inbox>>>,
    /// Per queue, the channel holding this link's place among its replicas.
    members: Mutex<HashMap<String, Channel>>,
    consumers: std::sync::Mutex<Vec<JoinHandle<()>>>,
    broken: Arc<AtomicBool>,
}

impl Link {
    pub(super) async fn open(url: &str, shards: usize) -> Result<Self, BackendError> {
        let properties =
            ConnectionProperties::default().with_connection_name("orders-adapters".into());
        let connection =
            tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties))
                .await
                .map_err(|_| rabbit_err("connect: timed out"))?
                .map_err(|e| rabbit_err(format!("connect: {e}")))?;
        let publisher = connection.create_channel().await.map_err(rabbit_err)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(rabbit_err)?;
        Ok(Link {
            connection,
            publisher,
            shards,
            declared: Mutex::default(),
            surplus: Mutex::default(),
            inboxes: Mutex::default(),
            members: Mutex::default(),
            consumers: std::sync::Mutex::default(),
            broken: Arc::default(),
        })
    }

    pub(super) fn usable(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
            && self.connection.status().connected()
            && self.publisher.status().connected()
    }

    pub(super) fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }

    /// Marks the link broken on error: the next call reconnects.
    fn check<T>(&self, result: Result<T, lapin::Error>) -> Result<T, BackendError> {
        result.map_err(|e| {
            self.mark_broken();
            rabbit_err(e)
        })
    }

    pub(super) async fn channel(&self) -> Result<Channel, BackendError> {
        let channel = self.connection.create_channel().await;
        self.check(channel)
    }

    /// Declares the shards and the dead-letter queue of `queue`, once per connection.
    pub(super) async fn declare(&self, queue: &str) -> Result<(), BackendError> {
        let mut declared = self.declared.lock().await;
        if declared.contains(queue) {
            return Ok(());
        }
        // Its own channel: a refused declaration (other arguments) closes the channel.
        let channel = self.channel().await?;
        let dlq = parking_queue(queue);
        // Classic: a requeued message keeps its place, so listing the DLQ keeps its order.
        channel
            .queue_declare(
                short(&dlq, "queue name")?,
                QueueDeclareOptions::durable(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| rabbit_err(format!("declare {dlq}: {e}")))?;
        for shard in 0..self.shards {
            let name = shard_queue(queue, shard);
            let args = shard_arguments(&dlq, !queue.ends_with(DEAD_LETTER_SUFFIX));
            channel
                .queue_declare(
                    short(&name, "queue name")?,
                    QueueDeclareOptions::durable(),
                    args,
                )
                .await
                .map_err(|e| rabbit_err(format!("declare {name}: {e}")))?;
        }
        let _ = channel.close(200, "declared".into()).await;
        declared.insert(queue.to_owned());
        Ok(())
    }

    /// Publishes to the default exchange and waits for the broker's confirm. `mandatory` turns
    /// a missing queue into a returned message, which is an error too.
    pub(super) async fn publish(
        &self,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), BackendError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let sent = self
            .publisher
            .basic_publish(
                "".into(),
                short(routing_key, "queue name")?,
                options,
                body,
                properties,
            )
            .await;
        let confirmation = self.check(sent)?.await;
        match self.check(confirmation)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(rabbit_err(format!(
                "{routing_key}: returned unroutable ({})",
                returned.reply_text
            ))),
            Confirmation::Nack(_) => Err(rabbit_err(format!(
                "{routing_key}: the broker refused the message"
            ))),
            Confirmation::NotRequested => Err(rabbit_err("publisher confirms are off")),
        }
    }

    /// The inbox of `queue`, starting its shard consumers on first use: at once, or once the
    /// surplus shards of an earlier layout are drained ([`reshard`]).
    pub(super) async fn inbox(self: &Arc<Self>, queue: &str) -> Result<Arc<Inbox>, BackendError> {
        let mut inboxes = self.inboxes.lock().await;
        if let Some(inbox) = inboxes.get(queue) {
            return Ok(Arc::clone(inbox));
        }
        self.declare(queue).await?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let consumers = |names: Vec<String>| -> Vec<_> {
            let consumer = |name| ShardConsumer::new(name, sender.clone());
            names.into_iter().map(consumer).collect()
        };
        let shards = consumers((0..self.shards).map(|s| shard_queue(queue, s)).collect());
        let surplus = self.surplus(queue).await?;
        if surplus.is_empty() {
            self.start(queue, shards).await?;
        } else {
            let surplus = consumers(surplus);
            let drain =
                reshard::drain_then_start(Arc::downgrade(self), queue.to_owned(), surplus, shards);
            self.keep(tokio::spawn(drain));
        }
        let inbox = Arc::new(Inbox {
            deliveries: Mutex::new(receiver),
        });
        inboxes.insert(queue.to_owned(), Arc::clone(&inbox));
        Ok(inbox)
    }

    /// Subscribes to the shards of `queue` and (for a queue with sessions) joins the replicas
    /// that share them.
    pub(super) async fn start(
        self: &Arc<Self>,
        queue: &str,
        shards: Vec<Arc<ShardConsumer>>,
    ) -> Result<(), BackendError> {
        for shard in &shards {
            self.consume(Arc::clone(shard)).await?;
        }
        if !queue.ends_with(DEAD_LETTER_SUFFIX) {
            self.join_members(queue).await?;
            let balancer = balance::keep_fair(Arc::downgrade(self), queue.to_owned(), shards);
            self.keep(tokio::spawn(balancer));
        }
        Ok(())
    }

    /// A task that ends with this link.
    fn keep(&self, task: JoinHandle<()>) {
        self.consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// One channel per shard with [`PREFETCH`] unsettled deliveries, of which the shard's gate
    /// hands out one per session at a time; single-active-consumer makes this the only consumer
    /// across processes until it goes away (or gives the shard back, see [`balance`]).
    pub(super) async fn consume(&self, shard: Arc<ShardConsumer>) -> Result<(), BackendError> {
        let channel = self.channel().await?;
        let qos = channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await;
        self.check(qos)?;
        let consumer = channel
            .basic_consume(
                short(&shard.queue, "queue name")?,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await;
        let mut consumer = self.check(consumer)?;
        shard.subscribed(channel).await;
        let broken = Arc::clone(&self.broken);
        self.keep(tokio::spawn(async move {
            while let Some(next) = consumer.next().await {
                match next {
                    Ok(delivery) => {
                        if !shard.delivered(delivery) {
                            return; // the link is gone
                        }
                    }
                    Err(e) if shard.releasing() => {
                        tracing::debug!(shard = shard.queue, error = %e, "shard given back");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(shard = shard.queue, error = %e, "rabbitmq consumer failed");
                        break;
                    }
                }
            }
            if shard.releasing() {
                return; // its channel was closed on purpose
            }
            // Cancelled by the broker or the connection is gone: rebuild everything.
            broken.store(true, Ordering::Relaxed);
        }));
        Ok(())
    }

    /// Counts this link among the replicas of `queue`: a consumer on its members queue, on a
    /// channel kept for counting them.
    async fn join_members(&self, queue: &str) -> Result<(), BackendError> {
        let channel = self.channel().await?;
        let members = members_queue(queue);
        let options = QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(
                short(&members, "queue name")?,
                options,
                FieldTable::default(),
            )
            .await;
        self.check(declared)?;
        let consumer = channel
            .basic_consume(
                short(&members, "queue name")?,
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let mut consumer = self.check(consumer)?;
        self.members.lock().await.insert(queue.to_owned(), channel);
        // Nothing is ever published there; the stream only ends with the channel.
        self.keep(tokio::spawn(async move {
            while consumer.next().await.is_some() {}
        }));
        Ok(())
    }

    /// Messages ready on the shards of `queue`, surplus shards included (declared first, so a
    /// new queue counts 0).
    pub(super) async fn depth(&self, queue: &str) -> Result<u64, BackendError> {
        self.declare(queue).await?;
        let mut names: Vec<_> = (0..self.shards).map(|s| shard_queue(queue, s)).collect();
        names.extend(self.surplus(queue).await?);
        let stats = self.stats(&names).await?;
        Ok(stats.iter().map(|stat| u64::from(stat.ready)).sum())
    }

    /// What the passive declare of each of `names` tells, in order.
    pub(super) async fn stats(&self, names: &[String]) -> Result<Vec<QueueStat>, BackendError> {
        let channel = self.channel().await?;
        let mut stats = Vec::with_capacity(names.len());
        for name in names {
            let stat = QueueStat::read(&channel, name)
                .await
                .map_err(|e| rabbit_err(format!("{name}: {e}")))?;
            stats.push(stat);
        }
        let _ = channel.close(200, "counted".into()).await;
        Ok(stats)
    }

    /// The shards of `queue` above this link's count, left by a layout with more shards (see
    /// [`reshard`]); probed once per connection, since the broker logs every miss.
    pub(super) async fn surplus(&self, queue: &str) -> Result<Vec<String>, BackendError> {
        let mut surplus = self.surplus.lock().await;
        if let Some(names) = surplus.get(queue) {
            return Ok(names.clone());
        }
        let names = self.probe_surplus(queue).await?;
        surplus.insert(queue.to_owned(), names.clone());
        Ok(names)
    }

    /// Shards are numbered from 0 without gaps, so the first one missing ends them.
    async fn probe_surplus(&self, queue: &str) -> Result<Vec<String>, BackendError> {
        let channel = self.channel().await?;
        let mut found = Vec::new();
        for shard in self.shards.. {
            let name = shard_queue(queue, shard);
            match QueueStat::read(&channel, &name).await {
                Ok(_) => found.push(name),
                // The broker closed the channel with the 404.
                Err(e) if not_found(&e) => return Ok(found),
                Err(e) => {
                    let _ = channel.close(200, "probed".into()).await;
                    return Err(rabbit_err(format!("{name}: {e}")));
                }
            }
        }
        unreachable!("the shard numbers ran out before a missing queue")
    }

    /// How many replicas consume `queue` now, this one included.
    pub(super) async fn replicas(&self, queue: &str) -> Result<usize, BackendError> {
        let members = self.members.lock().await;
        let channel = members
            .get(queue)
            .ok_or_else(|| rabbit_err(format!("{queue}: not a member")))?;
        let options = QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(
                short(&members_queue(queue), "queue name")?,
                options,
                FieldTable::default(),
            )
            .await
            .map_err(rabbit_err)?;
        Ok(declared.consumer_count() as usize)
    }
}

impl Drop for Link {
    /// Stopping the consumers drops their channels, which lets lapin close the connection, so
    /// the broker requeues whatever this link still held.
    fn drop(&mut self) {
        for task in self
            .consumers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// The shard a message of `session` goes to.
pub(super) fn shard_for(
    queue: &str,
    session: Option<&str>,
    message_id: &str,
    shards: usize,
) -> String {
    // Messages without a session have no order to keep: spread them by id.
    shard_queue(
        queue,
        codec::shard_of(session.unwrap_or(message_id), shards),
    )
}
