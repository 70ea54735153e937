//! The watcher of external numbers (issue 26, item 6), while the instance is active:
//! one UDP socket on `calltracking.external.listen`, one [`Subscription`] per
//! configured number and domain, and a loop that sends what they ask for, hands them
//! the answers and NOTIFYs of their dialogs (answering 481 to a NOTIFY of no dialog
//! of ours), and keeps each number's view in the tracker's cache (a change of state
//! goes to the CTI clients). Every second the section is read again: numbers added
//! are subscribed, numbers removed are unsubscribed and forgotten. On stop each
//! active subscription is ended with `Expires: 0` (sent once, not waited for); after a
//! kill the server drops it when its NOTIFYs go unanswered or it expires. The socket
//! is bound when the section first names a number; a later change of `listen` takes
//! effect at the next activity.

use crate::handle::Inner;
use crate::section::{CallTracking, ExternalNumber};
use crate::sipmsg::Msg;
use crate::subscription::Subscription;
use crate::tracker::Tracker;
use mware_host::ServiceContext;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const TICK: Duration = Duration::from_millis(100);
const RELOAD: Duration = Duration::from_secs(1);

type Key = (String, String);

/// Runs until `ctx.cancel`.
pub(crate) async fn run(inner: Arc<Inner>, ctx: ServiceContext, tracker: Arc<Tracker>) {
    // No socket until the section names a number (a reload may add the first).
    let listen = loop {
        match crate::loops::section(&ctx) {
            None => return,
            Some(c) if !c.external.numbers.is_empty() => break c.external.listen,
            Some(_) => {}
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(RELOAD) => {}
        }
    };
    let sock = loop {
        match bind(&listen).await {
            Ok(s) => break s,
            Err(e) => {
                inner.metrics.errors.inc();
                tracing::warn!(listen, error = %e, "external numbers: cannot listen for NOTIFYs; trying again in 5 s");
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        }
    };
    let mut subs: BTreeMap<Key, Subscription> = BTreeMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reloaded = Instant::now() - RELOAD;
    loop {
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => received(&inner, &tracker, &sock, &mut subs, &buf[..n], from).await,
                // ICMP unreachable of an earlier send, on some systems: the timers retry.
                Err(e) => tracing::debug!(error = %e, "external numbers: receive"),
            },
            _ = tick.tick() => {
                if reloaded.elapsed() >= RELOAD {
                    reloaded = Instant::now();
                    if let Some(cfg) = crate::loops::section(&ctx) {
                        reconcile(&cfg, &sock, &tracker, &mut subs).await;
                    }
                }
                timers(&inner, &tracker, &sock, &mut subs).await;
            }
        }
    }
    let now = Instant::now();
    for s in subs.values_mut() {
        if let Some(msg) = s.unsubscribe(now) {
            let _ = sock.send_to(msg.as_bytes(), s.server).await;
        }
    }
    inner.metrics.external_active.set(0);
}

async fn bind(listen: &str) -> std::io::Result<UdpSocket> {
    let addr: SocketAddr = listen.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{listen:?}: {e}")))?;
    UdpSocket::bind(addr).await
}

/// The address the server can send NOTIFYs to: the socket's own, or (unspecified IP)
/// the one this host reaches `server` from.
fn local_for(sock: &UdpSocket, server: SocketAddr) -> std::io::Result<SocketAddr> {
    let own = sock.local_addr()?;
    if !own.ip().is_unspecified() {
        return Ok(own);
    }
    let probe = std::net::UdpSocket::bind(if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
    probe.connect(server)?;
    let ip: IpAddr = probe.local_addr()?.ip();
    Ok(SocketAddr::new(ip, own.port()))
}

/// Starts the subscriptions the section names and ends those it no longer names.
async fn reconcile(cfg: &CallTracking, sock: &UdpSocket, tracker: &Tracker, subs: &mut BTreeMap<Key, Subscription>) {
    let wanted: BTreeMap<Key, &ExternalNumber> =
        cfg.external.numbers.iter().filter_map(|n| Some(((crate::validate::domain(&n.domain).ok()?, n.number.clone()), n))).collect();
    let gone: Vec<Key> = subs.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
    for k in gone {
        if let Some(mut s) = subs.remove(&k) {
            if let Some(msg) = s.unsubscribe(Instant::now()) {
                let _ = sock.send_to(msg.as_bytes(), s.server).await;
            }
            tracker.numbers().remove(&k.0, &k.1);
            tracing::info!(domain = %k.0, number = %k.1, "external number no longer watched");
        }
    }
    for (k, n) in wanted {
        if subs.contains_key(&k) {
            continue;
        }
        let Ok(server) = mware_sip::addr::contact_target(&n.server) else { continue };
        let local = match local_for(sock, server) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(number = %n.number, server = %n.server, error = %e, "external number: no route to its server");
                continue;
            }
        };
        let s = Subscription::new(&k.0, &n.number, &n.server, server, local, cfg.external.expires_s, mware_config::now_ms());
        tracker.set_number(s.view.clone());
        subs.insert(k, s);
    }
}

/// Sends what the subscriptions' timers ask for.
async fn timers(inner: &Inner, tracker: &Tracker, sock: &UdpSocket, subs: &mut BTreeMap<Key, Subscription>) {
    let now = Instant::now();
    for s in subs.values_mut() {
        let before = s.view.clone();
        let (msg, failed) = s.due(now);
        if failed {
            inner.metrics.external_failures.inc();
            tracing::warn!(number = %s.view.number, server = %s.view.server, why = %s.view.last_answer, "external number: subscription failed");
        }
        if let Some(msg) = msg {
            if let Err(e) = sock.send_to(msg.as_bytes(), s.server).await {
                tracing::debug!(number = %s.view.number, error = %e, "external number: send");
            }
        }
        if s.view != before {
            tracker.set_number(s.view.clone());
        }
    }
    inner.metrics.external_active.set(subs.values().filter(|s| s.view.subscription == "active").count() as i64);
}

/// A datagram on the socket: to the subscription whose dialog it belongs to.
async fn received(
    inner: &Inner,
    tracker: &Tracker,
    sock: &UdpSocket,
    subs: &mut BTreeMap<Key, Subscription>,
    data: &[u8],
    from: SocketAddr,
) {
    let Some(m) = Msg::parse(data) else { return };
    let Some(s) = subs.values_mut().find(|s| s.owns(&m)) else {
        if m.method.as_deref().is_some_and(|x| x != "ACK") {
            let _ = sock.send_to(crate::sipmsg::answer(&m, 481, "Subscription Does Not Exist").as_bytes(), from).await;
        }
        return;
    };
    let before = s.view.state.clone();
    let out = s.take(&m, Instant::now(), mware_config::now_ms());
    if let Some(r) = out.reply {
        let _ = sock.send_to(r.as_bytes(), from).await;
    }
    if out.notified {
        inner.metrics.external_notifies.inc();
    }
    if out.failed {
        inner.metrics.external_failures.inc();
    }
    if s.view.state != before {
        tracing::info!(domain = %s.view.domain, number = %s.view.number, state = %s.view.state, "external number");
    }
    tracker.set_number(s.view.clone());
}
