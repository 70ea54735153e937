//! The sidecar's serving threads, as nginx's worker processes: `threads` OS threads,
//! each with its own current-thread tokio runtime, accepting from one shared listening
//! socket (each takes a new connection only while it holds no more than the others:
//! [`mware_http::Balance`]), or with `accept: reuseport` each from its own socket on the
//! one port (`SO_REUSEPORT`: the kernel spreads new connections by hash), each serving
//! the connections it accepted to their end. A request is read, looked up in
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

/// How the serving threads take new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// One socket shared by the threads, each accepting while it holds no more
    /// connections than the others (the default).
    #[default]
    Balanced,
    /// One `SO_REUSEPORT` socket per thread: the kernel picks the thread by a hash of
    /// the connection's addresses.
    Reuseport,
}

/// The listening sockets of `n` threads on `addr` (`accept` says how they share it; a
/// port 0 is the port the first socket got). Needs a tokio runtime (the sockets pass
/// through tokio's listener).
pub(crate) fn bind(addr: SocketAddr, n: usize, accept: Accept) -> Result<Vec<std::net::TcpListener>, RealtimeError> {
    if accept == Accept::Balanced {
        return dup(listen(addr, false)?, n);
    }
    let first = listen(addr, true)?;
    let at = first.local_addr().map_err(io(format!("listening on {addr}")))?;
    let mut out = vec![first];
    while out.len() < n.max(1) {
        out.push(listen(at, true)?);
    }
    Ok(out)
}

/// One listening socket on `at`, with `SO_REUSEPORT` when `reuseport` (only then may
/// other sockets, this process's or another of the same user's, bind the port too).
fn listen(at: SocketAddr, reuseport: bool) -> Result<std::net::TcpListener, RealtimeError> {
    let what = || format!("listening on {at}");
    let sock = if at.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(io(what()))?;
    sock.set_reuseaddr(true).map_err(io(what()))?;
    if reuseport {
        sock.set_reuseport(true).map_err(io(what()))?;
    }
    sock.bind(at).map_err(io(what()))?;
    sock.listen(1024).map_err(io(what()))?.into_std().map_err(io(what()))
}

/// `n` listeners from one already bound: the others are duplicates of its descriptor,
/// served balanced as with `accept: balanced` (used when the caller binds the socket
/// itself, as tests do).
pub(crate) fn share(listener: TcpListener, n: usize) -> Result<Vec<std::net::TcpListener>, RealtimeError> {
    dup(listener.into_std().map_err(io("taking the listening socket".into()))?, n)
}

/// `l` and `n - 1` duplicates of its descriptor (one socket, one accept queue).
fn dup(l: std::net::TcpListener, n: usize) -> Result<Vec<std::net::TcpListener>, RealtimeError> {
    let mut out = Vec::with_capacity(n.max(1));
    for _ in 1..n.max(1) {
        out.push(l.try_clone().map_err(io("duplicating the listening socket".into()))?);
    }
    out.push(l);
    Ok(out)
}

/// Serves `app` on each listener from a thread of its own until `shutdown`; returns when
/// every thread has finished its connections. A thread that cannot start stops the
/// others, and its error is returned. With `balanced`, the listeners share one socket.
pub(crate) async fn serve(
    listeners: Vec<std::net::TcpListener>,
    app: impl mware_http::App,
    limits: mware_http::Limits,
    balanced: bool,
    shutdown: CancellationToken,
) -> Result<(), RealtimeError> {
    let mut places = if balanced { mware_http::Balance::shared(listeners.len()) } else { vec![] }.into_iter();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let stats = mware_http::Stats::default();
    let stop = shutdown.child_token();
    let mut done = Vec::with_capacity(listeners.len());
    let mut first_err = None;
    for (i, l) in listeners.into_iter().enumerate() {
        let (app, slots, stats, stop2) = (app.clone(), slots.clone(), stats.clone(), stop.clone());
        let place = places.next();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new().name(format!("rtcache-{i}")).spawn(move || {
            let r = one_thread(l, app, limits, stats, slots, place, stop2.clone());
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
    place: Option<mware_http::Balance>,
    stop: CancellationToken,
) -> Result<(), RealtimeError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(io("starting a serving runtime".into()))?;
    rt.block_on(async move {
        l.set_nonblocking(true).map_err(io("setting the listening socket non-blocking".into()))?;
        let l = TcpListener::from_std(l).map_err(io("registering the listening socket".into()))?;
        mware_http::serve_sharing(l, app, limits, stats, slots, place, stop).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_ways_give_each_thread_a_listener_on_the_one_port() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        for accept in [Accept::Balanced, Accept::Reuseport] {
            let ls = bind(any, 3, accept).unwrap();
            assert_eq!(ls.len(), 3);
            let port = ls[0].local_addr().unwrap().port();
            assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port), "{accept:?}");
            let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            let ready = ls
                .iter()
                .filter(|l| {
                    l.set_nonblocking(true).unwrap();
                    l.accept().is_ok()
                })
                .count();
            assert_eq!(ready, 1, "{accept:?}: the connection is taken once");
        }
    }
}
