//! `orders-bench`: measures `POST /api/orders` against a trivial axum baseline, the whole order
//! pipeline, and the raw RabbitMQ ceiling under it.
//!
//! Subcommands:
//!
//! * `trivial --port P` serves a `POST /api/orders` with the same answer shape as the real intake
//!   (202, `{correlationId,status,statusUrl}`, `Location`) after reading the JSON body under the
//!   same 64 KiB limit, but with no validation, auth, state or queue. It is the ceiling that axum,
//!   hyper and the loopback give on this machine.
//! * `load --url URL ...` is a closed-loop load generator: N tasks, each sending its next request
//!   as soon as the previous answer is read, over N keep-alive HTTP/1.1 connections. Run against
//!   both targets with the same arguments, the ratio of the two results is the cost of the real
//!   endpoint over the bare framework. With `--rate R` it is paced instead: R requests/s spread
//!   over the tasks, each latency counted from when its request was due.
//! * `pipeline --urls URL1[,URL2] --data-dir DIR ...` drives the running system (one or more
//!   replicas) and measures orders/s and latency from `POST` to the persisted row (`pipeline.rs`).
//! * `rabbit --url AMQP_URL` measures raw publish/consume on a durable quorum queue with
//!   publisher confirms, pipelined and one confirm at a time (`rabbit.rs`).
//!
//! The load generator runs in its own process, the same binary for both targets, so whatever it
//! costs is the same in both measurements. On a small machine (2 cores here) it competes with
//! the server under test for CPU; that competition is equal for both targets, so the ratio stays
//! fair, but neither absolute figure is what a server alone on the machine would reach.

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::{Parser, Subcommand};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod pipeline;
mod push;
mod rabbit;
mod sqlite;

/// The same limit as the real API (`functions/src/extract.rs`).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A valid two-line order against the shipped catalog.
const ORDER_BODY: &str =
    r#"{"items":[{"productId":"AZ-104","quantity":1},{"productId":"SAA-C03","quantity":2}]}"#;

#[derive(Parser)]
#[command(
    name = "orders-bench",
    about = "Benchmark POST /api/orders against a trivial axum endpoint"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a trivial POST /api/orders (same answer shape, no work) on 127.0.0.1:PORT.
    Trivial {
        #[arg(long)]
        port: u16,
    },
    /// Closed-loop load: CONNECTIONS tasks POSTing an order in a loop for WARMUP + DURATION seconds.
    Load(LoadArgs),
    /// The whole pipeline: closed-loop POSTs over users and replicas, then accept->persisted
    /// orders/s and latency from the SQLite orders table.
    Pipeline(pipeline::PipelineArgs),
    /// Raw RabbitMQ ceiling: durable quorum queue, persistent messages, publisher confirms.
    Rabbit(rabbit::RabbitArgs),
    /// Raw SQLite ceiling: inserts into a fresh file with the embedded store's pragmas.
    Sqlite(sqlite::SqliteArgs),
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The full URL to POST to, e.g. http://127.0.0.1:7071/api/orders.
    #[arg(long)]
    url: String,
    /// Bearer token sent as `Authorization: Bearer TOKEN`.
    #[arg(long)]
    token: Option<String>,
    /// Concurrent requests in flight (one task and one keep-alive connection each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring starts (answers then are not recorded).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Requests per second, 0 for a closed loop. Paced, request k is due at start + k/rate and
    /// its latency counts from then, so a stall is not hidden by the requests it delayed.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Trivial { port } => trivial(port).await,
        Command::Load(args) => load(args).await,
        Command::Pipeline(args) => pipeline::pipeline(args).await,
        Command::Rabbit(args) => rabbit::rabbit(args).await,
        Command::Sqlite(args) => sqlite::sqlite(args),
    }
}

// ---------------------------------------------------------------------------------------------
// trivial

async fn trivial(port: u16) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/api/orders", post(accept))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    eprintln!("trivial POST /api/orders on http://{addr}/api/orders");
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}

