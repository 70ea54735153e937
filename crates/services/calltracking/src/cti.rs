//! The CTI provider's adapter supervisor: for each `cti_adapters` entry of the role
//! (`key`, `iface`, `port`) one adapter server runs on the entry's address while the
//! service runs. An adapter that fails (its port taken, its listener broken) is shown
//! failed with the reason and started again after a pause that grows (200 ms doubling,
//! at most 5 s, with jitter; back to the shortest after a minute of running). Built in:
//! [`WS_KEY`], the WebSocket JSON adapter (`cti_ws`), and [`GRPC_KEY`], the gRPC adapter
//! ([`cti_grpc`](crate::cti_grpc)); an entry with another key is shown unsupported and not started.

use crate::adapter::Adapter;
use crate::handle::Inner;
use crate::tracker::Tracker;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_config::CtiAdapter;
use mware_host::ServiceContext;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The key of the built-in WebSocket JSON adapter.
pub const WS_KEY: &str = "websocket-json";
/// The key of the built-in gRPC adapter (`proto/cti.proto`).
pub const GRPC_KEY: &str = "grpc";

/// Restart pauses: 200 ms doubling to 5 s, with jitter.
const BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_secs(5))
    .with_factor(2.0)
    .with_jitter()
    .without_max_times();

/// Running this long resets the pauses.
const STABLE: Duration = Duration::from_secs(60);

/// The address of an entry: its `iface` alias on this instance's server (`default`:
/// the role's own `iface`), and its port.
pub fn address(ctx: &ServiceContext, a: &CtiAdapter) -> Result<SocketAddr, String> {
    let site = ctx.site.borrow();
    let placed = site.instance(&ctx.instance).ok_or("this instance is not in the site")?;
    let alias = if a.iface == "default" { placed.role.iface.as_str() } else { a.iface.as_str() };
    let ip = placed.server.ifaces.get(alias).ok_or_else(|| format!("no interface {alias:?} on this server"))?;
    format!("{ip}:{}", a.port).parse().map_err(|e| format!("{ip}:{}: {e}", a.port))
}

/// Runs every adapter of the role until `ctx.cancel`.
pub(crate) async fn supervise(inner: Arc<Inner>, ctx: ServiceContext, tracker: Arc<Tracker>) {
    let entries = ctx.site.borrow().instance(&ctx.instance).map(|p| p.role.cti_adapters.clone()).unwrap_or_default();
    let mut set = tokio::task::JoinSet::new();
    for e in entries {
        let addr = match address(&ctx, &e) {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(key = %e.key, why, "a CTI adapter has no address here");
                continue;
            }
        };
        let a = Arc::new(Adapter::new(e.key.clone(), addr));
        inner.add_adapter(a.clone());
        set.spawn(keep_running(a, ctx.clone(), tracker.clone(), inner.clone()));
    }
    set.join_all().await;
}

async fn keep_running(a: Arc<Adapter>, ctx: ServiceContext, tracker: Arc<Tracker>, inner: Arc<Inner>) {
    if a.key != WS_KEY && a.key != GRPC_KEY {
        a.set("unsupported", format!("no adapter for the key {:?} (built in: {WS_KEY:?}, {GRPC_KEY:?})", a.key));
        return;
    }
    let token = ctx.site.borrow().api.token_env.clone();
    let mut pauses = BACKOFF.build();
    loop {
        let started = Instant::now();
        let key = std::env::var(&token).ok();
        let r = if a.key == GRPC_KEY {
            crate::cti_grpc::serve(&a, key, &tracker, &inner.metrics, &ctx.cancel).await
        } else {
            crate::cti_ws::serve(&a, key, &tracker, &inner.metrics, &ctx.cancel).await
        };
        let why = match r {
            Ok(()) => return,
            Err(e) => e,
        };
        if started.elapsed() > STABLE {
            pauses = BACKOFF.build();
        }
        let pause = pauses.next().unwrap_or(Duration::from_secs(5));
        a.restarted();
        inner.metrics.cti_restarts.inc();
        a.set("failed", format!("{why}; started again in {} ms", pause.as_millis()));
        tracing::warn!(key = %a.key, address = %a.addr, why, pause_ms = pause.as_millis() as u64, "CTI adapter failed");
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
