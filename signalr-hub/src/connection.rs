//! Connections and the registry: by connection token, and by user for the fan-out.
//!
//! Every connection has a bounded queue of outgoing records, drained by its transport. Nothing
//! ever waits on that queue: a record that does not fit closes the connection (a slow client is
//! dropped, it never stalls the fan-out or anybody else).

use crate::config::Limits;
use crate::metrics::Metrics;
use crate::protocol::{self, Frame, HubProtocol, Outgoing};
use crate::replay::Replay;
use crate::session::Session;
use orders_core::cursor::Cursor;
use orders_core::events::Notification;
use orders_core::{CorrelationId, OrderStatus, UserId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// How long a closed Long Polling connection still answers polls (204) instead of 404.
const LONG_POLL_GRACE: Duration = Duration::from_secs(5);
/// Stateful reconnect: how long a connection whose socket dropped waits for the client to come
/// back, and how many unacknowledged bytes it keeps (ASP.NET Core's `DisconnectTimeout` and
/// `StatefulReconnectBufferSize` defaults).
const RECONNECT_WINDOW: Duration = Duration::from_secs(15);
const REPLAY_LIMIT_BYTES: usize = 100_000;
/// How many recent (order, status) pushes a connection remembers, to drop the redeliveries of
/// the at-least-once pipeline (a notifier retried after it had published). Redeliveries follow
/// within seconds and an order has at most four statuses; 16 entries are 384 bytes.
const RECENT_NOTIFICATIONS: usize = 16;

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    WebSockets,
    LongPolling,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Attach {
    /// The transport was just attached (first WebSocket, first poll).
    New,
    /// Long Polling was already attached: a later poll.
    Existing,
    /// Stateful reconnect: a new WebSocket replaces the one before (dropped or not).
    Resume,
    /// Another transport, or a second WebSocket, already owns the connection.
    Conflict(TransportKind),
}

/// A connection's queue of outgoing records. Boxed: a tokio channel allocates its first block of
/// 32 slots with the channel, so a pointer-sized slot keeps an idle connection's queue at about
/// 300 bytes instead of 1.3 KiB (a queued record costs one small allocation instead).
pub type Outbox = mpsc::Receiver<Box<Frame>>;

pub struct Connection {
    pub id: String,
    pub token: String,
    pub user: UserId,
    outbound: mpsc::Sender<Box<Frame>>,
    /// Drained by the transport: the WebSocket writer holds it for its lifetime, each poll
    /// for its duration.
    pub receiver: tokio::sync::Mutex<Outbox>,
    /// Inbound processing state; one frame or POST at a time.
    pub session: tokio::sync::Mutex<Session>,
    transport: Mutex<Option<TransportKind>>,
    closing: CancellationToken,
    close_record: Mutex<Option<(Frame, CloseCode)>>,
    /// Set by the handshake.
    protocol: OnceLock<HubProtocol>,
    /// Negotiate agreed to stateful reconnect (`useStatefulReconnect`).
    pub reconnect_offered: bool,
    /// Set by a version 2 handshake over WebSockets when reconnect was offered.
    replay: OnceLock<Mutex<Replay>>,
    /// Ends the current WebSocket's reader and writer without ending the connection.
    socket: Mutex<CancellationToken>,
    /// When the socket of a resumable connection dropped; 0 while one is attached.
    detached_ms: AtomicU64,
    /// `?after=`: the client saw the backplane up to here; what followed is replayed to it after
    /// the handshake.
    pub replay_after: OnceLock<Cursor>,
    /// While a replay reads the history, the live notifications for this connection wait here,
    /// so that both go out in cursor order.
    held: Mutex<Option<Vec<Notification>>>,
    /// The latest (order, status) pairs pushed, oldest first.
    recent: Mutex<VecDeque<(CorrelationId, OrderStatus)>>,
    created_ms: u64,
    last_sent_ms: AtomicU64,
    last_received_ms: AtomicU64,
    /// Long Polling: a newer poll supersedes the one waiting.
    pub poll_generation: AtomicU64,
    pub poll_superseded: Notify,
    metrics: Arc<Metrics>,
}

impl Connection {
    pub fn is_handshaken(&self) -> bool {
        self.protocol.get().is_some()
    }

    /// The hub protocol the handshake agreed on; `None` before it.
    pub fn protocol(&self) -> Option<HubProtocol> {
        self.protocol.get().copied()
    }

    pub fn set_protocol(&self, protocol: HubProtocol) {
        let _ = self.protocol.set(protocol);
    }

    pub fn transport(&self) -> Option<TransportKind> {
        *self.transport.lock().unwrap()
    }

    pub fn attach(&self, kind: TransportKind) -> Attach {
        let mut transport = self.transport.lock().unwrap();
        match *transport {
            None => {
                *transport = Some(kind);
                Attach::New
            }
            Some(TransportKind::LongPolling) if kind == TransportKind::LongPolling => {
                Attach::Existing
            }
            Some(TransportKind::WebSockets)
                if kind == TransportKind::WebSockets && self.replay.get().is_some() =>
            {
                Attach::Resume
            }
            Some(existing) => Attach::Conflict(existing),
        }
    }

    /// Encodes `message` in the connection's protocol and queues it; `false` before the
    /// handshake or when it could not be queued.
    pub fn send_message(&self, message: &Outgoing) -> bool {
        let Some(protocol) = self.protocol() else {
            return false;
        };
        let frame = protocol.encode(message);
        match message {
            Outgoing::Invocation { .. } | Outgoing::Completion { .. } => self.send_tracked(frame),
            _ => self.send(frame),
        }
    }

    /// Queues an invocation message: numbered and kept until acknowledged when the connection
    /// is resumable.
    pub fn send_tracked(&self, frame: Frame) -> bool {
        let Some(replay) = self.replay.get() else {
            return self.send(frame);
        };
        // Numbered and queued under one lock, so a resume's snapshot and the queue never overlap.
        let mut replay = replay.lock().unwrap();
        if !replay.push(&frame) {
            drop(replay);
            self.slow_client();
            return false;
        }
        self.send(frame)
    }

    /// `true` the first time this connection is to be told `notification`; `false` for a
    /// redelivery of one it was already told recently.
    pub fn first_push(&self, notification: &Notification) -> bool {
        let key = (notification.correlation_id, notification.status);
        let mut recent = self.recent.lock().unwrap();
        if recent.contains(&key) {
            return false;
        }
        if recent.len() == RECENT_NOTIFICATIONS {
            recent.pop_front();
        }
        recent.push_back(key);
        true
    }

    /// Holds live notifications back until [`Connection::release_held`] (a replay is coming).
    pub fn hold_live(&self) {
        *self.held.lock().unwrap() = Some(Vec::new());
    }

    /// `true` if `notification` was held back for a replay in progress. Only a connection that
    /// asked for a replay ever holds, so the others skip the lock.
    pub fn held_back(&self, notification: &Notification) -> bool {
        if self.replay_after.get().is_none() {
            return false;
        }
        match self.held.lock().unwrap().as_mut() {
            Some(held) => {
                held.push(notification.clone());
                true
            }
            None => false,
        }
    }

    /// Ends the hold: `send` gets the missed and the held notifications merged in cursor order,
    /// under the hold's lock, so no live notification can pass them.
    pub fn release_held(&self, missed: Vec<Notification>, mut send: impl FnMut(&Notification)) {
        let mut held = self.held.lock().unwrap();
        let mut all = missed;
        all.extend(held.take().unwrap_or_default());
        all.sort_by_key(|n| n.cursor);
        all.iter().for_each(&mut send);
    }

    /// Turns on stateful reconnect for this connection (after its handshake).
    pub fn enable_replay(&self) {
        let _ = self.replay.set(Mutex::new(Replay::new(REPLAY_LIMIT_BYTES)));
    }

    pub fn is_resumable(&self) -> bool {
        self.replay.get().is_some()
    }

    /// The client acknowledged every message up to `id`.
    pub fn ack(&self, id: u64) {
        if let Some(replay) = self.replay.get() {
            replay.lock().unwrap().ack(id);
        }
    }

    /// What a resumed socket sends first: the Sequence id and the unacknowledged frames. What is
    /// still queued is dropped: invocation messages are among those frames, the rest (pings,
    /// acks) is stale.
    pub fn resume(&self, queued: &mut Outbox) -> (u64, Vec<Frame>) {
        let replay = self.replay.get().expect("resumable").lock().unwrap();
        while queued.try_recv().is_ok() {}
        self.detached_ms.store(0, Relaxed);
        replay.resend()
    }

    /// A token for a new socket; the previous socket's is cancelled (a resume pre-empts it).
    pub fn new_socket(&self) -> CancellationToken {
        let token = CancellationToken::new();
        let mut current = self.socket.lock().unwrap();
        std::mem::replace(&mut *current, token.clone()).cancel();
        token
    }

    /// The socket `token` belongs to is gone. A resumable connection waits for the client to
    /// come back (unless a newer socket already took over); any other connection ends.
    pub fn socket_lost(&self, token: &CancellationToken) {
        if !self.is_resumable() {
            return self.close(None);
        }
        let current = self.socket.lock().unwrap();
        if !token.is_cancelled() {
            self.detached_ms.store(now_ms().max(1), Relaxed);
            token.cancel();
        }
        drop(current);
    }

    fn slow_client(&self) {
        Metrics::incr(&self.metrics.slow_clients_closed);
        tracing::warn!(connection = %self.id, user = %self.user, "send queue full; closing the slow client");
        self.close_with_error("The client is not reading its messages fast enough.", false);
    }

    /// Queues a frame for the client. A full queue closes the connection: `false`.
    pub fn send(&self, frame: Frame) -> bool {
        if self.closing.is_cancelled() {
            return false;
        }
        match self.outbound.try_send(Box::new(frame)) {
            Ok(()) => {
                self.last_sent_ms.store(now_ms(), Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.slow_client();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn touch_received(&self) {
        self.last_received_ms.store(now_ms(), Relaxed);
    }

    /// Ends the connection; `record` (a Close message or handshake error) is the last thing
    /// the transport sends.
    pub fn close(&self, record: Option<Frame>) {
        self.close_as(record, CloseCode::Normal);
    }

    fn close_as(&self, record: Option<Frame>, code: CloseCode) {
        if self.closing.is_cancelled() {
            return;
        }
        if let Some(record) = record {
            self.close_record
                .lock()
                .unwrap()
                .get_or_insert((record, code));
        }
        self.closing.cancel();
    }

    /// Closes with a reason the client sees: a Close message after the handshake, a handshake
    /// error before it.
    pub fn close_with_error(&self, error: &str, allow_reconnect: bool) {
        self.close_with(error, allow_reconnect, CloseCode::Normal);
    }

    /// As [`Connection::close_with_error`], with the WebSocket close code `code`.
    pub fn close_with(&self, error: &str, allow_reconnect: bool, code: CloseCode) {
        let record = match self.protocol() {
            Some(protocol) => protocol.encode(&Outgoing::Close {
                error: Some(error),
                allow_reconnect,
            }),
            None => protocol::handshake_error(error),
        };
        self.close_as(Some(record), code);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }

    pub async fn closed(&self) {
        self.closing.cancelled().await
    }

    /// The last record to send, and the WebSocket close code that follows it.
    pub fn take_close_record(&self) -> Option<(Frame, CloseCode)> {
        self.close_record.lock().unwrap().take()
    }
}

/// How a WebSocket ends (RFC 6455, 7.4.1), chosen from what ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: done, or closed with a reason in the hub protocol's Close message.
    Normal,
    /// 1009: a message larger than the hub accepts.
    TooBig,
}

impl CloseCode {
    pub fn value(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::TooBig => 1009,
        }
    }
}

#[derive(Default)]
struct Index {
    by_token: HashMap<String, Arc<Connection>>,
    by_user: HashMap<UserId, HashSet<String>>,
}

pub struct Registry {
    index: Mutex<Index>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

#[derive(Debug)]
pub struct Full;

impl Registry {
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Registry {
            index: Mutex::default(),
            limits,
            metrics,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A new connection for `user`; `token_is_id` for negotiate version 0, where the client
    /// connects with the connection id.
    /// `reconnect_offered`: negotiate agreed to stateful reconnect.
    pub fn create(
        self: &Arc<Self>,
        user: UserId,
        token_is_id: bool,
        reconnect_offered: bool,
    ) -> Result<Arc<Connection>, Full> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let token = if token_is_id {
            id.clone()
        } else {
            uuid::Uuid::new_v4().simple().to_string()
        };
        let (outbound, receiver) = mpsc::channel(self.limits.send_queue);
        let now = now_ms();
        let connection = Arc::new(Connection {
            id,
            token: token.clone(),
            user: user.clone(),
            outbound,
            receiver: tokio::sync::Mutex::new(receiver),
            session: tokio::sync::Mutex::new(Session::new(&self.limits)),
            transport: Mutex::new(None),
            closing: CancellationToken::new(),
            close_record: Mutex::new(None),
            protocol: OnceLock::new(),
            reconnect_offered,
            replay: OnceLock::new(),
            socket: Mutex::new(CancellationToken::new()),
            detached_ms: AtomicU64::new(0),
            replay_after: OnceLock::new(),
            held: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
            created_ms: now,
            last_sent_ms: AtomicU64::new(now),
            last_received_ms: AtomicU64::new(now),
            poll_generation: AtomicU64::new(0),
            poll_superseded: Notify::new(),
            metrics: Arc::clone(&self.metrics),
        });
        {
            let mut index = self.index.lock().unwrap();
            if index.by_token.len() >= self.limits.max_connections {
                return Err(Full);
            }
            index
                .by_token
                .insert(token.clone(), Arc::clone(&connection));
            index.by_user.entry(user).or_default().insert(token);
        }
        Metrics::incr(&self.metrics.connections_opened);
        tokio::spawn(supervise(Arc::clone(self), Arc::clone(&connection)));
        Ok(connection)
    }

    pub fn get(&self, token: &str) -> Option<Arc<Connection>> {
        self.index.lock().unwrap().by_token.get(token).cloned()
    }

    /// The user's open connections on this replica, each once.
    pub fn for_user(&self, user: &UserId) -> Vec<Arc<Connection>> {
        let index = self.index.lock().unwrap();
        index
            .by_user
            .get(user)
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|t| index.by_token.get(t).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.index.lock().unwrap().by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn users(&self) -> usize {
        self.index.lock().unwrap().by_user.len()
    }

    pub fn close_all(&self, error: &str, allow_reconnect: bool) {
        let all: Vec<_> = self
            .index
            .lock()
            .unwrap()
            .by_token
            .values()
            .cloned()
            .collect();
        for connection in all {
            connection.close_with_error(error, allow_reconnect);
        }
    }

    fn unindex_user(&self, connection: &Connection) {
        let mut index = self.index.lock().unwrap();
        if let Some(tokens) = index.by_user.get_mut(&connection.user) {
            tokens.remove(&connection.token);
            if tokens.is_empty() {
                index.by_user.remove(&connection.user);
            }
        }
    }

    fn remove(&self, connection: &Connection) {
        self.index
            .lock()
            .unwrap()
            .by_token
            .remove(&connection.token);
        Metrics::incr(&self.metrics.connections_closed);
    }
}

/// Per-connection timers: handshake deadline, keep-alive pings, client timeout; then cleanup.
async fn supervise(registry: Arc<Registry>, connection: Arc<Connection>) {
    let limits = registry.limits.clone();
    let ms = |d: Duration| d.as_millis() as u64;
    loop {
        let now = now_ms();
        let wake_at = if !connection.is_handshaken() {
            let deadline = connection.created_ms + ms(limits.handshake_timeout);
            if now >= deadline {
                connection.close_with_error("Handshake was not completed in time.", false);
                break;
            }
            // Re-check soon: the handshake usually completes well before the deadline.
            deadline.min(now + 250)
        } else {
            let detached = connection.detached_ms.load(Relaxed);
            if detached != 0 && now >= detached + ms(RECONNECT_WINDOW) {
                connection.close(None);
                break;
            }
            let timeout_at = connection.last_received_ms.load(Relaxed) + ms(limits.client_timeout);
            if now >= timeout_at {
                connection.close_with_error(
                    "Server timeout elapsed without receiving a message from the client.",
                    false,
                );
                break;
            }
            let mut ping_at = connection.last_sent_ms.load(Relaxed) + ms(limits.keep_alive);
            if now >= ping_at {
                connection.send_message(&Outgoing::Ping);
                ping_at = now + ms(limits.keep_alive);
            }
            let reconnect_by = if detached == 0 {
                u64::MAX
            } else {
                detached + ms(RECONNECT_WINDOW)
            };
            timeout_at.min(ping_at).min(reconnect_by)
        };
        let sleep = Duration::from_millis(wake_at.saturating_sub(now_ms()).max(10));
        tokio::select! {
            () = connection.closed() => break,
            () = tokio::time::sleep(sleep) => {}
        }
    }
    // No more fan-out to it; a Long Polling client still gets its last poll answered.
    registry.unindex_user(&connection);
    if connection.transport() == Some(TransportKind::LongPolling) {
        tokio::time::sleep(LONG_POLL_GRACE).await;
    }
    registry.remove(&connection);
    tracing::debug!(connection = %connection.id, user = %connection.user, "connection ended");
}
