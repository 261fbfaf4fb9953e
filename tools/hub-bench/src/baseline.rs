//! The ceiling: the thinnest server that does the hub's job. It accepts WebSockets on
//! `ws://127.0.0.1:PORT/<any path>?user=<id>`, keeps a per-user registry, reads the same Redis
//! backplane with the same adapter as the hub (`RedisFanout::subscribe`) and sends each
//! message's `notification` JSON, as one Text message, to that user's sockets. No SignalR framing, handshake, authentication, keep-alive or metrics.
//!
//! It keeps the properties any real fan-out needs, so the comparison is like for like: the
//! fan-out never waits on a socket (each connection has a bounded queue; a client that lets it
//! fill is dropped), and each connection has a writer task draining that queue and a reader
//! task noticing the close. Socket options and tungstenite's buffers are the defaults, as in the
//! hub (Nagle left on: neither sets `TCP_NODELAY`; 128 KiB read buffer unless
//! `--read-buffer-kib`).

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use orders_adapters::redis::{RedisFanout, RedisSubscription};
use orders_core::ports::{FanoutEvent, FanoutSubscription};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct BaselineArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the address is printed).
    #[arg(long)]
    pub port: u16,
    /// The Redis the hub fans out through.
    #[arg(long)]
    pub redis_url: String,
    /// Key prefix, as the hub's FANOUT_CHANNEL_PREFIX: the stream is `{prefix}notifications`.
    #[arg(long, default_value = "orders:")]
    pub prefix: String,
    /// Records a connection may have unsent before it is dropped (the hub's HUB_SEND_QUEUE).
    #[arg(long, default_value_t = 256)]
    pub send_queue: usize,
    /// Connections beyond this are refused (503).
    #[arg(long, default_value_t = 100_000)]
    pub max_connections: usize,
    /// tungstenite's per-connection read buffer, KiB. The default is tungstenite's (and so the
    /// hub's, through axum): 128 KiB, zero-filled, so resident.
    #[arg(long, default_value_t = 128)]
    pub read_buffer_kib: usize,
    /// The server exits by itself after this long.
    #[arg(long, default_value_t = 3600)]
    pub max_secs: u64,
}

/// A connection's id and the sending end of its queue.
type Queue = (u64, mpsc::Sender<Utf8Bytes>);

struct Registry {
    next_id: AtomicU64,
    open: AtomicUsize,
    by_user: Mutex<HashMap<String, Vec<Queue>>>,
}

impl Registry {
    fn add(&self, user: &str, sender: mpsc::Sender<Utf8Bytes>) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        self.by_user
            .lock()
            .unwrap()
            .entry(user.to_owned())
            .or_default()
            .push((id, sender));
        id
    }

    fn remove(&self, user: &str, id: u64) {
        let mut by_user = self.by_user.lock().unwrap();
        if let Some(list) = by_user.get_mut(user) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                by_user.remove(user);
            }
        }
    }

    fn senders(&self, user: &str) -> Vec<Queue> {
        self.by_user
            .lock()
            .unwrap()
            .get(user)
            .cloned()
            .unwrap_or_default()
    }
}

pub async fn run(args: BaselineArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let registry = Arc::new(Registry {
        next_id: AtomicU64::new(0),
        open: AtomicUsize::new(0),
        by_user: Mutex::default(),
    });
    let stop = CancellationToken::new();
    let subscription = RedisFanout::subscribe(&args.redis_url, &args.prefix)
        .await
        .context("reading the backplane")?;
    tokio::spawn(fan_out(subscription, Arc::clone(&registry), stop.clone()));

    println!(
        "hub-bench baseline listening on ws://{}",
        listener.local_addr()?
    );
    let deadline = tokio::time::sleep(Duration::from_secs(args.max_secs));
    tokio::pin!(deadline);
    let mut accepted: u64 = 0;
    loop {
        tokio::select! {
            accept = listener.accept() => match accept {
                Ok((stream, _)) => {
                    accepted += 1;
                    tokio::spawn(serve_socket(
                        stream,
                        Arc::clone(&registry),
                        args.send_queue,
                        args.max_connections,
                        args.read_buffer_kib * 1024,
                        stop.clone(),
                    ));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("baseline: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut deadline => {
                eprintln!("baseline: {} s elapsed; exiting", args.max_secs);
                break;
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    stop.cancel();
    eprintln!(
        "baseline: accepted {accepted} sockets, {} still open",
        registry.open.load(Relaxed)
    );
    Ok(())
}

async fn fan_out(
    mut subscription: RedisSubscription,
    registry: Arc<Registry>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            event = subscription.next() => event,
            () = stop.cancelled() => return,
        };
        let message = match event {
            Some(FanoutEvent::Message(message)) => message,
            Some(FanoutEvent::Missed(_)) => continue,
            None => {
                eprintln!("baseline: the backplane subscription ended");
                return;
            }
        };
        let user = message.user_id.as_str();
        let text = Utf8Bytes::from(
            serde_json::to_string(&message.notification).expect("notifications serialise"),
        );
        for (id, sender) in registry.senders(user) {
            // Never wait on a socket: a full queue drops that client (its task sees the
            // channel closed once the registry forgets it), as the hub does.
            if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(text.clone()) {
                eprintln!("baseline: send queue full for {user}; dropping the client");
                registry.remove(user, id);
            }
        }
    }
}

async fn serve_socket(
    stream: TcpStream,
    registry: Arc<Registry>,
    send_queue: usize,
    max_connections: usize,
    read_buffer: usize,
    stop: CancellationToken,
) {
    let mut user = None;
    let full = registry.open.load(Relaxed) >= max_connections;
    // The signature is tungstenite's `Callback`; its large Err type is not ours to box.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let found = request.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("user="))
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
        });
        let refuse = |status: StatusCode, why: &str| {
            let mut refusal = ErrorResponse::new(Some(why.to_owned()));
            *refusal.status_mut() = status;
            refusal
        };
        if full {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many connections",
            ));
        }
        match found {
            Some(found) => {
                user = Some(found);
                Ok(response)
            }
            None => Err(refuse(StatusCode::BAD_REQUEST, "?user= is required")),
        }
    };
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let Ok(socket) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some(user) = user else { return };
    let (sender, mut receiver) = mpsc::channel::<Utf8Bytes>(send_queue);
    let id = registry.add(&user, sender);
    registry.open.fetch_add(1, Relaxed);
    // Reading and writing in separate tasks, as the hub does: tungstenite zero-fills its whole
    // read buffer on every read attempt, so a single task that re-polls the socket each time it
    // wakes to send would pay that per notification.
    let (mut sink, mut stream) = socket.split();
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            if frame.is_close() {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            outgoing = receiver.recv() => match outgoing {
                Some(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = &mut reader => break,
            () = stop.cancelled() => break,
        }
    }
    reader.abort();
    registry.remove(&user, id);
    registry.open.fetch_sub(1, Relaxed);
}
