//! One connection: hyper's HTTP/1.1 connection, plus the limits, all checked by one
//! ticker per connection instead of a timer per request (a timer registered and
//! cancelled per request cost the critical sections benchmark about a tenth of its
//! throughput): the header read timeout (bytes of a request head have been arriving for
//! too long), the idle timeout (no request in flight and no byte moved), the request
//! timeout (the handler is told to give up and the client gets 503), and the graceful
//! close when the server stops.

use crate::{Limits, Stats};
use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What the connection's ticker watches (times in ms since the connection opened, plus
/// one, so that 0 means "none").
struct Activity {
    start: Instant,
    /// The last time a byte moved.
    last_ms: AtomicU64,
    /// Requests whose answer is not yet sent.
    in_flight: AtomicUsize,
    /// When the first byte of a request head arrived with no request in flight.
    head_ms: AtomicU64,
    /// When the request in flight entered the handler.
    request_ms: AtomicU64,
    /// Tells the handler in flight to give up (request timeout).
    expire: tokio::sync::Notify,
}

impl Activity {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }
    fn touch(&self) {
        self.last_ms.store(self.now(), Ordering::Relaxed);
    }
    fn since(&self, at: &AtomicU64) -> Option<Duration> {
        let t = at.load(Ordering::Relaxed);
        (t != 0).then(|| Duration::from_millis(self.now().saturating_sub(t)))
    }
    fn quiet_for(&self) -> Duration {
        Duration::from_millis(self.now().saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The TCP stream, noting every byte that moves.
struct Watched {
    tcp: TcpStream,
    act: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.act.touch();
            if self.act.in_flight.load(Ordering::Relaxed) == 0 && self.act.head_ms.load(Ordering::Relaxed) == 0 {
                self.act.head_ms.store(self.act.now(), Ordering::Relaxed);
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.act.touch();
        }
        r
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.act.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A request in flight until its answer's body is sent (or dropped).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(act: &Arc<Activity>) -> Self {
        act.in_flight.fetch_add(1, Ordering::Relaxed);
        act.head_ms.store(0, Ordering::Relaxed);
        act.request_ms.store(act.now(), Ordering::Relaxed);
        InFlight(act.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An answer's body that keeps its request in flight while it is sent.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn too_slow(limit: Duration) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::ApiError::unavailable(format!(
        "the request took longer than the server's request timeout ({} ms); nothing more is done for it",
        limit.as_millis()
    ))
    .into_response()
}

/// Serves one connection until it closes, is idle too long, or `cancel` fires.
/// Every request carries the peer's address as axum's `ConnectInfo<SocketAddr>` (the
/// users service's per-IP abuse limits read it).
pub(crate) async fn run<S: crate::App>(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    app: S,
    limits: Limits,
    stats: &Stats,
    cancel: CancellationToken,
) {
    let act = Arc::new(Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        head_ms: AtomicU64::new(0),
        request_ms: AtomicU64::new(0),
        expire: tokio::sync::Notify::new(),
    });
    let io = TokioIo::new(Watched { tcp, act: act.clone() });
    let svc_act = act.clone();
    let svc_stats = stats.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::enter(&svc_act);
        let app = app.clone();
        let stats = svc_stats.clone();
        let act = svc_act.clone();
        async move {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let handler = app.oneshot(req);
            let resp = tokio::select! {
                biased;
                r = handler => match r {
                    Ok(r) => r,
                    Err(never) => match never {},
                },
                _ = act.expire.notified() => {
                    stats.0.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    too_slow(limits.request_timeout)
                }
            };
            Ok::<_, Infallible>(resp.map(|inner| Tracked { inner, _in_flight: guard }))
        }
    });
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let shortest = limits.idle_timeout.min(limits.header_read_timeout).min(limits.request_timeout);
    let tick = (shortest / 4).clamp(Duration::from_millis(20), Duration::from_secs(2));
    let mut timer = tokio::time::interval(tick);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = timer.tick(), if !closing => {
                if act.in_flight.load(Ordering::Relaxed) > 0 {
                    // Past the request timeout: the handler in flight gives up (a streamed
                    // answer has no handler waiting any more, so this reaches nobody).
                    if act.since(&act.request_ms).is_some_and(|d| d >= limits.request_timeout) {
                        act.expire.notify_waiters();
                    }
                } else if act.since(&act.head_ms).is_some_and(|d| d >= limits.header_read_timeout) {
                    // A request head still not complete: drop the connection.
                    stats.0.idle_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                } else if act.quiet_for() >= limits.idle_timeout {
                    stats.0.idle_closed.fetch_add(1, Ordering::Relaxed);
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = cancel.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}
