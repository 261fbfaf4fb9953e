//! `deadletters`: list, show and replay dead-lettered messages on the queue transport the
//! handler's environment selects (the embedded SQLite queue or RabbitMQ).
//!
//! Exit codes: 0 done, 1 no such dead letter, 2 bad usage or the broker failed (cause printed).

use anyhow::{Context, bail};
use clap::{ArgGroup, Parser, Subcommand};
use orders_core::ports::{DeadLetter, QueueTransport};
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
    about = "List, show and replay dead-lettered messages of the Contoso Orders queues.",
    after_help = "\
Environment (the handler's own):
  DATA_DIR            embedded queue: the directory holding orders.db (default .data)
  QUEUE_TRANSPORT     embedded (default) or rabbitmq
  RABBITMQ_URL        the broker, with QUEUE_TRANSPORT=rabbitmq
  RABBITMQ_SHARDS     shards per queue (default 8; must match the handler's)
  QUEUE_NAMESPACE     prefix of every queue name

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

/// `Ok(false)`: the named dead letter does not exist.
async fn run(command: Command) -> anyhow::Result<bool> {
    let settings = Settings::from_env().context("bad configuration")?;
    let broker = open(&settings).await?;
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
    }
}

/// The broker the handler would use, or why it cannot be reached.
async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn QueueTransport>> {
    let what = match &settings.broker {
        BrokerSettings::Embedded => {
            let db = settings.data_dir.join("orders.db");
            // open_broker would create an empty queue and report nothing dead-lettered.
            if !db.is_file() {
                bail!(
                    "no embedded queue at {} (set DATA_DIR to the handler's data directory)",
                    db.display()
                );
            }
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
