//! Fewer shards than the broker holds. After `RABBITMQ_SHARDS` is lowered, the shards above the
//! new count (the surplus) may still hold messages that no publisher sends there any more. Each
//! replica drains them before it subscribes to its regular shards, so nothing is stranded.
//!
//! Order: a session hashed to old shard `k` of `M` goes to new shard `k % N` when `N` divides
//! `M` (32 to 8, say), and that shard's newer messages wait until the surplus is drained. With
//! an `N` that does not divide `M`, a session with messages in flight can be taken out of order
//! once; so does raising the count, which needs no drain (every old shard is still consumed).
//!
//! The surplus is drained once every surplus shard has no message ready and no consumer: an
//! unsettled delivery keeps its consumer, so then none of the old layout's messages is left,
//! not even in hand. So each replica subscribes to a surplus shard while it has messages ready
//! (single active consumer gives it to one of them) and unsubscribes once none is ready and it
//! holds none of its deliveries. Surplus shards are not deleted: quorum queues do not support
//! `if-empty` (rabbitmq/rabbitmq-server `deps/rabbit/src/rabbit_quorum_queue.erl` at `84d546f8`,
//! `delete/4` refuses it as `not_implemented`), so a delete could drop what a publisher still on
//! the old count sends; a later start finds them empty and goes straight on.

use super::link::{Link, QueueStat};
use super::shard::ShardConsumer;
use orders_core::ports::BackendError;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the surplus shards' counts are read while draining.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Drains `surplus`, then starts the regular `shards` of `queue`; a broker error breaks the link
/// (its replacement probes again).
pub(super) async fn drain_then_start(
    link: Weak<Link>,
    queue: String,
    surplus: Vec<Arc<ShardConsumer>>,
    shards: Vec<Arc<ShardConsumer>>,
) {
    tracing::info!(
        queue,
        surplus = surplus.len(),
        "draining the shards above RABBITMQ_SHARDS first"
    );
    let started = loop {
        let Some(strong) = link.upgrade() else { return };
        match step(&strong, &surplus).await {
            Ok(false) => {}
            Ok(true) => break strong.start(&queue, shards).await,
            Err(err) => break Err(err),
        }
        drop(strong);
        tokio::time::sleep(LOOK_EVERY).await;
    };
    match started {
        Ok(()) => tracing::info!(
            queue,
            "surplus shards drained; consuming the regular shards"
        ),
        Err(err) => {
            tracing::warn!(queue, error = %err, "could not drain the surplus shards");
            if let Some(link) = link.upgrade() {
                link.mark_broken();
            }
        }
    }
}

/// Subscribes to or leaves each surplus shard as its count says; true once all are drained.
async fn step(link: &Link, surplus: &[Arc<ShardConsumer>]) -> Result<bool, BackendError> {
    let names: Vec<String> = surplus.iter().map(|s| s.queue.clone()).collect();
    let stats = link.stats(&names).await?;
    let mut drained = true;
    for (shard, stat) in surplus.iter().zip(stats) {
        follow(link, shard, stat).await?;
        drained &= stat.ready == 0 && stat.consumers == 0;
    }
    Ok(drained)
}

async fn follow(
    link: &Link,
    shard: &Arc<ShardConsumer>,
    stat: QueueStat,
) -> Result<(), BackendError> {
    let subscribed = shard.is_subscribed().await;
    if stat.ready > 0 && !subscribed {
        shard.set_releasing(false);
        return link.consume(Arc::clone(shard)).await;
    }
    if stat.ready == 0 && subscribed {
        // Stop handing out first, so that nothing is taken between the check and the close.
        shard.set_releasing(true);
        if shard.idle() {
            shard.unsubscribe().await;
        } else {
            shard.set_releasing(false);
        }
    }
    Ok(())
}
