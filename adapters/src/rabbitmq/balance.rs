//! Spreading a queue's shards fairly over the replicas that consume it.
//!
//! Single active consumer keeps each shard FIFO across processes, but it hands a shard to
//! whichever consumer subscribed first and never moves it while that consumer lives: the first
//! replica to start would take every shard, and a second one would add intake but no processing.
//! So each replica watches how many replicas there are and how many shards it is active on, and
//! gives back what it holds above its fair share (`ceil(shards / replicas)`):
//!
//! - **Replicas** are counted by the broker: each one keeps a consumer on `{queue}.members`, an
//!   auto-delete queue no message is ever published to, whose declare-ok carries the consumer
//!   count. A replica that dies leaves it with its connection.
//! - **Active shards** are those that delivered here recently or have a delivery in hand (the
//!   broker does not tell a consumer that it has become active).
//! - **Giving a shard back** keeps it FIFO: stop handing out its deliveries, wait until those
//!   in hand are settled, then close its channel. The broker requeues what was prefetched, at
//!   the head, and activates the next waiting consumer: another replica. This one subscribes
//!   again a little later, at the back of the line.
//!
//! A replica that dies hands its shards over at once (its waiting peers take them). One that
//! joins gets its share within a few seconds, once the others next look.

use super::link::Link;
use super::shard::ShardConsumer;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// How often a replica compares its active shards with its fair share.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// How long a given-back shard waits before subscribing again (behind the new owner).
const REJOIN_AFTER: Duration = Duration::from_secs(2);

/// Keeps this replica's active shards of `queue` at its fair share, until the link goes.
pub(super) async fn keep_fair(link: Weak<Link>, queue: String, shards: Vec<Arc<ShardConsumer>>) {
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let Some(strong) = link.upgrade() else { return };
        let replicas = match strong.replicas(&queue).await {
            Ok(n) => n.max(1),
            Err(err) => {
                tracing::debug!(queue, error = %err, "could not count the replicas");
                continue;
            }
        };
        drop(strong);
        let fair = shards.len().div_ceil(replicas);
        let now = Instant::now();
        let mut active: Vec<&Arc<ShardConsumer>> =
            shards.iter().filter(|s| s.active(now)).collect();
        if active.len() <= fair {
            continue;
        }
        // Those with nothing in hand go first: they can be handed over at once.
        active.sort_by_key(|s| s.in_flight.load(Ordering::SeqCst));
        tracing::info!(
            queue,
            replicas,
            active = active.len(),
            fair,
            "giving shards back to the other replicas"
        );
        for shard in &active[..active.len() - fair] {
            tokio::spawn(give_back(link.clone(), Arc::clone(shard)));
        }
    }
}

/// Hands `shard` to the next waiting replica once nothing of it is in hand, then queues up again.
async fn give_back(link: Weak<Link>, shard: Arc<ShardConsumer>) {
    shard.set_releasing(true);
    while shard.in_flight.load(Ordering::SeqCst) > 0 {
        if link.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shard.unsubscribe().await;
    tokio::time::sleep(REJOIN_AFTER).await;
    shard.set_releasing(false);
    let Some(link) = link.upgrade() else { return };
    if let Err(err) = link.consume(Arc::clone(&shard)).await {
        tracing::warn!(shard = shard.queue, error = %err, "could not subscribe to the shard again");
        link.mark_broken();
    }
}
