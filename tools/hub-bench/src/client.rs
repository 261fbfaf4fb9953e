//! The client side: N WebSocket connections held open in this process, each recording when a
//! notification reaches it.
//!
//! Against the hub a connection is what `@microsoft/signalr` does with `skipNegotiation`: connect
//! to `ws://…/hubs/order-status?access_token=<jwt>`, send the handshake
//! `{"protocol":"json","version":1}\x1e`, expect `{}\x1e`, then send a Ping record every
//! `--client-ping-secs` (the hub closes a client silent for 30 s). Against the baseline it opens
//! `ws://…?user=<id>` and sends nothing. Everything else is the same code.

use crate::procfs;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const RECORD_SEPARATOR: char = '\u{1e}';
const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
const PING: &str = "{\"type\":6}\u{1e}";
const CLIENT_READ_BUFFER: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The SignalR hub: JWT in the query, handshake, record separators, Ping records.
    Hub,
    /// `hub-bench baseline`: `?user=`, raw JSON per message.
    Baseline,
}

#[derive(clap::Args, Clone)]
pub struct ConnectArgs {
    /// Which protocol the server speaks.
    #[arg(long, value_enum)]
    pub target: Target,
    /// ws://127.0.0.1:PORT/hubs/order-status (hub) or ws://127.0.0.1:PORT/ws (baseline).
    #[arg(long)]
    pub url: String,
    /// The server's pid, for its VmRSS and CPU time.
    #[arg(long)]
    pub pid: u32,
    /// Distinct users u0..u{N-1}.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    #[arg(long, default_value_t = 1)]
    pub conns_per_user: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Per attempt: TCP connect, upgrade and (hub) handshake.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout_secs: u64,
    /// Hub only: every connection sends a Ping record this often (0: never; then raise
    /// HUB_CLIENT_TIMEOUT_SECS on the hub instead).
    #[arg(long, default_value_t = 10)]
    pub client_ping_secs: u64,
    /// Wait this long after the last connection before reading the server's RSS.
    #[arg(long, default_value_t = 3)]
    pub settle_secs: u64,
    /// JWT `iss` (the hub's JWT_ISSUER). The HS256 key comes from the JWT_SIGNING_KEY variable.
    #[arg(long, default_value = "contoso-orders-dev")]
    pub issuer: String,
    /// JWT `aud` (the hub's JWT_AUDIENCE).
    #[arg(long, default_value = "contoso-orders-api")]
    pub audience: String,
    /// Clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u32,
    /// Also write the JSON report here.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
    /// The whole run gives up after this long.
    #[arg(long, default_value_t = 900)]
    pub max_secs: u64,
}

impl ConnectArgs {
    pub fn connections(&self) -> usize {
        self.users * self.conns_per_user
    }
}

/// Shared by every connection task and the publisher: when each notification was published and
/// who received it when.
pub struct Tracker {
    epoch: Instant,
    users: usize,
    /// Per notification id: microseconds since `epoch` just before its publish was issued.
    pub sent_us: Vec<AtomicU64>,
    /// Per notification id: how many connections received it.
    pub received: Vec<AtomicU32>,
    /// (id, receipt time in µs since `epoch`), one per delivery.
    pub receipts: Mutex<Vec<(u32, u64)>>,
    /// Deliveries to a connection of another user than the notification's.
    pub misdelivered: AtomicU64,
    /// Text the client could not make sense of (not a notification, ping or close).
    pub unparsed: AtomicU64,
    /// Per user: connections that completed the handshake (the expected receipts per message).
    pub user_conns: Vec<AtomicU32>,
    /// Connections currently open.
    pub open: AtomicUsize,
    /// Why connections ended before the bench stopped them.
    pub ended: Mutex<BTreeMap<String, u64>>,
}

pub const NOT_SENT: u64 = u64::MAX;

