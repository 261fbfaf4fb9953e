//! `deadletters`: list, show and replay dead-lettered messages on the queue transport the
//! handler's environment selects (the embedded SQLite queue or RabbitMQ); list the orders that
//! FAILED (`OrderFailed` consumed their dead letters) and retry them once the cause is fixed,
//! on any transport, Service Bus included.
//!
//! Exit codes: 0 done, 1 no such dead letter, 2 bad usage or the broker failed (cause printed).

use anyhow::{Context, bail};
use clap::{ArgGroup, Parser, Subcommand};
use orders_adapters::servicebus::ServiceBusPublisher;
use orders_adapters::system_of_record::{SqlSettings, SystemOfRecord};
use orders_core::events::{IntegrationEvent, OrderAccepted};
use orders_core::ports::{DeadLetter, MessagePublisher, OrderStore, QueueTransport};
use orders_functions::Settings;
use orders_functions::config::BrokerSettings;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long opening the broker may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How far `show` looks into the dead-letter store for a message id.
const SCAN_LIMIT: usize = 1_000_000;
/// Reasons longer than this are cut in `list`.
const REASON_WIDTH: usize = 100;

#[derive(Parser)]
#[command(
    name = "deadletters",
    version,
    about = "List, show and replay dead-lettered messages of the Contoso Orders queues; list and retry the orders that FAILED.",
    after_help = "\
Environment (the handler's own):
  DATA_DIR            embedded queue: the directory holding orders.db (default .data)
  QUEUE_TRANSPORT     embedded (default) or rabbitmq; for failed/retry also servicebus
  RABBITMQ_URL        the broker, with QUEUE_TRANSPORT=rabbitmq
  RABBITMQ_SHARDS     shards per queue (default 8; must match the handler's)
  QUEUE_NAMESPACE     prefix of every queue name
  SQL_PROVIDER, SQLSERVER_CONNECTION_STRING, ServiceBusConnection...
                      as the handler's, for failed and retry

Exit codes: 0 done, 1 no such dead letter, 2 bad usage or broker failure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List dead letters, oldest first: message id, session, delivery count, reason.
    List {
        /// Queue name, e.g. order.accepted.
        queue: String,
        /// At most this many dead letters.
        #[arg(long, default_value_t = 50, value_parser = limit_parser())]
        limit: usize,
        /// A JSON array with every field, bodies included.
        #[arg(long)]
        json: bool,
    },
    /// Show every field of one dead letter, the body pretty-printed when it is JSON.
    Show {
        /// Queue name, e.g. order.accepted.
        queue: String,
        /// The dead letter's message id.
        message_id: String,
    },
    /// Orders that FAILED, oldest first: correlation id, owner, when, why.
    Failed {
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = limit_parser())]
        limit: usize,
    },
    /// Send FAILED orders through processing again, once their cause is fixed. Each completes
    /// (and is FAILED no more) or fails anew with the latest reason.
    #[command(
        group(ArgGroup::new("which").required(true).args(["correlation_id", "all"])),
        override_usage = "deadletters retry <CORRELATION_ID>\n       deadletters retry --all [--limit <LIMIT>]"
    )]
    Retry {
        /// The failed order's correlation id (its support reference).
        correlation_id: Option<String>,
        /// Retry every failed order `failed` shows (up to --limit).
        #[arg(long)]
        all: bool,
        /// With --all: at most this many.
        #[arg(long, default_value_t = 50, value_parser = limit_parser(), requires = "all")]
        limit: usize,
    },
    /// Move dead letters back onto their queue with a fresh delivery count.
    #[command(
        group(ArgGroup::new("which").required(true).args(["message_id", "all"])),
        override_usage = "deadletters replay <QUEUE> <MESSAGE_ID>\n       deadletters replay <QUEUE> --all [--limit <LIMIT>]"
    )]
    Replay {
        /// Queue name, e.g. order.accepted.
        queue: String,
        /// The dead letter to replay.
        message_id: Option<String>,
        /// Replay every dead letter `list` shows (up to --limit).
        #[arg(long)]
        all: bool,
        /// With --all: at most this many.
        #[arg(long, default_value_t = 50, value_parser = limit_parser(), requires = "all")]
        limit: usize,
    },
}

