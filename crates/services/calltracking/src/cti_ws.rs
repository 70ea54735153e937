//! The WebSocket JSON CTI adapter. A client connects (with the API token as
//! `Authorization: Bearer …` or `?token=…` when the site has one), subscribes with
//! `{"subscribe": {"domain": "d"}}`, `{"subscribe": {"extension": "1001@d"}}` (calls
//! from or to it), `{"subscribe": {"hunt": "hunt1@d"}}` (calls to a hunt number or
//! queue) or `{"subscribe": {"number": "sip:201@other.example"}}` (an external number;
//! see `cti_filter`), and receives each change
//! of those calls as a JSON text frame: `{"event": "ringing" | "answered" | "ended",
//! "id", "domain", "from", "to", "at_ms", …}`, in order; a change of an external number
//! is `{"event": "number", "id": uri, "to": uri, "domain", "state", "at_ms"}` (a domain's
//! subscribers get its numbers' too; a number's subscriber first gets its state now). A client that falls
//! [`crate::tracker::FEED`] events behind, or whose socket takes no data for
//! [`WRITE_TIMEOUT`], is cut; the provider never waits for it.

use crate::adapter::Adapter;
use crate::cti_filter::Filter;
use crate::metrics::Metrics;
use crate::tracker::Tracker;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Longest a frame may wait for the client's socket.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most frames written with one flush.
const BURST: usize = 64;
/// The socket's send buffer: bounds the memory a client holds in the kernel.
const SEND_BUFFER: usize = 64 * 1024;

/// Listens on the adapter's address until `cancel`; an error when the listener fails.
pub async fn serve(
    a: &Arc<Adapter>,
    token: Option<String>,
    tracker: &Arc<Tracker>,
    m: &Metrics,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let l = TcpListener::bind(a.addr).await.map_err(|e| format!("cannot listen on {}: {e}", a.addr))?;
    a.set("running", format!("listening on {}", a.addr));
    let clients = CancellationToken::new();
    let _stop = clients.clone().drop_guard();
    loop {
        let (s, peer) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            r = l.accept() => r.map_err(|e| format!("accept on {}: {e}", a.addr))?,
        };
        let _ = socket2::SockRef::from(&s).set_send_buffer_size(SEND_BUFFER);
        let (a, t, m, token, stop) = (a.clone(), tracker.clone(), m.clone(), token.clone(), clients.child_token());
        tokio::spawn(async move {
            if let Err(why) = client(s, &a, token, &t, &m, stop).await {
                tracing::info!(key = %a.key, %peer, why, "CTI client closed");
            }
        });
    }
}

/// Counts a connected client while it lives.
struct Counted<'a>(&'a Adapter, &'a Metrics);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
        self.1.cti_clients.dec();
    }
}

fn authorised(req: &Request, token: &str) -> bool {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let query = req.uri().query().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("token="));
    header.or(query).is_some_and(|t| mware_config::same(t.as_bytes(), token.as_bytes()))
}

// tungstenite's handshake callback must return its `ErrorResponse` (an HTTP response).
#[allow(clippy::result_large_err)]
async fn client(
    s: TcpStream,
    a: &Adapter,
    token: Option<String>,
    tracker: &Tracker,
    m: &Metrics,
    stop: CancellationToken,
) -> Result<(), String> {
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        match &token {
            Some(t) if !authorised(req, t) => {
                let mut e = ErrorResponse::new(Some("expected the API token (Authorization: Bearer, or ?token=)".into()));
                *e.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::UNAUTHORIZED;
                Err(e)
            }
            _ => Ok(resp),
        }
    };
    let ws = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::accept_hdr_async(s, check))
        .await
        .map_err(|_| "no WebSocket handshake within 5 s".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    a.clients.fetch_add(1, Ordering::Relaxed);
    m.cti_clients.inc();
    let _counted = Counted(a, m);
    let (mut tx, mut rx) = ws.split();
    let mut feed = tracker.subscribe();
    let mut filter: Option<Filter> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let (answer, now) = match Filter::from_json(&t) {
                        Ok(f) => {
                            let now: Vec<String> = f.current(tracker).into_iter().map(|p| p.frame).collect();
                            let a = json!({"subscribed": f.describe()});
                            filter = Some(f);
                            (a, now)
                        }
                        Err(e) => (json!({"error": e}), vec![]),
                    };
                    send(&mut tx, answer.to_string()).await?;
                    if !now.is_empty() {
                        send_all(&mut tx, now).await?;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
            },
            ev = feed.recv() => {
                // This event and whatever else is waiting (up to BURST), written with one flush.
                let mut frames = vec![];
                let mut next = Some(ev);
                while let Some(ev) = next.take() {
                    match ev {
                        Ok(p) if filter.as_ref().is_some_and(|f| f.matches(&p)) => frames.push(p.frame.clone()),
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => return Err(cut(a, m, &format!("{n} events behind"))),
                        Err(RecvError::Closed) => return Ok(()),
                    }
                    if frames.len() < BURST {
                        next = match feed.try_recv() {
                            Ok(p) => Some(Ok(p)),
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                }
                if !frames.is_empty() {
                    if let Err(e) = send_all(&mut tx, frames).await {
                        return Err(cut(a, m, &e));
                    }
                }
            },
        }
    }
}

fn cut(a: &Adapter, m: &Metrics, why: &str) -> String {
    a.cut.fetch_add(1, Ordering::Relaxed);
    m.cti_cut.inc();
    format!("cut: it reads too slowly ({why})")
}

/// Writes `frames` and flushes once, within [`WRITE_TIMEOUT`].
async fn send_all<S>(tx: &mut S, frames: Vec<String>) -> Result<(), String>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let write = async {
        for f in frames {
            tx.feed(Message::text(f)).await?;
        }
        tx.flush().await
    };
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("its socket took nothing for {} ms", WRITE_TIMEOUT.as_millis())),
    }
}

async fn send<S>(tx: &mut S, text: String) -> Result<(), String>
where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    match tokio::time::timeout(WRITE_TIMEOUT, tx.send(Message::text(text))).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("its socket took nothing for {} ms", WRITE_TIMEOUT.as_millis())),
    }
}
