//! `pipeline`: the whole order journey, from `POST /api/orders` to the persisted row.
//!
//! Closed-loop load (like `load`) spread over USERS users and over one or more replicas, then a
//! bounded wait until every accepted order is in the SQLite `orders` table, then the figures
//! come from the rows themselves: `created_at` is stamped by intake when it accepts the order
//! (before the publish), `completed_at` inside the persist transaction (the COMPLETED status is
//! written right after its commit). So the latency is accept -> persisted, per order, with the
//! millisecond resolution of those columns, and the sustained throughput is the completed
//! orders over the span from the first accept to the last persist, drain included.

use crate::{ORDER_BODY, due, percentile_ms, push, round3};
use anyhow::{Context, bail};
use axum::http::header;
use chrono::DateTime;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

#[derive(clap::Args)]
pub struct PipelineArgs {
    /// Base URLs of the replicas, comma separated, e.g. http://127.0.0.1:7071,http://127.0.0.1:7072.
    #[arg(long, value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// Distinct users (one dev token each); requests go to them round robin.
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Concurrent requests in flight (one task each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The DATA_DIR shared by the replicas: `orders.db` there is read (read-only).
    #[arg(long)]
    data_dir: PathBuf,
    /// Longest wait, after the load stops, for every accepted order to be persisted.
    #[arg(long, default_value_t = 120)]
    drain_timeout: u64,
    /// Cap on the offered load, orders/s over all connections (0: unpaced closed loop). Paced
    /// below the pipeline's capacity, the latency is the pipeline's own rather than the time
    /// spent in a growing backlog.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// The hub (`ws://…/hubs/order-status`): one client per user listens, and the figures add
    /// POST -> COMPLETED pushed to that client, per order.
    #[arg(long)]
    hub: Option<String>,
    /// A name for this run in the output (e.g. `embedded`, `servers`).
    #[arg(long, default_value = "pipeline")]
    label: String,
}

/// What one load task saw.
#[derive(Default)]
struct TaskResult {
    /// HTTP latency of each 202, in microseconds.
    accepted_us: Vec<u64>,
    /// Each accepted order's correlation id and when its POST was sent.
    sent: Vec<(String, Instant)>,
    /// Answers other than 202, by status code.
    statuses: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_transport_error: Option<String>,
    /// The body of the first non-202 answer, to tell what went wrong.
    first_error_body: Option<String>,
}

/// The accept/persist times of this run's orders, from the store.
struct Rows {
    /// Per order, completed_at - created_at, in microseconds (ms resolution).
    latencies_us: Vec<u64>,
    /// Seconds from the first created_at to the last completed_at.
    span_seconds: f64,
}

pub async fn pipeline(args: PipelineArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.users == 0 || args.duration == 0 {
        bail!("--connections, --users and --duration must be at least 1");
    }
    if !(args.rate >= 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a number of orders per second, 0 for unpaced");
    }
    let pace = (args.rate > 0.0).then_some(args.rate);
    let bases: Vec<String> = args
        .urls
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if bases.is_empty() {
        bail!("--urls names no URL");
    }
    let db_path = args.data_dir.join("orders.db");
    if !db_path.is_file() {
        bail!(
            "{} does not exist: is DATA_DIR the replicas' one?",
            db_path.display()
        );
    }
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(args.connections)
        .pool_idle_timeout(None)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;

    // Users unique to this run, so the rows counted are this run's only.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let user_prefix = format!("bench-{}-", &run[..12]);
    let mut tokens = Vec::with_capacity(args.users);
    for i in 0..args.users {
        let base = &bases[i % bases.len()];
        tokens.push(dev_token(&client, base, &format!("{user_prefix}{i}")).await?);
    }
    let listening = match &args.hub {
        Some(hub) => Some(push::listen(hub, &tokens).await?),
        None => None,
    };
    let auths = Arc::new(
        tokens
            .iter()
            .map(|t| format!("Bearer {t}"))
            .collect::<Vec<_>>(),
    );
    let urls: Arc<Vec<String>> =
        Arc::new(bases.iter().map(|b| format!("{b}/api/orders")).collect());

    // Closed loop over the whole duration, no warm-up: the figures come from the rows, and the
    // start-up of the pipeline is part of what is measured. With --rate, request k is also not
    // sent before start + k/rate.
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let client = client.clone();
        let (urls, auths, next) = (Arc::clone(&urls), Arc::clone(&auths), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult::default();
            while Instant::now() < until {
                // Request k goes to replica k mod R and, for each replica, to the users in turn.
                let k = next.fetch_add(1, Ordering::Relaxed);
                if let Some(rate) = pace {
                    let at = due(start, k, rate);
                    if at >= until {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                let url = &urls[k % urls.len()];
                let auth = &auths[(k / urls.len()) % auths.len()];
                let sent = Instant::now();
                let outcome = match client
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::AUTHORIZATION, auth)
                    .body(ORDER_BODY)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.map(|body| (status, body))
                    }
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok((status, body)) if status.as_u16() == 202 => {
                        let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        result.accepted_us.push(us);
                        let answer: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        if let Some(cid) = answer["correlationId"].as_str() {
                            result.sent.push((cid.to_owned(), sent));
                        }
                    }
                    Ok((status, body)) => {
                        *result.statuses.entry(status.as_u16()).or_default() += 1;
                        if result.first_error_body.is_none() {
                            let text = String::from_utf8_lossy(&body);
                            result.first_error_body = Some(format!(
                                "HTTP {status}: {}",
                                text.chars().take(300).collect::<String>()
                            ));
                        }
                    }
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

    let mut http_us: Vec<u64> = Vec::new();
    let mut sent: Vec<(String, Instant)> = Vec::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut transport_errors = 0u64;
    let mut first_transport_error = None;
    let mut first_error_body = None;
    for task in tasks {
        let r = task.await.context("a load task panicked")?;
        http_us.extend(r.accepted_us);
        sent.extend(r.sent);
        for (code, n) in r.statuses {
            *statuses.entry(code).or_default() += n;
        }
        transport_errors += r.transport_errors;
        first_transport_error = first_transport_error.or(r.first_transport_error);
        first_error_body = first_error_body.or(r.first_error_body);
    }
    let load_seconds = start.elapsed().as_secs_f64();
    http_us.sort_unstable();
    let accepted = http_us.len() as u64;
    let errors = statuses.values().sum::<u64>() + transport_errors;

    // Drain: wait until the store holds every accepted order (more is possible: a request that
    // timed out here may still have been accepted).
    let drain_timeout = Duration::from_secs(args.drain_timeout);
    let (persisted_at_stop, persisted, drain_seconds, rows) = {
        let db_path = db_path.clone();
        let user_prefix = user_prefix.clone();
        tokio::task::spawn_blocking(move || drain(&db_path, &user_prefix, accepted, drain_timeout))
            .await
            .context("the drain task panicked")??
    };
    let complete = persisted >= accepted;

    let mut latencies = rows.latencies_us;
    latencies.sort_unstable();
    let completed = latencies.len() as u64;
    let orders_per_s = if rows.span_seconds > 0.0 {
        completed as f64 / rows.span_seconds
    } else {
        0.0
    };
    let intake_rps = accepted as f64 / load_seconds;
    let (p50, p90, p99) = (
        percentile_ms(&latencies, 50.0),
        percentile_ms(&latencies, 90.0),
        percentile_ms(&latencies, 99.0),
    );
    let max = latencies.last().map_or(0.0, |&us| us as f64 / 1000.0);
    let (http_p50, http_p99) = (percentile_ms(&http_us, 50.0), percentile_ms(&http_us, 99.0));
    let backlog_at_stop = accepted.saturating_sub(persisted_at_stop);
    let pushed = match listening {
        Some((pushes, listeners)) => {
            let pushed = push_latencies(&pushes, &sent).await;
            listeners.iter().for_each(JoinHandle::abort);
            Some(pushed)
        }
        None => None,
    };
    let push_figures = pushed.as_ref().map(|(latencies, missing)| {
        serde_json::json!({
            "pushed": latencies.len(),
            "missing": missing,
            "p50_ms": round3(percentile_ms(latencies, 50.0)),
            "p99_ms": round3(percentile_ms(latencies, 99.0)),
        })
    });

    println!(
        "PIPELINE label={} urls={} users={} connections={} rate={} load_seconds={:.1} accepted={} errors={} \
         intake_rps={:.1} completed={} span_seconds={:.2} orders_per_s={:.1} \
         p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms backlog_at_stop={} drain_seconds={:.2} \
         http_p50={:.1}ms http_p99={:.1}ms complete={}",
        args.label,
        bases.join(","),
        args.users,
        args.connections,
        pace.map_or_else(|| "unpaced".to_owned(), |r| format!("{r}/s")),
        load_seconds,
        accepted,
        errors,
        intake_rps,
        completed,
        rows.span_seconds,
        orders_per_s,
        p50,
        p90,
        p99,
        max,
        backlog_at_stop,
        drain_seconds,
        http_p50,
        http_p99,
        complete
    );
    println!(
        "NOTE latency is accept->persisted: orders.created_at (intake's accept time, stamped \
         before the publish) to orders.completed_at (the persist time; the COMPLETED status is \
         written right after that commit), ms resolution; orders/s = completed / (last \
         completed_at - first created_at), drain included"
    );
    if let Some(push) = &push_figures {
        println!(
            "PUSH POST sent -> COMPLETED received by the user's hub client: pushed={} missing={} p50={}ms p99={}ms",
            push["pushed"], push["missing"], push["p50_ms"], push["p99_ms"]
        );
    }
    if backlog_at_stop > completed / 10 {
        println!(
            "NOTE the intake outran the processing: {backlog_at_stop} accepted orders were still \
             queued when the load stopped, so the latency is mostly time spent in that backlog \
             and grows with --duration; pace the load below orders_per_s (--rate) for the \
             pipeline's own latency"
        );
    }
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
        if let Some(body) = first_error_body {
            println!("FIRST-ERROR {body}");
        }
    }
    if !complete {
        println!(
            "WARNING only {persisted} of {accepted} accepted orders were persisted within {} s; \
             the figures cover those",
            args.drain_timeout
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "label": args.label,
            "urls": bases,
            "users": args.users,
            "connections": args.connections,
            "rate": pace,
            "load_seconds": round3(load_seconds),
            "accepted": accepted,
            "errors": errors,
            "errors_by_status": statuses.iter().map(|(c, n)| (c.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "transport_errors": transport_errors,
            "intake_rps": round3(intake_rps),
            "completed": completed,
            "span_seconds": round3(rows.span_seconds),
            "orders_per_s": round3(orders_per_s),
            "p50_ms": round3(p50),
            "p90_ms": round3(p90),
            "p99_ms": round3(p99),
            "max_ms": round3(max),
            "backlog_at_stop": backlog_at_stop,
            "drain_seconds": round3(drain_seconds),
            "http_p50_ms": round3(http_p50),
            "http_p99_ms": round3(http_p99),
            "complete": complete,
            "latency": "accept->persisted",
            "push": push_figures,
        })
    );
    Ok(())
}

/// Per accepted order, POST sent -> COMPLETED pushed, in microseconds (sorted); and how many
/// never came. The notifier may still be draining its own queue after the last persist, so
/// this waits for as long as pushes keep arriving, and gives up after 10 s without one.
async fn push_latencies(pushes: &push::Pushes, sent: &[(String, Instant)]) -> (Vec<u64>, usize) {
    let waiting = || {
        sent.iter()
            .filter(|(cid, _)| pushes.arrived(cid).is_none())
            .count()
    };
    let (mut left, mut progress) = (waiting(), Instant::now());
    while left > 0 && progress.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now_left = waiting();
        if now_left < left {
            progress = Instant::now();
        }
        left = now_left;
    }
    let mut latencies: Vec<u64> = sent
        .iter()
        .filter_map(|(cid, at)| {
            pushes
                .arrived(cid)
                .map(|arrived| arrived.saturating_duration_since(*at))
        })
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .collect();
    latencies.sort_unstable();
    let missing = sent.len() - latencies.len();
    (latencies, missing)
}

async fn dev_token(client: &reqwest::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{base}/dev/token"))
        .json(&serde_json::json!({ "userId": user }))
        .send()
        .await
        .with_context(|| format!("POST {base}/dev/token"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("POST {base}/dev/token answered {status} (is AUTH_MODE=dev?)");
    }
    let body: serde_json::Value = response.json().await.context("the dev token answer")?;
    body["accessToken"]
        .as_str()
        .map(str::to_owned)
        .context("no accessToken in the dev token answer")
}

/// Polls the store until it holds `accepted` orders of this run's users or `timeout` passes.
/// Returns (persisted when the load stopped, persisted at the end, seconds waited, the rows).
fn drain(
    db_path: &Path,
    user_prefix: &str,
    accepted: u64,
    timeout: Duration,
) -> anyhow::Result<(u64, u64, f64, Rows)> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", db_path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let pattern = format!("{user_prefix}%");
    let count = || -> anyhow::Result<u64> {
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id
                 WHERE c.external_id LIKE ?1 AND o.completed_at IS NOT NULL",
                [&pattern],
                |r| r.get(0),
            )
            .context("counting persisted orders")?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    let started = Instant::now();
    let at_stop = count()?;
    let mut persisted = at_stop;
    while persisted < accepted && started.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(100));
        persisted = count()?;
    }
    let waited = started.elapsed().as_secs_f64();