fn limit_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=SCAN_LIMIT as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse(); // bad usage exits 2, --help 0
    match run(cli.command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("deadletters: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(false)`: the named dead letter or failed order does not exist.
async fn run(command: Command) -> anyhow::Result<bool> {
    let settings = Settings::from_env().context("bad configuration")?;
    match command {
        Command::Failed { limit } => {
            let failures = open_store(&settings).await?.failures(limit).await?;
            if failures.is_empty() {
                eprintln!("no failed orders");
            }
            for failed in &failures {
                println!(
                    "{}  user={}  failed={}  reason={}",
                    failed.order.correlation_id,
                    failed.order.user_id,
                    failed
                        .failed_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    one_line(&failed.reason, REASON_WIDTH)
                );
            }
            Ok(true)
        }
        Command::Retry {
            correlation_id,
            limit,
            ..
        } => retry(&settings, correlation_id.as_deref(), limit).await,
        queue_command => run_on_queues(&settings, queue_command).await,
    }
}

/// Republishes failed orders to `order.accepted`, one named or up to `limit`, each with a fresh
/// message id (the first is still in Service Bus's duplicate-detection history).
async fn retry(
    settings: &Settings,
    correlation_id: Option<&str>,
    limit: usize,
) -> anyhow::Result<bool> {
    let store = open_store(settings).await?;
    let mut failures = store.failures(SCAN_LIMIT).await?;
    if let Some(wanted) = correlation_id {
        failures.retain(|f| f.order.correlation_id.to_string() == wanted);
        if failures.is_empty() {
            eprintln!("deadletters: no failed order {wanted}");
            return Ok(false);
        }
    }
    failures.truncate(limit);
    if failures.is_empty() {
        eprintln!("no failed orders: nothing to retry");
    }
    let publisher = open_publisher(settings).await?;
    for failed in failures {
        let mut message = failed.order.to_message();
        message.message_id = format!(
            "{}.retry.{}",
            failed.order.correlation_id,
            chrono::Utc::now().timestamp_millis()
        );
        let id = message.message_id.clone();
        publisher
            .publish(OrderAccepted::QUEUE, message)
            .await
            .with_context(|| format!("retrying {}", failed.order.correlation_id))?;
        println!(
            "retried {} ({} message {id})",
            failed.order.correlation_id,
            OrderAccepted::QUEUE
        );
    }
    Ok(true)
}

async fn run_on_queues(settings: &Settings, command: Command) -> anyhow::Result<bool> {
    let broker = open(settings).await?;
    match command {
        Command::List { queue, limit, json } => {
            let letters = broker.dead_letters(&queue, limit).await?;
            if json {
                let all: Vec<_> = letters.iter().map(to_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if letters.is_empty() {
                eprintln!("no dead letters on {queue}");
            } else {
                for dead in &letters {
                    println!(
                        "{}  session={}  deliveries={}  reason={}",
                        dead.message_id,
                        dead.session_id.as_deref().unwrap_or("-"),
                        dead.delivery_count,
                        one_line(&dead.reason, REASON_WIDTH)
                    );
                }
            }
            Ok(true)
        }
        Command::Show { queue, message_id } => {
            let letters = broker.dead_letters(&queue, SCAN_LIMIT).await?;
            let Some(dead) = letters.iter().find(|d| d.message_id == message_id) else {
                eprintln!("deadletters: no dead letter {message_id} on {queue}");
                return Ok(false);
            };
            print!("{}", details(dead));
            Ok(true)
        }
        Command::Replay {
            queue,
            message_id: Some(message_id),
            ..
        } => {
            if !broker.replay_dead_letter(&queue, &message_id).await? {
                eprintln!("deadletters: no dead letter {message_id} on {queue}");
                return Ok(false);
            }
            println!("replayed {message_id} to {queue}");
            Ok(true)
        }
        Command::Replay { queue, limit, .. } => {
            let letters = broker.dead_letters(&queue, limit).await?;
            if letters.is_empty() {
                eprintln!("no dead letters on {queue}: nothing to replay");
            }
            for dead in &letters {
                match broker.replay_dead_letter(&queue, &dead.message_id).await {
                    Ok(true) => println!("replayed {} to {queue}", dead.message_id),
                    // Replayed meanwhile by someone else: nothing left to do for it.
                    Ok(false) => eprintln!("skipped {}: no longer dead-lettered", dead.message_id),
                    Err(err) => {
                        return Err(err).with_context(|| format!("replaying {}", dead.message_id));
                    }
                }
            }
            Ok(true)
        }
        Command::Failed { .. } | Command::Retry { .. } => unreachable!("handled by run"),
    }
}

/// The system of record the handler uses (for an embedded one, the file must exist).
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn OrderStore>> {
    if let SqlSettings::Sqlite = settings.sql {
        embedded_db(settings)?;
    }
    let record = tokio::time::timeout(
        CONNECT_TIMEOUT,
        SystemOfRecord::open(&settings.sql, &settings.data_dir),
    )
    .await
    .map_err(|_| anyhow::anyhow!("cannot open SQL: no answer within {CONNECT_TIMEOUT:?}"))?
    .context("cannot open SQL")?;
    Ok(record.orders)
}

/// Where retried orders go: the handler's broker, Service Bus included.
async fn open_publisher(settings: &Settings) -> anyhow::Result<Arc<dyn MessagePublisher>> {
    match &settings.broker {
        BrokerSettings::ServiceBus(service_bus) => {
            Ok(Arc::new(ServiceBusPublisher::new(service_bus)?))
        }
        _ => Ok(open(settings).await?),
    }
}

/// The embedded database file, which must exist: opening it would create an empty one.
fn embedded_db(settings: &Settings) -> anyhow::Result<std::path::PathBuf> {
    let db = settings.data_dir.join("orders.db");
    if !db.is_file() {
        bail!(
            "no embedded database at {} (set DATA_DIR to the handler's data directory)",
            db.display()
        );
    }
    Ok(db)
}

/// The broker the handler would use, or why it cannot be reached.
async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn QueueTransport>> {
    let what = match &settings.broker {
        BrokerSettings::Embedded => {
            // open_broker would create an empty queue and report nothing dead-lettered.
            let db = embedded_db(settings)?;
            format!("the embedded queue at {}", db.display())
        }
        BrokerSettings::RabbitMq { url, .. } => format!("RabbitMQ at {}", url.url_location()),
        BrokerSettings::ServiceBus(sb) => bail!(
            "Service Bus dead letters are in {}'s $DeadLetterQueue: use Service Bus Explorer \
             in the Azure portal or `az servicebus`",
            sb.namespace
        ),
    };
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        orders_functions::app::open_broker(settings),
    )
    .await
    {
        Ok(opened) => opened.with_context(|| format!("cannot open {what}")),
        Err(_) => bail!("cannot open {what}: no answer within {CONNECT_TIMEOUT:?}"),
    }
}

fn to_json(dead: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "queue": dead.queue,
        "messageId": dead.message_id,
        "sessionId": dead.session_id,
        "deliveryCount": dead.delivery_count,
        "reason": dead.reason,
        "properties": dead.properties,
        "body": dead.body,
    })
}

fn details(dead: &DeadLetter) -> String {
    let body = serde_json::from_str::<serde_json::Value>(&dead.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| dead.body.clone());
    let mut out = format!(
        "queue:          {}\nmessage id:     {}\nsession:        {}\ndelivery count: {}\nreason:         {}\nproperties:\n",
        dead.queue,
        dead.message_id,
        dead.session_id.as_deref().unwrap_or("-"),
        dead.delivery_count,
        dead.reason,
    );
    if dead.properties.is_empty() {
        out.push_str("  (none)\n");
    }
    for (name, value) in &dead.properties {
        out.push_str(&format!("  {name}: {value}\n"));
    }
    out.push_str(&format!("body:\n{body}\n"));
    out
}

/// `text` on one line, cut to `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(width) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
