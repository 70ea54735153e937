//! The sidecar's serving threads, as nginx's worker processes: `threads` OS threads,
//! each with its own current-thread tokio runtime and its own listening socket on the
//! one port (`SO_REUSEPORT`: the kernel spreads new connections over them), each
//! serving the connections it accepted to their end. A request is read, looked up in
//! the shared cache and answered on one thread, with no wake-up of another (the
//! multi-thread runtime woke idle workers to steal work on most requests). The
//! connection cap is shared by the threads.
//!
//! Background work (refreshes of stale entries, the sweeper) runs on the caller's
//! runtime, which outlives the serving threads.

use crate::error::RealtimeError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// Most serving threads.
pub const MAX_THREADS: usize = 256;

fn io(what: String) -> impl FnOnce(std::io::Error) -> RealtimeError {
    move |source| RealtimeError::Io { what, source }
}

/// Binds `n` listening sockets on `addr`, all with `SO_REUSEPORT`; a port 0 is the port
/// the first one got. Needs a tokio runtime (the sockets pass through tokio's listener).
pub(crate) fn bind(addr: SocketAddr, n: usize) -> Result<Vec<std::net::TcpListener>, RealtimeError> {
    let mut at = addr;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let named = at;
        let what = || format!("listening on {named}");
        let sock = if at.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(io(what()))?;
        sock.set_reuseaddr(true).map_err(io(what()))?;
        sock.set_reuseport(true).map_err(io(what()))?;
        sock.bind(at).map_err(io(what()))?;
        let l = sock.listen(1024).map_err(io(what()))?;
        at = l.local_addr().map_err(io(what()))?;
        out.push(l.into_std().map_err(io(what()))?);
    }
    Ok(out)
}

/// `n` listeners from one already bound: the others are duplicates of its descriptor
/// (every thread is woken by a new connection and one of them takes it; used when the
/// caller binds the socket itself, as tests do).
pub(crate) fn share(listener: TcpListener, n: usize) -> Result<Vec<std::net::TcpListener>, RealtimeError> {
    let l = listener.into_std().map_err(io("taking the listening socket".into()))?;
    let mut out = Vec::with_capacity(n);
    for _ in 1..n.max(1) {
        out.push(l.try_clone().map_err(io("duplicating the listening socket".into()))?);
    }
    out.push(l);
    Ok(out)
}

/// Serves `app` on each listener from a thread of its own until `shutdown`; returns when
/// every thread has finished its connections. A thread that cannot start stops the
/// others, and its error is returned.
pub(crate) async fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: impl mware_http::App,
    limits: mware_http::Limits,
    shutdown: CancellationToken,
) -> Result<(), RealtimeError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let stats = mware_http::Stats::default();
    let stop = shutdown.child_token();
    let mut done = Vec::with_capacity(listeners.len());
    let mut first_err = None;
    for (i, l) in listeners.into_iter().enumerate() {
        let (app, slots, stats, stop2) = (app.clone(), slots.clone(), stats.clone(), stop.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new().name(format!("rtcache-{i}")).spawn(move || {
            let r = one_thread(l, app, limits, stats, slots, stop2.clone());
            if r.is_err() {
                stop2.cancel();
            }
            let _ = tx.send(r);
        });
        match started {
            Ok(_) => done.push(rx),
            Err(source) => {
                first_err.get_or_insert(RealtimeError::Io { what: format!("starting serving thread {i}"), source });
                stop.cancel();
            }
        }
    }
    for rx in done {
        let r = match rx.await {
            Ok(r) => r,
            Err(_) => Err(RealtimeError::Io { what: "a serving thread".into(), source: std::io::Error::other("it panicked") }),
        };
        if let Err(e) = r {
            stop.cancel();
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// One serving thread: its runtime, its listener, until `stop`.
fn one_thread(
    l: std::net::TcpListener,
    app: impl mware_http::App,
    limits: mware_http::Limits,
    stats: mware_http::Stats,
    slots: Arc<tokio::sync::Semaphore>,
    stop: CancellationToken,
) -> Result<(), RealtimeError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(io("starting a serving runtime".into()))?;
    rt.block_on(async move {
        l.set_nonblocking(true).map_err(io("setting the listening socket non-blocking".into()))?;
        let l = TcpListener::from_std(l).map_err(io("registering the listening socket".into()))?;
        mware_http::serve_sharing(l, app, limits, stats, slots, stop).await;
        Ok(())
    })
}
