//! mware-http: the HTTP/1.1 server of the daemon's API and of the rtcache sidecar,
//! with the limits a server on a site's shared network needs (`axum::serve` has none):
//!
//! - **header read timeout**: a client that does not send a whole request head in time
//!   is disconnected;
//! - **idle timeout**: a kept-alive connection with no request in flight and no byte
//!   moved for this long is closed (a long poll or a streamed answer is not idle);
//! - **request timeout**: a handler that has not produced its answer's head in time is
//!   cancelled and the client gets 503 (streamed bodies, such as server-sent events,
//!   are not cut);
//! - **connection cap**: beyond it, new connections are closed at once.
//!
//! [`ApiError`] is the one error answer of the API (status, message, retryable, the field
//! at fault, `Retry-After`), described once in the OpenAPI document.
//!
//! [`host`] checks the `Host` header of a request against the names and addresses the
//! server is known by (DNS rebinding), for the servers' routers to apply.
//!
//! [`serve`] runs until its cancel token fires, then stops accepting, asks every
//! connection to finish its request in flight and close, and returns when they have.
#![deny(missing_docs)]

mod balance;
mod conn;
mod error;
pub mod host;

pub use balance::Balance;

pub use error::{ApiError, Problem};

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The limits of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive a request's head (request line and headers).
    pub header_read_timeout: Duration,
    /// Longest quiet time of a connection with no request in flight.
    pub idle_timeout: Duration,
    /// Longest time for a handler to produce its answer's head.
    pub request_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            max_connections: 1024,
        }
    }
}

/// Counters of one server (for metrics); cheap to clone.
#[derive(Debug, Default, Clone)]
pub struct Stats(Arc<StatsInner>);

#[derive(Debug, Default)]
struct StatsInner {
    open: AtomicU64,
    refused: AtomicU64,
    idle_closed: AtomicU64,
    request_timeouts: AtomicU64,
}

impl Stats {
    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.0.open.load(Ordering::Relaxed)
    }
    /// Connections closed at once because the cap was reached.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }
    /// Connections closed for being idle (including ones that never sent a request).
    pub fn idle_closed(&self) -> u64 {
        self.0.idle_closed.load(Ordering::Relaxed)
    }
    /// Requests answered 503 because their handler ran past the request timeout.
    pub fn request_timeouts(&self) -> u64 {
        self.0.request_timeouts.load(Ordering::Relaxed)
    }
}

/// Serves `app` on `listener` with `limits` until `cancel`; returns once every
/// connection has closed. Accepted connections get TCP_NODELAY (every call is a small
/// request and a small answer).
pub async fn serve(listener: TcpListener, app: axum::Router, limits: Limits, stats: Stats, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    serve_sharing(listener, app, limits, stats, slots, None, cancel).await
}

/// What [`serve_sharing`] serves: an axum `Router`, or any tower service answering every
/// request (a hot path in front of a router).
pub trait App:
    tower::Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
}

impl<S> App for S where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

/// [`serve`] with a connection cap shared with other listeners: `slots` holds
/// `limits.max_connections` permits, one taken per open connection (a server that accepts
/// on several threads, one listener each, still caps its connections as a whole). With
/// `balance`, this listener is one of several accepting from the same socket, and it
/// accepts only while it holds no more connections than any of the others.
pub async fn serve_sharing(
    listener: TcpListener,
    app: impl App,
    limits: Limits,
    stats: Stats,
    slots: Arc<Semaphore>,
    balance: Option<Balance>,
    cancel: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        if let Some(b) = &balance {
            if !b.wait_turn(&cancel).await {
                break;
            }
        }
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.0.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: the connection cap is reached");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (app, stats, cancel) = (app.clone(), stats.clone(), cancel.clone());
        let mine = balance.as_ref().map(Balance::opened);
        tracker.spawn(async move {
            stats.0.open.fetch_add(1, Ordering::Relaxed);
            conn::run(tcp, peer, app, limits, &stats, cancel).await;
            stats.0.open.fetch_sub(1, Ordering::Relaxed);
            drop(mine);
            drop(slot);
        });
    }
    tracker.close();
    tracker.wait().await;
}
