//! Listing and replaying the dead letters of a queue `q`: those waiting in its dead-letter
//! subqueue `q/$deadletterqueue` (every shard), those parked in the subqueue's `.dlq`, and
//! those the broker moved to `q.dlq` (its delivery limit). Each is read with `basic_get` on a
//! private channel; closing that channel puts back what was not taken, where it was.

use super::codec;
use super::link::{Link, parking_queue, shard_for, shard_queue};
use super::rabbit_err;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Channel, types::ShortString};
use orders_core::ports::{
    BackendError, DEAD_LETTER_DESCRIPTION, DEAD_LETTER_REASON, DeadLetter, dead_letter_queue,
};

/// Every queue a dead letter of `queue` can be in, oldest kind first (the subqueue's surplus
/// shards included, see [`super::reshard`]).
async fn holding_queues(
    link: &Link,
    queue: &str,
    shards: usize,
) -> Result<Vec<String>, BackendError> {
    let dlq = dead_letter_queue(queue);
    let mut names: Vec<String> = (0..shards).map(|s| shard_queue(&dlq, s)).collect();
    names.extend(link.surplus(&dlq).await?);
    names.push(parking_queue(&dlq));
    names.push(parking_queue(queue));
    Ok(names)
}

/// Declares what `holding_queues` names, so reading an unused queue is no channel error.
async fn declare(link: &Link, queue: &str) -> Result<(), BackendError> {
    link.declare(queue).await?;
    link.declare(&dead_letter_queue(queue)).await
}

/// The next message of `name`, unacknowledged (so it returns when `channel` closes).
async fn next(channel: &Channel, name: &str) -> Result<Option<AmqpDelivery>, BackendError> {
    let name: ShortString = codec::short(name, "queue name")?;
    let got = channel
        .basic_get(name, BasicGetOptions { no_ack: false })
        .await
        .map_err(rabbit_err)?;
    Ok(got.map(|m| m.delivery))
}

pub(super) async fn list(
    link: &Link,
    queue: &str,
    limit: usize,
    shards: usize,
) -> Result<Vec<DeadLetter>, BackendError> {
    declare(link, queue).await?;
    let holding = holding_queues(link, queue, shards).await?;
    let channel = link.channel().await?;
    let mut found = Vec::new();
    'queues: for name in holding {
        while found.len() < limit {
            let Some(delivery) = next(&channel, &name).await? else {
                continue 'queues;
            };
            found.push(codec::dead_letter(queue, &delivery));
        }
        break;
    }
    let _ = channel.close(200, "listed".into()).await;
    Ok(found)
}

/// Publishes the dead letter `message_id` to its queue again (without the dead-letter
/// properties), then removes it from where it was. A crash in between leaves it in both:
/// delivery is at-least-once.
pub(super) async fn replay(
    link: &Link,
    queue: &str,
    message_id: &str,
    shards: usize,
) -> Result<bool, BackendError> {
    declare(link, queue).await?;
    let holding = holding_queues(link, queue, shards).await?;
    let channel = link.channel().await?;
    let result = async {
        for name in holding {
            while let Some(delivery) = next(&channel, &name).await? {
                let dead = codec::dead_letter(queue, &delivery);
                if dead.message_id != message_id {
                    continue;
                }
                let mut message = codec::outbound(&delivery);
                message.message_id = dead.message_id;
                message.properties.remove(DEAD_LETTER_REASON);
                message.properties.remove(DEAD_LETTER_DESCRIPTION);
                let target = shard_for(
                    queue,
                    message.session_id.as_deref(),
                    &message.message_id,
                    shards,
                );
                link.publish(
                    &target,
                    message.body.as_bytes(),
                    codec::properties(&message, vec![])?,
                )
                .await?;
                delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(rabbit_err)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
    .await;
    let _ = channel.close(200, "replayed".into()).await;
    result
}