/// Reads (and parses) the JSON body, then answers like the real intake does.
async fn accept(axum::Json(_body): axum::Json<serde_json::Value>) -> Response {
    let id = uuid::Uuid::new_v4();
    let status_url = format!("/api/orders/{id}");
    let body = serde_json::json!({
        "correlationId": id.to_string(),
        "status": "ACCEPTED",
        "statusUrl": status_url,
    })
    .to_string();
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// load

/// What one task saw inside the measured window.
#[derive(Default)]
struct TaskResult {
    /// Latency of each 2xx answer, in microseconds.
    latencies_us: Vec<u64>,
    /// Non-2xx answers by status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connect/reset/timeout/body read failure).
    transport_errors: u64,
    /// The first transport error's text, to tell what went wrong.
    first_transport_error: Option<String>,
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a number of requests per second, 0 for a closed loop");
    }
    let pace = (args.rate > 0.0).then_some(args.rate);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.connections)
        .pool_idle_timeout(None)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let auth = args.token.as_ref().map(|t| format!("Bearer {t}"));

    // Closed loop: a request is sent as soon as the task's previous answer is read. An answer is
    // recorded when it *completes* inside [measure_from, measure_until); throughput is then the
    // completions in the window divided by its length, which holds for a closed loop whatever
    // the latency. Answers completing during warm-up or after the window are not recorded.
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let measure_until = measure_from + Duration::from_secs(args.duration);

    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let client = client.clone();
        let url = args.url.clone();
        let auth = auth.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult::default();
            loop {
                let sent = match pace {
                    Some(rate) => due(start, next.fetch_add(1, Ordering::Relaxed), rate),
                    None => Instant::now(),
                };
                if sent >= measure_until {
                    break;
                }
                if pace.is_some() {
                    tokio::time::sleep_until(sent.into()).await;
                }
                let mut request = client
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(ORDER_BODY);
                if let Some(auth) = &auth {
                    request = request.header(header::AUTHORIZATION, auth);
                }
                // The whole body is read so the connection goes back to the pool for reuse.
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.map(|_| status)
                    }
                    Err(e) => Err(e),
                };
                let done = Instant::now();
                if done < measure_from || done >= measure_until {
                    continue;
                }
                match outcome {
                    Ok(status) if status.is_success() => {
                        let us = u64::try_from(done.duration_since(sent).as_micros())
                            .unwrap_or(u64::MAX);
                        result.latencies_us.push(us);
                    }
                    Ok(status) => *result.statuses.entry(status.as_u16()).or_default() += 1,
                    Err(e) => {
                        result.transport_errors += 1;
                        if result.first_transport_error.is_none() {
                            result.first_transport_error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            result
        }));
    }

    let mut latencies: Vec<u64> = Vec::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut transport_errors = 0u64;
    let mut first_transport_error = None;
    for task in tasks {
        let r = task.await.context("a load task panicked")?;
        latencies.extend(r.latencies_us);
        for (code, n) in r.statuses {
            *statuses.entry(code).or_default() += n;
        }
        transport_errors += r.transport_errors;
        if first_transport_error.is_none() {
            first_transport_error = r.first_transport_error;
        }
    }
    latencies.sort_unstable();

    let seconds = args.duration as f64;
    let requests = latencies.len() as u64;
    let errors = statuses.values().sum::<u64>() + transport_errors;
    let rps = requests as f64 / seconds;
    let p50 = percentile_ms(&latencies, 50.0);
    let p90 = percentile_ms(&latencies, 90.0);
    let p99 = percentile_ms(&latencies, 99.0);
    let max = latencies.last().map_or(0.0, |&us| us as f64 / 1000.0);

    println!(
        "RESULT url={} connections={} rate={} seconds={:.1} requests={} errors={} rps={:.1} \
         p50={:.3}ms p90={:.3}ms p99={:.3}ms max={:.3}ms",
        args.url,
        args.connections,
        pace.map_or("closed-loop".to_owned(), |r| r.to_string()),
        seconds,
        requests,
        errors,
        rps,
        p50,
        p90,
        p99,
        max
    );
    if errors > 0 {
        let mut parts: Vec<String> = statuses
            .iter()
            .map(|(code, n)| format!("HTTP {code}: {n}"))
            .collect();
        if transport_errors > 0 {
            parts.push(format!(
                "transport: {transport_errors} (first: {})",
                first_transport_error.as_deref().unwrap_or("?")
            ));
        }
        println!("ERRORS {}", parts.join(", "));
    }
    // Only 2xx answers count as requests and go into the percentiles; everything else is in
    // `errors` (non-2xx answers and requests with no answer).
    println!(
        "{}",
        serde_json::json!({
            "url": args.url,
            "connections": args.connections,
            "rate": pace,
            "seconds": seconds,
            "requests": requests,
            "errors": errors,
            "rps": round3(rps),
            "p50_ms": round3(p50),
            "p90_ms": round3(p90),
            "p99_ms": round3(p99),
            "max_ms": round3(max),
        })
    );
    Ok(())
}

/// When request `k` of a load paced at `rate` requests/s, started at `start`, is due.
fn due(start: Instant, k: usize, rate: f64) -> Instant {
    start + Duration::from_secs_f64(k as f64 / rate)
}

/// Nearest-rank percentile of sorted microsecond latencies, in milliseconds (0 when empty).
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us[index] as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert_eq!(percentile_ms(&[7000], 50.0), 7.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn order_body_is_valid_json() {
        let v: serde_json::Value = serde_json::from_str(ORDER_BODY).unwrap();
        assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    }
}
