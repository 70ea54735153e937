//! A reloaded site file applied without a restart: the UDP mirror is bound anew when its
//! `udp_mirror` section changes (ports, limits, networks; a removed section stops it), and
//! the log's size bounds (`log`) apply to the store from the next line on. (`syslog`
//! follows the site itself, see [`crate::syslog`]; processes are reconciled by the
//! supervisor.)

use crate::logstore::LogStore;
use crate::metrics::Metrics;
use crate::mirror::bind;
use crate::section::{Microservices, MirrorConfig};
use mware_config::Site;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Tries at binding a port the mirror's previous sockets may still hold.
const REBIND_TRIES: u32 = 20;

/// The instance's mirror section and the address of its iface.
fn mirror_of(site: &Site, instance: &str) -> Option<(MirrorConfig, IpAddr)> {
    let p = site.instance(instance)?;
    let cfg = p.role.section::<Microservices>()?.udp_mirror?;
    let ip = p.server.ifaces.get(&p.role.iface).and_then(|a| a.parse().ok()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    Some((cfg, ip))
}

/// Serves the instance's mirror until `cancel`, bound anew at each change of its section.
/// The first bind's failure is returned (the service fails and the host retries); a
/// later one is logged and leaves the mirror off until the next change.
pub async fn mirror(
    mut site: watch::Receiver<Arc<Site>>,
    instance: String,
    metrics: Metrics,
    cancel: CancellationToken,
) -> Result<JoinHandle<()>, crate::MicroError> {
    let mut cur = mirror_of(&site.borrow_and_update(), &instance);
    let mut guard: Option<DropGuard> = match &cur {
        Some((cfg, ip)) => Some(listen(*ip, cfg, &metrics, 1).await?),
        None => None,
    };
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = site.changed() => if r.is_err() { return },
            }
            let new = mirror_of(&site.borrow_and_update(), &instance);
            if new == cur {
                continue;
            }
            drop(guard.take());
            if let Some((cfg, ip)) = &new {
                match listen(*ip, cfg, &metrics, REBIND_TRIES).await {
                    Ok(g) => guard = Some(g),
                    Err(e) => tracing::warn!(error = %e, "udp mirror: the reloaded section cannot be served; the mirror is off"),
                }
            } else {
                tracing::info!("udp mirror: removed from the site file; stopped");
            }
            cur = new;
        }
    }))
}

async fn listen(ip: IpAddr, cfg: &MirrorConfig, metrics: &Metrics, tries: u32) -> Result<DropGuard, crate::MicroError> {
    let mut n = 1;
    loop {
        match bind(ip, cfg, metrics.clone()).await {
            Ok((g, addrs)) => {
                tracing::info!(?addrs, "udp mirror listening");
                return Ok(g);
            }
            Err(e) if n >= tries => return Err(e),
            Err(_) => {
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Applies the `log` section of each reloaded site file to `store`, for the life of the
/// daemon.
pub fn log(store: LogStore, mut site: watch::Receiver<Arc<Site>>, instance: String) {
    tokio::spawn(async move {
        while site.changed().await.is_ok() {
            let cfg = site.borrow_and_update().instance(&instance).and_then(|p| p.role.section::<Microservices>()).unwrap_or_default();
            store.set_limits(&cfg.log);
        }
    });
}
