//! The dead-letter queue `{queue}.dlq`: listing and replay read it with `basic.get` on a
//! private channel and close that channel to put back what they did not take. The DLQ is a
//! classic queue, where a message put back keeps its place, so the list stays oldest first.

use super::codec;
use super::link::{Link, dead_letter_queue, shard_for};
use super::rabbit_err;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Channel, types::ShortString};
use orders_core::ports::{BackendError, DeadLetter};

/// The next message of the DLQ, unacknowledged (so it returns when `channel` closes).
async fn next(channel: &Channel, dlq: &ShortString) -> Result<Option<AmqpDelivery>, BackendError> {
    let got = channel
        .basic_get(dlq.clone(), BasicGetOptions { no_ack: false })
        .await
        .map_err(rabbit_err)?;
    Ok(got.map(|m| m.delivery))
}

pub(super) async fn list(
    link: &Link,
    queue: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, BackendError> {
    link.declare(queue).await?;
    let dlq = codec::short(&dead_letter_queue(queue), "queue name")?;
    let channel = link.channel().await?;
    let mut found = Vec::new();
    while found.len() < limit {
        let Some(delivery) = next(&channel, &dlq).await? else {
            break;
        };
        found.push(codec::dead_letter(queue, &delivery));
    }
    let _ = channel.close(200, "listed".into()).await;
    Ok(found)
}

/// Publishes the dead letter `message_id` to its queue again, then removes it from the DLQ.
/// A crash in between leaves it in both: delivery is at-least-once.
pub(super) async fn replay(
    link: &Link,
    queue: &str,
    message_id: &str,
    shards: usize,
) -> Result<bool, BackendError> {
    link.declare(queue).await?;
    let dlq = codec::short(&dead_letter_queue(queue), "queue name")?;
    let channel = link.channel().await?;
    let result = async {
        while let Some(delivery) = next(&channel, &dlq).await? {
            let dead = codec::dead_letter(queue, &delivery);
            if dead.message_id != message_id {
                continue;
            }
            let mut message = codec::outbound(&delivery);
            message.message_id = dead.message_id;
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
        Ok(false)
    }
    .await;
    let _ = channel.close(200, "replayed".into()).await;
    result
}
