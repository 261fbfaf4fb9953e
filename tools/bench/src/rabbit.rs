//! `rabbit`: the raw RabbitMQ ceiling under the pipeline, measured with the same client (lapin)
//! and the same durability as intake: a durable quorum queue, persistent messages, publisher
//! confirms, a consumer with manual acks.
//!
//! Two figures, each on a fresh queue with the consumer running from the start:
//!
//! * pipelined: MESSAGES messages with up to IN_FLIGHT unconfirmed at a time; msgs/s from the
//!   first publish to the last message consumed and acked. What a batching publisher could get.
//! * sequential: SEQUENTIAL messages, each published and its confirm awaited before the next.
//!   That is what intake does per order (one publish, one confirm, then the 202), so this is
//!   the ceiling of one closed-loop client; the confirm round trip is reported too.

use crate::{percentile_ms, round3};
use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Delivery mode 2: the broker writes the message to disk before confirming it.
const PERSISTENT: u8 = 2;
/// Bound on each phase, so a stuck broker ends the run instead of hanging it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(clap::Args)]
pub struct RabbitArgs {
    /// AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f.
    #[arg(long)]
    url: String,
    /// Messages in the pipelined run.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Unconfirmed publishes in flight in the pipelined run.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Messages in the sequential-confirm run (publish, await confirm, repeat).
    #[arg(long, default_value_t = 2_000)]
    sequential: usize,
    /// Message body size in bytes (an OrderAccepted with two lines is about this size).
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// Consumer prefetch (unacked deliveries the broker may push ahead).
    #[arg(long, default_value_t = 256)]
    prefetch: u16,
}

/// One phase's figures.
struct Phase {
    messages: usize,
    /// First publish to the last confirm.
    confirmed_seconds: f64,
    /// First publish to the last delivery consumed and acked.
    end_to_end_seconds: f64,
    /// Publish-to-confirm round trips, microseconds (sequential phase only).
    confirm_us: Vec<u64>,
}

impl Phase {
    fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.end_to_end_seconds.max(1e-9)
    }
    fn confirmed_per_s(&self) -> f64 {
        self.messages as f64 / self.confirmed_seconds.max(1e-9)
    }
}

pub async fn rabbit(args: RabbitArgs) -> anyhow::Result<()> {
    if args.messages == 0 || args.sequential == 0 || args.in_flight == 0 || args.prefetch == 0 {
        bail!("--messages, --sequential, --in-flight and --prefetch must be at least 1");
    }
    let payload = vec![b'x'; args.size];
    let pipelined = tokio::time::timeout(
        PHASE_TIMEOUT,
        phase(&args, "pipelined", args.messages, args.in_flight, &payload),
    )
    .await
    .context("the pipelined run timed out")??;
    let sequential = tokio::time::timeout(
        PHASE_TIMEOUT,
        phase(&args, "sequential", args.sequential, 1, &payload),
    )
    .await
    .context("the sequential run timed out")??;

    let mut confirms = sequential.confirm_us.clone();
    confirms.sort_unstable();
    let (c50, c99) = (
        percentile_ms(&confirms, 50.0),
        percentile_ms(&confirms, 99.0),
    );
    println!(
        "RABBIT pipelined messages={} in_flight={} size={}B prefetch={} seconds={:.2} msgs_per_s={:.1} confirmed_per_s={:.1}",
        pipelined.messages,
        args.in_flight,
        args.size,
        args.prefetch,
        pipelined.end_to_end_seconds,
        pipelined.msgs_per_s(),
        pipelined.confirmed_per_s()
    );
    println!(
        "RABBIT sequential-confirm messages={} size={}B seconds={:.2} msgs_per_s={:.1} confirm_p50={:.3}ms confirm_p99={:.3}ms",
        sequential.messages,
        args.size,
        sequential.end_to_end_seconds,
        sequential.msgs_per_s(),
        c50,
        c99
    );
    println!(
        "NOTE durable quorum queue, persistent messages, publisher confirms, manual acks; msgs/s from \
         the first publish to the last message consumed and acked"
    );
    println!(
        "{}",
        serde_json::json!({
            "size_bytes": args.size,
            "prefetch": args.prefetch,
            "pipelined": {
                "messages": pipelined.messages,
                "in_flight": args.in_flight,
                "seconds": round3(pipelined.end_to_end_seconds),
                "msgs_per_s": round3(pipelined.msgs_per_s()),
                "confirmed_per_s": round3(pipelined.confirmed_per_s()),
            },
            "sequential": {
                "messages": sequential.messages,
                "seconds": round3(sequential.end_to_end_seconds),
                "msgs_per_s": round3(sequential.msgs_per_s()),
                "confirm_p50_ms": round3(c50),
                "confirm_p99_ms": round3(c99),
            },
        })
    );
    Ok(())
}

