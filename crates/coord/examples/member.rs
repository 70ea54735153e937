//! A group member as a separate process, for tests and for trying the coordinator by hand.
//!
//! ```text
//! member --instance mware1 --group 1 --order 10 (--site site.json | --backend etcd --endpoints URL[,URL] [--prefix P] | --backend embedded --path FILE) [--ttl-ms 3000] [--rank-wait-ms 300] [--margin-ms 1000]
//! ```
//!
//! Prints one JSON line per event to stdout, each with `ts_ms` (wall clock) and `instance`:
//! `joined`, `active` (epoch, reason), `passive` (reason); while active it writes a counter
//! to the KV key `counter` with its fence every 100 ms and prints `write` (ok),
//! `fenced` (refused: stale epoch) or `write_error`. Logs go to stderr (`RUST_LOG`).

use mware_config::{Backend, Coordination};
use mware_coord::{kv_put, now_ms, Activity, CoordError, Coordinator, EmbeddedCoordinator, EtcdCoordinator, Fence, MemberInfo, Settings};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn emit(instance: &str, event: &str, mut extra: serde_json::Value) {
    let o = extra.as_object_mut().expect("object");
    o.insert("ts_ms".into(), json!(now_ms()));
    o.insert("instance".into(), json!(instance));
    o.insert("event".into(), json!(event));
    println!("{extra}");
}

fn args() -> anyhow::Result<HashMap<String, String>> {
    let mut m = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let Some(name) = k.strip_prefix("--") else { anyhow::bail!("expected --flag, found {k:?}") };
        let v = it.next().ok_or_else(|| anyhow::anyhow!("expected a value after {k}"))?;
        m.insert(name.to_string(), v);
    }
    Ok(m)
}

async fn coordinator(a: &HashMap<String, String>) -> anyhow::Result<Arc<dyn Coordinator>> {
    if let Some(path) = a.get("site") {
        let site: mware_config::Site = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        return Ok(mware_coord::connect(&site).await?);
    }
    let mut c = Coordination::default();
    if let Some(v) = a.get("ttl-ms") {
        c.lease_ttl_ms = v.parse()?;
    }
    if let Some(v) = a.get("margin-ms") {
        c.step_down_margin_ms = v.parse()?;
    }
    if let Some(v) = a.get("rank-wait-ms") {
        c.rank_wait_ms = v.parse()?;
    }
    if let Some(v) = a.get("failback-after-s") {
        c.failback_after_s = Some(v.parse()?);
    }
    c.prefix = a.get("prefix").cloned();
    let site = a.get("site-name").cloned().unwrap_or_else(|| "test".into());
    match a.get("backend").map(String::as_str) {
        Some("etcd") => {
            c.backend = Backend::Etcd;
            c.endpoints = a.get("endpoints").map(|e| e.split(',').map(str::to_string).collect()).unwrap_or_default();
            Ok(Arc::new(EtcdCoordinator::connect(Settings { site, coordination: c }).await?))
        }
        Some("embedded") | None => {
            c.path = a.get("path").cloned().unwrap_or(c.path);
            Ok(Arc::new(EmbeddedCoordinator::open(Settings { site, coordination: c }).await?))
        }
        Some(b) => anyhow::bail!("expected backend etcd or embedded, found {b}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let a = args()?;
    let instance = a.get("instance").cloned().ok_or_else(|| anyhow::anyhow!("expected --instance"))?;
    let group: u32 = a.get("group").map(|g| g.parse()).transpose()?.unwrap_or(1);
    let order: i64 = a.get("order").map(|g| g.parse()).transpose()?.unwrap_or(10);
    let coord = coordinator(&a).await?;
    let info = MemberInfo {
        instance: instance.clone(),
        group,
        order,
        address: "127.0.0.1:0".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        since_ms: now_ms(),
    };
    let membership = coord.join(info).await?;
    emit(&instance, "joined", json!({"group": group, "order": order}));
    let mut rx = membership.activity.clone();
    let watcher = {
        let instance = instance.clone();
        let mut rx = rx.clone();
        tokio::spawn(async move {
            let mut last_active: Option<u64> = None;
            loop {
                let a = rx.borrow_and_update().clone();
                match a {
                    Activity::Active { epoch, reason, .. } if last_active != Some(epoch) => {
                        last_active = Some(epoch);
                        emit(&instance, "active", json!({"epoch": epoch, "reason": reason}));
                    }
                    Activity::Passive { reason } if last_active.is_some() => {
                        last_active = None;
                        emit(&instance, "passive", json!({"reason": reason}));
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let mut n: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        let Some(epoch) = rx.borrow_and_update().epoch() else { continue };
        let fence = Fence { group, epoch };
        n += 1;
        match kv_put(coord.as_ref(), &fence, "counter", format!("{instance}:{n}").into_bytes()).await {
            Ok(rev) => emit(&instance, "write", json!({"epoch": epoch, "n": n, "revision": rev})),
            Err(e @ CoordError::Fenced { .. }) => emit(&instance, "fenced", json!({"epoch": epoch, "error": e.to_string()})),
            Err(e) => emit(&instance, "write_error", json!({"epoch": epoch, "error": e.to_string()})),
        }
    }
    membership.leave().await;
    watcher.abort();
    emit(&instance, "left", json!({}));
    Ok(())
}