    let mut statement = conn.prepare(
        "SELECT o.created_at, o.completed_at FROM orders o JOIN customers c ON c.id = o.customer_id
         WHERE c.external_id LIKE ?1 AND o.completed_at IS NOT NULL",
    )?;
    let pairs = statement
        .query_map([&pattern], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
        .context("reading the orders")?;
    Ok((at_stop, persisted, waited, rows_from(&pairs)?))
}

/// Latencies and span from (created_at, completed_at) RFC 3339 pairs.
fn rows_from(pairs: &[(String, String)]) -> anyhow::Result<Rows> {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_micros())
            .with_context(|| format!("{s:?} is not an RFC 3339 time"))
    };
    let mut latencies_us = Vec::with_capacity(pairs.len());
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (created, completed) in pairs {
        let (created, completed) = (parse(created)?, parse(completed)?);
        first = first.min(created);
        last = last.max(completed);
        // A persist stamped before its accept (clock step) counts as 0, not as a huge number.
        latencies_us.push(u64::try_from(completed - created).unwrap_or(0));
    }
    let span_seconds = if pairs.is_empty() {
        0.0
    } else {
        (last - first) as f64 / 1e6
    };
    Ok(Rows {
        latencies_us,
        span_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_and_latencies_from_rows() {
        let pairs = vec![
            (
                "2024-05-01T10:00:00.000Z".to_owned(),
                "2024-05-01T10:00:00.040Z".to_owned(),
            ),
            (
                "2024-05-01T10:00:00.500Z".to_owned(),
                "2024-05-01T10:00:02.000Z".to_owned(),
            ),
        ];
        let rows = rows_from(&pairs).unwrap();
        assert_eq!(rows.latencies_us, vec![40_000, 1_500_000]);
        assert!((rows.span_seconds - 2.0).abs() < 1e-9);
        assert_eq!(rows_from(&[]).unwrap().span_seconds, 0.0);
    }

    #[test]
    fn a_bad_time_is_an_error() {
        let pairs = vec![("yesterday".to_owned(), "today".to_owned())];
        assert!(rows_from(&pairs).is_err());
    }
}