impl Tracker {
    pub fn new(users: usize, notifications: usize) -> Arc<Self> {
        Arc::new(Tracker {
            epoch: Instant::now(),
            users,
            sent_us: (0..notifications)
                .map(|_| AtomicU64::new(NOT_SENT))
                .collect(),
            received: (0..notifications).map(|_| AtomicU32::new(0)).collect(),
            receipts: Mutex::new(Vec::with_capacity(notifications + notifications / 4)),
            misdelivered: AtomicU64::new(0),
            unparsed: AtomicU64::new(0),
            user_conns: (0..users).map(|_| AtomicU32::new(0)).collect(),
            open: AtomicUsize::new(0),
            ended: Mutex::default(),
        })
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    pub fn users(&self) -> usize {
        self.users
    }

    fn record(&self, id: Option<u64>, user: usize, now: u64) {
        let Some(id) = id.filter(|&id| (id as usize) < self.sent_us.len()) else {
            self.unparsed.fetch_add(1, Relaxed);
            return;
        };
        if id as usize % self.users != user {
            self.misdelivered.fetch_add(1, Relaxed);
        }
        self.received[id as usize].fetch_add(1, Relaxed);
        self.receipts.lock().unwrap().push((id as u32, now));
    }

    /// Handles one Text message; `Some(reason)` when the server closed the connection in it.
    fn receive(&self, target: Target, user: usize, text: &str) -> Option<String> {
        let now = self.now_us();
        match target {
            Target::Hub => {
                for record in text.split(RECORD_SEPARATOR).filter(|r| !r.is_empty()) {
                    if record == "{\"type\":6}" {
                        continue;
                    }
                    let Ok(value) = serde_json::from_str::<serde_json::Value>(record) else {
                        self.unparsed.fetch_add(1, Relaxed);
                        continue;
                    };
                    match value.get("type").and_then(|t| t.as_u64()) {
                        Some(1)
                            if value.get("target").and_then(|t| t.as_str())
                                == Some("Notification") =>
                        {
                            let id = value
                                .get("arguments")
                                .and_then(|a| a.get(0))
                                .and_then(|n| n.get("orderId"))
                                .and_then(|o| o.as_u64());
                            self.record(id, user, now);
                        }
                        Some(6) => {}
                        Some(7) => {
                            let error = value.get("error").and_then(|e| e.as_str()).unwrap_or("");
                            return Some(format!("hub Close message: {error}"));
                        }
                        _ => {
                            self.unparsed.fetch_add(1, Relaxed);
                        }
                    }
                }
                None
            }
            Target::Baseline => {
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(value) => {
                        self.record(value.get("orderId").and_then(|o| o.as_u64()), user, now)
                    }
                    Err(_) => {
                        self.unparsed.fetch_add(1, Relaxed);
                    }
                }
                None
            }
        }
    }

    fn ended(&self, reason: String) {
        *self.ended.lock().unwrap().entry(reason).or_default() += 1;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectReport {
    pub target: Target,
    pub users: usize,
    pub conns_per_user: usize,
    pub attempted: usize,
    pub connected: usize,
    pub failed: usize,
    /// Failure reason -> count.
    pub failures: BTreeMap<String, u64>,
    pub connect_secs: f64,
    pub connects_per_sec: f64,
    pub rss_idle_kib: u64,
    pub rss_connected_kib: u64,
    /// (connected RSS - idle RSS) / connections held.
    pub kib_per_connection: f64,
    /// Server CPU seconds spent accepting the connections.
    pub server_cpu_connect_secs: f64,
}

/// Signs the dev HS256 token the hub accepts (same claims as `orders-auth`'s dev issuer).
pub fn dev_token(key: &[u8], issuer: &str, audience: &str, user: &str) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        name: &'a str,
        iss: &'a str,
        aud: &'a str,
        iat: u64,
        nbf: u64,
        exp: u64,
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: user,
        name: user,
        iss: issuer,
        aud: audience,
        iat: now,
        nbf: now.saturating_sub(60),
        exp: now + 3600,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )?)
}

fn classify(error: &WsError) -> String {
    match error {
        WsError::Http(response) => format!("HTTP {}", response.status()),
        WsError::Io(e) => match e.raw_os_error() {
            Some(code) => format!("io {:?} (os error {code})", e.kind()),
            None => format!("io {:?}", e.kind()),
        },
        other => {
            let text = other.to_string();
            text.chars().take(80).collect()
        }
    }
}

async fn open(target: Target, url: &str) -> Result<Ws, String> {
    // A small read buffer: tungstenite zero-fills all of it on every read attempt, and these
    // clients only ever read short messages. (The servers keep their defaults.)
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| classify(&e))?;
    if target == Target::Hub {
        ws.send(Message::Text(HANDSHAKE.into()))
            .await
            .map_err(|e| format!("handshake send: {}", classify(&e)))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let first = text.split(RECORD_SEPARATOR).next().unwrap_or("");
                    if first == "{}" {
                        break;
                    }
                    let first: String = first.chars().take(80).collect();
                    return Err(format!("handshake refused: {first}"));
                }
                Some(Ok(Message::Close(_))) | None => {
                    return Err("closed during the handshake".into());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("handshake read: {}", classify(&e))),
            }
        }
    }
    Ok(ws)
}