async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(
        Duration::from_secs(10),
        Connection::connect(url, properties),
    )
    .await
    .context("connecting to RabbitMQ timed out")?
    .context("connecting to RabbitMQ")
}

/// One run on a fresh queue: consumer first, then `messages` publishes with up to `in_flight`
/// unconfirmed; the queue is deleted afterwards.
async fn phase(
    args: &RabbitArgs,
    name: &str,
    messages: usize,
    in_flight: usize,
    payload: &[u8],
) -> anyhow::Result<Phase> {
    let queue = format!("orders-bench.{name}.{}", uuid::Uuid::new_v4().simple());
    // Separate connections, as in the system: intake publishes, another process consumes.
    let publisher_conn = connect(&args.url, "orders-bench-publisher").await?;
    let consumer_conn = connect(&args.url, "orders-bench-consumer").await?;

    let publisher = publisher_conn.create_channel().await?;
    let arguments = FieldTable::from(BTreeMap::from([(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    )]));
    publisher
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::durable(),
            arguments,
        )
        .await
        .with_context(|| format!("declaring {queue}"))?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let consumer_channel = consumer_conn.create_channel().await?;
    let consumed = consume(&consumer_channel, &queue, messages, args.prefetch).await?;

    let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let start = Instant::now();
    let mut confirm_us = Vec::new();
    if in_flight == 1 {
        confirm_us.reserve(messages);
        for i in 0..messages {
            let sent = Instant::now();
            let confirm = publish(&publisher, &queue, i, options, payload, &properties).await?;
            check(confirm.await)?;
            confirm_us.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
        }
    } else {
        let mut pending = FuturesUnordered::new();
        for i in 0..messages {
            while pending.len() >= in_flight {
                if let Some(confirmation) = pending.next().await {
                    check(confirmation)?;
                }
            }
            pending.push(publish(&publisher, &queue, i, options, payload, &properties).await?);
        }
        while let Some(confirmation) = pending.next().await {
            check(confirmation)?;
        }
    }
    let confirmed_seconds = start.elapsed().as_secs_f64();
    let last_consumed = consumed.await.context("the consumer task panicked")??;
    let end_to_end_seconds = last_consumed.duration_since(start).as_secs_f64();

    let _ = publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = consumer_conn.close(200, "done".into()).await;
    let _ = publisher_conn.close(200, "done".into()).await;
    Ok(Phase {
        messages,
        confirmed_seconds,
        end_to_end_seconds,
        confirm_us,
    })
}

async fn publish(
    channel: &Channel,
    queue: &str,
    i: usize,
    options: BasicPublishOptions,
    payload: &[u8],
    properties: &BasicProperties,
) -> anyhow::Result<PublisherConfirm> {
    let properties = properties.clone().with_message_id(i.to_string().into());
    channel
        .basic_publish("".into(), queue.into(), options, payload, properties)
        .await
        .context("basic.publish")
}

fn check(confirmation: lapin::Result<Confirmation>) -> anyhow::Result<()> {
    match confirmation.context("awaiting a publisher confirm")? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => bail!("a message was returned unroutable"),
        Confirmation::Nack(_) => bail!("the broker nacked a message"),
        Confirmation::NotRequested => bail!("publisher confirms are off"),
    }
}

/// Consumes (and acks, one by one) `messages` deliveries; resolves to when the last was acked.
async fn consume(
    channel: &Channel,
    queue: &str,
    messages: usize,
    prefetch: u16,
) -> anyhow::Result<JoinHandle<anyhow::Result<Instant>>> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "orders-bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("consuming {queue}"))?;
    Ok(tokio::spawn(async move {
        let mut seen = 0usize;
        while seen < messages {
            let delivery = consumer
                .next()
                .await
                .context("the consumer ended early")?
                .context("consuming")?;
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .context("basic.ack")?;
            seen += 1;
        }
        Ok(Instant::now())
    }))
}
