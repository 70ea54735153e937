//! The three loops of an activity, each until `ctx.cancel`: the static registrations'
//! cycle (every `resync_ms`, or at once after a PUT or DELETE), their OPTIONS checks
//! (every `options.interval_ms`), and the sg checks (every `sg_check.interval_ms`). Each
//! reads the group's section afresh from the running site, so a reload takes effect on
//! the next round.

use crate::handle::{Inner, Running};
use crate::section::{CallTracking, Sg};
use crate::sg::{self, Decision, SgView};
use mware_host::{EventKind, ServiceContext};
use std::sync::Arc;
use std::time::Duration;

/// The group's section as the running site has it now.
pub fn section(ctx: &ServiceContext) -> Option<CallTracking> {
    ctx.site.borrow().instance(&ctx.instance).and_then(|p| p.role.section::<CallTracking>())
}

/// The static registrations' cycle.
pub async fn statics(inner: Arc<Inner>, ctx: ServiceContext, run: Running) {
    loop {
        let Some(cfg) = section(&ctx) else { return };
        match crate::reconcile::cycle(&inner, &cfg, &run.store, &run.registrar).await {
            Ok(done) => inner.set_last_cycle(done),
            Err(e) => {
                inner.metrics.errors.inc();
                tracing::warn!(error = %e, "static registrations: the cycle failed; it runs again");
            }
        }
        let pause = Duration::from_millis(cfg.resync_ms.into());
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = run.kick.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// OPTIONS checks of the static contacts.
pub async fn options(inner: Arc<Inner>, ctx: ServiceContext, run: Running) {
    loop {
        let Some(cfg) = section(&ctx) else { return };
        match run.store.load().await {
            Ok((entries, _)) => crate::probe::check_all(&inner, &cfg, &entries, &ctx.events).await,
            Err(e) => tracing::warn!(error = %e, "static registrations: cannot read them to check"),
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(cfg.options.interval_ms.into())) => {}
        }
    }
}

/// The sg checks.
pub async fn sgs(inner: Arc<Inner>, ctx: ServiceContext, run: Running) {
    loop {
        let Some(cfg) = section(&ctx) else { return };
        let interval = Duration::from_millis(cfg.sg_check.interval_ms.into());
        let timeout = Duration::from_millis(cfg.sg_check.timeout_ms.into());
        let checks = cfg.sg.iter().cloned().map(|s| async move {
            let r = match mware_sip::addr::contact_target(&s.address) {
                Ok(a) => mware_sip::options::ping(a, &s.address, timeout).await.map(|a| format!("{} {}", a.code, a.reason)),
                Err(e) => Ok(e), // the check refused it already
            };
            (s, r.map_err(|e| e.to_string()))
        });
        for (s, r) in futures::future::join_all(checks).await {
            one(&inner, &ctx, &run, &cfg, &s, r).await;
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn one(inner: &Inner, ctx: &ServiceContext, run: &Running, cfg: &CallTracking, s: &Sg, r: Result<String, String>) {
    let now = mware_config::now_ms();
    let prev = inner.sg(&s.name).unwrap_or(SgView {
        name: s.name.clone(),
        state: "unknown".into(),
        failures: 0,
        since_ms: now,
        last_answer: String::new(),
        removed: 0,
    });
    let d = sg::decide(prev.failures, prev.state == "lost", r.is_ok(), cfg.sg_check.fail_after);
    let label = crate::metrics::SgLabel { sg: s.name.clone() };
    inner.metrics.sg_up.get_or_create(&label).set(i64::from(d.state() == "up"));
    let mut v = SgView {
        failures: if r.is_ok() { 0 } else { prev.failures + 1 },
        last_answer: r.clone().unwrap_or_else(|e| e),
        state: d.state().into(),
        since_ms: if d.state() != prev.state { now } else { prev.since_ms },
        ..prev.clone()
    };
    let mut reason = format!("sg {} {d} ({})", s.name, v.last_answer);
    if let Decision::Lost { .. } = d {
        let via = s.path_address.as_deref().unwrap_or(&s.address);
        match mware_sip::addr::contact_target(via) {
            Ok(via) => match sg::clean(&run.registrar, via, &s.name).await {
                Ok(n) => {
                    v.removed = n;
                    inner.metrics.sg_removed.get_or_create(&label).inc_by(n);
                    reason = format!("{reason}; removed {n} contact(s) registered through it");
                }
                Err(e) => {
                    // Not lost yet as far as the next round is concerned: it tries again.
                    inner.metrics.errors.inc();
                    v.state = "failing".into();
                    reason = format!("{reason}; removing its contacts failed, retried next round: {e}");
                }
            },
            Err(e) => reason = format!("{reason}; its path address is wrong: {e}"),
        }
    }
    if d.changes(&prev.state) {
        let health = match v.state.as_str() {
            "up" => "ok",
            "lost" => "failing",
            _ => "warning",
        };
        tracing::info!(sg = %s.name, state = %v.state, reason, "sg");
        ctx.events.publish(EventKind::Item { source: "calltracking".into(), item: format!("sg {}", s.name), state: health.into(), reason });
    }
    inner.set_sg(v);
}