/// Holds one connection until `stop`; records what it receives.
async fn hold(
    mut ws: Ws,
    target: Target,
    user: usize,
    ping_every: Option<Duration>,
    jitter: f64,
    tracker: Arc<Tracker>,
    stop: CancellationToken,
) -> Option<String> {
    let period = ping_every.unwrap_or(Duration::from_secs(3600));
    let first = tokio::time::Instant::now() + period.mul_f64(jitter);
    let mut ping = tokio::time::interval_at(first, period);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            _ = ping.tick(), if ping_every.is_some() => {
                if let Err(e) = ws.send(Message::Text(PING.into())).await {
                    return Some(format!("ping send: {}", classify(&e)));
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reason) = tracker.receive(target, user, text.as_str()) {
                        return Some(reason);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(0);
                    return Some(format!("close frame {code}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(format!("read: {}", classify(&e))),
                None => return Some("EOF".into()),
            },
        }
    }
}

/// Opens every connection (at most `concurrency` attempts at once) and leaves them held by their
/// own tasks until `stop` is cancelled; measures the server's RSS before and after.
pub async fn connect_all(
    args: &ConnectArgs,
    tracker: &Arc<Tracker>,
    stop: &CancellationToken,
) -> anyhow::Result<ConnectReport> {
    let total = args.connections();
    if total == 0 {
        bail!("--users and --conns-per-user must be at least 1");
    }
    let key = match args.target {
        Target::Hub => Some(
            std::env::var("JWT_SIGNING_KEY")
                .context("JWT_SIGNING_KEY must hold the hub's HS256 key")?
                .into_bytes(),
        ),
        Target::Baseline => None,
    };
    let rss_idle_kib = procfs::rss_kib(args.pid)?;
    let cpu_before = procfs::cpu_secs(Some(args.pid), args.clk_tck)?;
    let started = Instant::now();

    let (results, mut outcomes) = mpsc::channel::<Result<(), String>>(total);
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let ping_every = match (args.target, args.client_ping_secs) {
        (Target::Hub, secs) if secs > 0 => Some(Duration::from_secs(secs)),
        _ => None,
    };
    let connect_timeout = Duration::from_secs(args.connect_timeout_secs);
    let spawner = {
        let tracker = Arc::clone(tracker);
        let stop = stop.clone();
        let args = args.clone();
        tokio::spawn(async move {
            for c in 0..total {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let user = c % args.users;
                let name = format!("u{user}");
                let url = match &key {
                    Some(key) => {
                        let token = dev_token(key, &args.issuer, &args.audience, &name)
                            .expect("HS256 signing with an in-memory key");
                        format!("{}?access_token={token}", args.url)
                    }
                    None => format!("{}?user={name}", args.url),
                };
                let tracker = Arc::clone(&tracker);
                let stop = stop.clone();
                let results = results.clone();
                let target = args.target;
                tokio::spawn(async move {
                    let opened = tokio::time::timeout(connect_timeout, open(target, &url)).await;
                    drop(slot);
                    let ws = match opened {
                        Ok(Ok(ws)) => ws,
                        Ok(Err(reason)) => {
                            let _ = results.send(Err(reason)).await;
                            return;
                        }
                        Err(_) => {
                            let _ = results.send(Err("timeout".into())).await;
                            return;
                        }
                    };
                    tracker.user_conns[user].fetch_add(1, Relaxed);
                    tracker.open.fetch_add(1, Relaxed);
                    let _ = results.send(Ok(())).await;
                    drop(results);
                    let jitter = (c % 1000) as f64 / 1000.0;
                    let ended = hold(
                        ws,
                        target,
                        user,
                        ping_every,
                        jitter,
                        Arc::clone(&tracker),
                        stop,
                    )
                    .await;
                    tracker.open.fetch_sub(1, Relaxed);
                    if let Some(reason) = ended {
                        tracker.ended(reason);
                    }
                });
            }
        })
    };

    let mut connected = 0;
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_progress = Instant::now();
    for done in 0..total {
        // Every attempt ends within connect_timeout of starting; allow for queueing behind the
        // concurrency limit by bounding the wait per outcome, not the whole phase.
        let outcome = tokio::time::timeout(connect_timeout * 3, outcomes.recv()).await;
        match outcome {
            Ok(Some(Ok(()))) => connected += 1,
            Ok(Some(Err(reason))) => *failures.entry(reason).or_default() += 1,
            Ok(None) => break,
            Err(_) => {
                eprintln!(
                    "connect: no outcome for {:?}; giving up at {done}/{total}",
                    last_progress.elapsed()
                );
                *failures.entry("no outcome (stalled)".into()).or_default() +=
                    (total - done) as u64;
                break;
            }
        }
        last_progress = Instant::now();
        if (done + 1) % 2000 == 0 {
            eprintln!(
                "connect: {}/{total} attempts done, {connected} open, {:.1} s",
                done + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let _ = spawner.await;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_connected_kib = procfs::rss_kib(args.pid)?;
    let cpu_after = procfs::cpu_secs(Some(args.pid), args.clk_tck)?;
    let failed = failures.values().sum::<u64>() as usize;
    let report = ConnectReport {
        target: args.target,
        users: args.users,
        conns_per_user: args.conns_per_user,
        attempted: total,
        connected,
        failed,
        failures,
        connect_secs,
        connects_per_sec: connected as f64 / connect_secs.max(1e-9),
        rss_idle_kib,
        rss_connected_kib,
        kib_per_connection: if connected > 0 {
            (rss_connected_kib as f64 - rss_idle_kib as f64) / connected as f64
        } else {
            0.0
        },
        server_cpu_connect_secs: cpu_after - cpu_before,
    };
    eprintln!(
        "connect: {connected}/{total} connected in {connect_secs:.1} s; server RSS {rss_idle_kib} -> {rss_connected_kib} KiB ({:.1} KiB/connection)",
        report.kib_per_connection
    );
    Ok(report)
}
