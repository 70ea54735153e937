//! The control loop of one group: observe both servers, [`decide`], act, publish.
//!
//! Acting always starts with a fenced KV write of the intent (and, for a promotion, of
//! the new master as "master last"); if the coordinator refuses it, this instance has
//! lost activity and does nothing. Before that write, the SSH session to the server to
//! act on is opened (host key checked, logged in), so a refused key or login changes
//! nothing, not even the record. Right before promoting, the former master is probed
//! once more. After promoting, the new master must accept writes; after a rebuild, the
//! server must stream from the master.

use crate::config::{GroupSpec, ServerSpec};
use crate::decide::{decide, promotion_pending, Decision, Observed, ServerObs, Snapshot};
use crate::error::{PgctlError, Result};
use crate::hostcheck::HostKeys;
use crate::metrics::decision_kind;
use crate::probe::{self, Health};
use crate::remote;
use crate::section::Rejoin;
use crate::status::{record, GroupCtx, GroupStatus, ServerStatus, PROBE_TIMEOUT};
use crate::store::{self, Intent, Persisted};
use crate::trigger::TriggerFile;
use mware_coord::now_ms;
use std::time::{Duration, Instant};

const SSH_REBUILD: Duration = Duration::from_secs(4 * 3600);

struct Tracker {
    no_master_since: Instant,
    unreachable_since: [Option<Instant>; 2],
    last_master_lsn: Option<u64>,
    last_reason: String,
    backoff_until: Option<Instant>,
    /// The warnings of the last cycle (each is logged once, when it appears).
    warned: Vec<String>,
    keys: HostKeys,
    /// An SSH session to the standby that waits out `promote_after`, opened during the
    /// wait so the promotion does not pay for a login (index of the server, session).
    warm: Option<(usize, mware_ssh::Session)>,
    /// Time left until that promotion is due: the loop wakes then, not a whole interval on.
    due_in: Option<Duration>,
}

/// Runs the loop of `g` until cancelled. Errors of one cycle are shown and retried.
pub async fn run_group(g: GroupSpec, cx: GroupCtx) {
    let mut t = Tracker {
        no_master_since: Instant::now(),
        unreachable_since: [None, None],
        last_master_lsn: None,
        last_reason: String::new(),
        backoff_until: None,
        warned: Vec::new(),
        keys: HostKeys::default(),
        warm: None,
        due_in: None,
    };
    cx.journal.info(&format!(
        "controlling {} and {} (promote after {} s, referee {})",
        g.servers[0].name,
        g.servers[1].name,
        g.promote_after.as_secs(),
        g.referee.as_deref().unwrap_or("none")
    ));
    loop {
        if let Err(e) = cycle(&g, &cx, &mut t).await {
            let msg = e.to_string();
            if msg != t.last_reason {
                cx.journal.error(&msg);
                t.last_reason = msg.clone();
            }
            set_error(&cx, &g.key, msg);
            if matches!(e, PgctlError::Coord(mware_coord::CoordError::Fenced { .. })) {
                cx.journal.error("this instance is no longer active for the group: stopping the controller loop");
                return;
            }
        }
        let pause = t.due_in.map_or(g.interval, |left| g.interval.min(left));
        tokio::select! {
            _ = cx.cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn set_error(cx: &GroupCtx, key: &str, msg: String) {
    let mut st = cx.statuses.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = st.get_mut(key) {
        s.last_error = Some(msg);
        s.updated_ms = now_ms();
    }
}

async fn observe(s: &ServerSpec) -> std::result::Result<Health, String> {
    probe::probe(s, PROBE_TIMEOUT).await.map_err(|e| e.to_string())
}

/// What one cycle saw and decided.
struct Cycle {
    snap: Snapshot,
    healths: [std::result::Result<Health, String>; 2],
    persisted: Persisted,
    d: Decision,
}

impl Cycle {
    /// Shows the cycle in the group's status, with what was done or what failed.
    fn publish(&self, cx: &GroupCtx, g: &GroupSpec, keys: &HostKeys, action: Option<String>, error: Option<String>) {
        publish(cx, g, &self.snap, &self.healths, keys, &self.persisted, &self.d, action, error);
    }
}

async fn cycle(g: &GroupSpec, cx: &GroupCtx, t: &mut Tracker) -> Result<()> {
    let persisted = store::load(cx.coord.as_ref(), cx.fence.group, &g.key).await?;
    let (ha, hb, ()) = tokio::join!(observe(&g.servers[0]), observe(&g.servers[1]), t.keys.refresh(g, &cx.journal));
    let healths = [ha, hb];
    let now = Instant::now();
    let obs = track_servers(g, t, &healths, now);
    track_master(t, &obs, now);
    let mut snap = snapshot(g, t, &persisted, obs, now);
    warn_new(cx, t, &snap);
    prepare_promotion(g, t, &snap).await;
    let d = decide_with_referee(g, &mut snap).await;
    let decided = Instant::now();
    let reason = log_decision(cx, t, &d);
    let mut c = Cycle { snap, healths, persisted, d };
    cx.metrics.observe(&g.key, &c.snap, &c.d);
    c.publish(cx, g, &t.keys, None, None);
    if backing_off(t, &c.d) {
        return Ok(());
    }
    // The prepared session is handed over only to a promotion: taken on every cycle, it
    // would be dropped by each wait and opened again by the next cycle.
    let warm = if matches!(c.d, Decision::Promote { .. }) { t.warm.take() } else { None };
    let outcome = act(g, cx, &mut c.persisted, &c.d, decided, warm).await;
    count_outcome(cx, g, &c.d, &outcome);
    report_outcome(g, cx, t, &c, &reason, outcome)
}

/// While a promotion waits out `promote_after`: opens the SSH session to its standby (a
/// failure is left to the promotion, which connects again and reports it) and sets when
/// the loop must wake. Otherwise closes a session opened earlier.
async fn prepare_promotion(g: &GroupSpec, t: &mut Tracker, snap: &Snapshot) {
    match promotion_pending(snap) {
        Some((target, left)) => {
            t.due_in = Some(left).filter(|l| !l.is_zero());
            let warm_for = t.warm.as_ref().map(|w| w.0);
            if warm_for != Some(target) && snap.ssh_refused[target].is_none() {
                if let Some((_, old)) = t.warm.take() {
                    old.close().await;
                }
                t.warm = g.servers[target].ssh.connect().await.ok().map(|s| (target, s));
            }
        }
        None => {
            t.due_in = None;
            if let Some((_, old)) = t.warm.take() {
                old.close().await;
            }
        }
    }
}

/// What each server was seen as, with how long it has been unreachable (tracked in `t`).
fn track_servers(g: &GroupSpec, t: &mut Tracker, healths: &[std::result::Result<Health, String>; 2], now: Instant) -> Vec<ServerObs> {
    let mut obs = Vec::new();
    for (i, h) in healths.iter().enumerate() {
        let role = match h {
            Ok(h) if h.in_recovery => Observed::Standby,
            Ok(_) => Observed::Master,
            Err(_) => Observed::Unreachable,
        };
        if role == Observed::Unreachable {
            t.unreachable_since[i].get_or_insert(now);
        } else {
            t.unreachable_since[i] = None;
        }
        let ok = h.as_ref().ok();
        obs.push(ServerObs {
            name: g.servers[i].name.clone(),
            role,
            unreachable_for: t.unreachable_since[i].map(|s| now - s).unwrap_or_default(),
            timeline: ok.and_then(|h| h.timeline),
            lsn: ok.and_then(|h| h.lsn),
            receive_lsn: ok.and_then(|h| h.receive_lsn),
            signal_file: g.servers[i].signal.clone(),
            trigger_file: match ok {
                Some(h) if h.in_recovery => {
                    TriggerFile::from_setting(h.server_version_num, h.promote_trigger_file.as_deref(), &g.servers[i].data)
                }
                _ => TriggerFile::Unknown,
            },
        });
    }
    obs
}

/// Remembers when a master was last seen, and the highest LSN it had.
fn track_master(t: &mut Tracker, obs: &[ServerObs], now: Instant) {
    if let Some(m) = obs.iter().position(|o| o.role == Observed::Master) {
        t.no_master_since = now;
        t.last_master_lsn = obs[m].lsn.max(t.last_master_lsn);
    }
}

/// The input of [`decide`]: what was seen, what is recorded, the group's settings.
fn snapshot(g: &GroupSpec, t: &Tracker, persisted: &Persisted, obs: Vec<ServerObs>, now: Instant) -> Snapshot {
    let idx = |name: &Option<String>| name.as_ref().and_then(|n| g.servers.iter().position(|s| &s.name == n));
    let pending_rebuild = persisted.intent.as_ref().filter(|i| i.action == "rebuild").and_then(|i| idx(&Some(i.target.clone())));
    let servers: [ServerObs; 2] = [obs[0].clone(), obs[1].clone()];
    Snapshot {
        servers,
        last_master: idx(&persisted.last_master),
        no_master_for: now - t.no_master_since,
        promote_after: g.promote_after,
        referee_ok: None,
        last_master_lsn: t.last_master_lsn,
        max_lag: g.max_lag,
        pending_rebuild,
        rewind: g.rejoin == Rejoin::Rewind,
        ssh_refused: t.keys.refusals(),
    }
}

/// Logs each warning once, when it appears.
fn warn_new(cx: &GroupCtx, t: &mut Tracker, snap: &Snapshot) {
    let warnings = crate::status::warnings(snap);
    for w in warnings.iter().filter(|w| !t.warned.contains(w)) {
        cx.journal.warn(w);
    }
    t.warned = warnings;
}

/// Decides; a promotion is decided again with the referee's answer, if there is one.
async fn decide_with_referee(g: &GroupSpec, snap: &mut Snapshot) -> Decision {
    let mut d = decide(snap);
    if matches!(d, Decision::Promote { .. }) {
        if let Some(r) = &g.referee {
            snap.referee_ok = Some(crate::referee::reachable(r).await);
            d = decide(snap);
        }
    }
    d
}

/// Logs a decision when it changed (a wait or healthy only when its kind changed); the
/// decision's reason.
fn log_decision(cx: &GroupCtx, t: &mut Tracker, d: &Decision) -> String {
    let reason = d.to_string();
    let changed = reason != t.last_reason;
    if changed && (!matches!(d, Decision::Wait { .. } | Decision::Healthy { .. }) || kind(&t.last_reason) != kind(&reason)) {
        cx.journal.info(&reason);
    }
    t.last_reason = reason.clone();
    reason
}

/// True while a failed action backs off and `d` would act again.
fn backing_off(t: &Tracker, d: &Decision) -> bool {
    t.backoff_until.is_some_and(|until| Instant::now() < until && matches!(d, Decision::Promote { .. } | Decision::Rebuild { .. }))
}

/// Counts the action taken, by its outcome.
fn count_outcome(cx: &GroupCtx, g: &GroupSpec, d: &Decision, outcome: &Result<Option<String>>) {
    let action = match d {
        Decision::Healthy { .. } => "complete",
        other => decision_kind(other),
    };
    match outcome {
        Ok(Some(done)) if done.contains(" skipped: ") => cx.metrics.action(&g.key, action, "skipped"),
        // The rewind failure was counted when it happened; the basebackup fallback did it.
        Ok(Some(done)) if done.contains("rebuilt with pg_basebackup instead") => cx.metrics.action(&g.key, "rebuild", "ok"),
        Ok(Some(_)) => cx.metrics.action(&g.key, action, "ok"),
        Ok(None) => {}
        Err(_) => cx.metrics.action(&g.key, action, "failed"),
    }
}

/// Logs and shows what the action did; a failure backs off, records a refused host key,
/// and ends the loop (as the error) when the fence is stale.
fn report_outcome(g: &GroupSpec, cx: &GroupCtx, t: &mut Tracker, c: &Cycle, reason: &str, outcome: Result<Option<String>>) -> Result<()> {
    match outcome {
        Ok(Some(done)) => {
            cx.journal.info(&done);
            t.backoff_until = None;
            c.publish(cx, g, &t.keys, Some(done), None);
        }
        Ok(None) => {}
        Err(e) => {
            let msg = format!("{reason}: failed: {e}");
            cx.journal.error(&msg);
            t.last_reason = msg.clone();
            t.backoff_until = Some(Instant::now() + (g.interval * 5).max(Duration::from_secs(10)));
            if let (PgctlError::Ssh(se), Decision::Promote { target, name, .. } | Decision::Rebuild { target, name, .. }) = (&e, &c.d) {
                if se.is_host_key_refusal() {
                    t.keys.refused(*target, name, se, &cx.journal);
                }
            }
            c.publish(cx, g, &t.keys, None, Some(msg));
            if matches!(e, PgctlError::Coord(mware_coord::CoordError::Fenced { .. })) {
                return Err(e);
            }
        }
    }
    Ok(())
}

fn kind(reason: &str) -> String {
    reason.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

#[allow(clippy::too_many_arguments)]
fn publish(
    cx: &GroupCtx,
    g: &GroupSpec,
    snap: &Snapshot,
    healths: &[std::result::Result<Health, String>; 2],
    keys: &HostKeys,
    p: &Persisted,
    d: &Decision,
    action: Option<String>,
    error: Option<String>,
) {
    let master = snap.servers.iter().position(|o| o.role == Observed::Master);
    let master_lsn = master.and_then(|m| snap.servers[m].lsn);
    let servers = (0..2)
        .map(|i| {
            let o = &snap.servers[i];
            let (ssh_host_key, ssh_error) = keys.status(i);
            ServerStatus {
                name: o.name.clone(),
                role: o.role,
                error: healths[i].as_ref().err().cloned(),
                unreachable_for_s: o.unreachable_for.as_secs(),
                health: healths[i].as_ref().ok().cloned(),
                lag_bytes: match (o.role, master_lsn, o.lsn) {
                    (Observed::Standby, Some(m), Some(r)) => Some(m.saturating_sub(r)),
                    _ => None,
                },
                ssh_host_key,
                ssh_error,
            }
        })
        .collect();
    let mut st = cx.statuses.lock().unwrap_or_else(|e| e.into_inner());
    let prev = st.remove(&g.key);
    let has_master = master.is_some();
    if prev.as_ref().is_none_or(|p| p.master.is_some() != has_master) {
        let (state, reason) = match master {
            Some(m) => ("ok", format!("master is {}", g.servers[m].name)),
            None => ("failing", format!("no master: {d}")),
        };
        cx.events.publish(mware_host::EventKind::Item { source: "pgctl".into(), item: g.key.clone(), state: state.into(), reason });
    }
    let mut s = GroupStatus {
        key: g.key.clone(),
        master: master.map(|m| g.servers[m].name.clone()),
        last_master: p.last_master.clone(),
        servers,
        decision: Some(d.clone()),
        reason: d.to_string(),
        last_action: prev.as_ref().and_then(|p| p.last_action.clone()),
        last_error: prev.as_ref().and_then(|p| p.last_error.clone()),
        warnings: crate::status::warnings(snap),
        updated_ms: now_ms(),
    };
    if action.is_some() {
        s.last_action = action;
        s.last_error = None;
    }
    if error.is_some() {
        s.last_error = error;
    }
    st.insert(g.key.clone(), s);
}

/// Acts on a decision taken at `decided`. `Ok(Some(text))` describes a completed action.
async fn act(
    g: &GroupSpec,
    cx: &GroupCtx,
    p: &mut Persisted,
    d: &Decision,
    decided: Instant,
    warm: Option<(usize, mware_ssh::Session)>,
) -> Result<Option<String>> {
    let coord = cx.coord.as_ref();
    match d {
        Decision::Healthy { master, .. } => {
            if p.intent.is_some() {
                let done = p.intent.take().map(|i| format!("{} of {} is complete", i.action, i.target));
                store::save(coord, &cx.fence, &g.key, p, None).await?;
                return Ok(done);
            }
            let _ = master;
            Ok(None)
        }
        Decision::Wait { .. } => Ok(None),
        Decision::Record { master, name } => {
            p.last_master = Some(name.clone());
            if p.intent.as_ref().is_some_and(|i| i.action == "promote") {
                p.intent = None;
            }
            store::save(coord, &cx.fence, &g.key, p, Some(&record(&g.servers[*master]))).await?;
            Ok(Some(format!("recorded {name} as the master of group {}", g.key)))
        }
        Decision::Promote { target, name, method, .. } => {
            let warm = match warm {
                Some((i, s)) if i == *target => Some(s),
                Some((_, s)) => {
                    s.close().await;
                    None
                }
                None => None,
            };
            crate::promote::promote(g, cx, p, d, (*target, name, method), decided, warm).await
        }
        Decision::Rebuild { target, name, master, master_name, rewind, .. } => {
            let s = &g.servers[*target];
            let m = &g.servers[*master];
            let mh = probe::probe(m, PROBE_TIMEOUT).await?;
            if mh.in_recovery {
                return Ok(Some(format!("rebuild of {name} skipped: {master_name} is no longer a master")));
            }
            let ssh = s.ssh.connect().await?;
            p.last_master = Some(master_name.clone());
            p.intent = Some(Intent { action: "rebuild".into(), target: name.clone(), epoch: cx.fence.epoch, at_ms: now_ms() });
            store::save(coord, &cx.fence, &g.key, p, Some(&record(m))).await?;
            let started = Instant::now();
            let app = format!("mware_{}", g.key);
            let mut fallback = String::new();
            if *rewind {
                match rewind_and_verify(&ssh, s, m, &app, cx, name, master_name).await {
                    Ok(()) => {
                        p.intent = None;
                        store::save(coord, &cx.fence, &g.key, p, None).await?;
                        return Ok(Some(format!(
                            "{d}: done with pg_rewind (no basebackup), {name} streams from {master_name} ({} s)",
                            started.elapsed().as_secs()
                        )));
                    }
                    Err(e @ (PgctlError::Remote { .. } | PgctlError::Verify { .. })) => {
                        cx.metrics.action(&g.key, "rewind", "failed");
                        let msg = format!("pg_rewind of {name} failed ({e}); falling back to pg_basebackup");
                        cx.journal.error(&msg);
                        fallback = format!("; pg_rewind failed ({e}), so it was rebuilt with pg_basebackup instead");
                        // Re-check the fence before the second, heavier action.
                        store::save(coord, &cx.fence, &g.key, p, None).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            let out = remote::run(&ssh, s, "rebuild", &remote::rebuild_script(s, m, &app), true, SSH_REBUILD).await?;
            ssh.close().await;
            for line in out.lines() {
                cx.journal.info(&format!("{name}: {line}"));
            }
            verify_streams(s, m, name, master_name, Duration::from_secs(120)).await?;
            p.intent = None;
            store::save(coord, &cx.fence, &g.key, p, None).await?;
            Ok(Some(format!("{d}: done, {name} streams from {master_name} ({} s){fallback}", started.elapsed().as_secs())))
        }
    }
}

/// Rejoins `s` as a standby of `m` with pg_rewind and checks that it streams.
async fn rewind_and_verify(
    ssh: &mware_ssh::Session,
    s: &ServerSpec,
    m: &ServerSpec,
    app: &str,
    cx: &GroupCtx,
    name: &str,
    master_name: &str,
) -> Result<()> {
    // A recently promoted master's control file shows its new timeline only after a
    // checkpoint; pg_rewind reads it from there (needs superuser or pg_checkpoint).
    if let Err(e) = probe::checkpoint(m, PROBE_TIMEOUT * 10).await {
        cx.journal.info(&format!("checkpoint on {master_name} before pg_rewind not possible ({e}); trying anyway"));
    }
    let out = remote::run(ssh, s, "pg_rewind", &remote::rewind_script(s, m, app), true, SSH_REBUILD).await?;
    for line in out.lines() {
        cx.journal.info(&format!("{name}: {line}"));
    }
    verify_streams(s, m, name, master_name, Duration::from_secs(60)).await
}

/// Waits up to `limit` until `s` is a standby streaming from `m`.
async fn verify_streams(s: &ServerSpec, m: &ServerSpec, name: &str, master_name: &str, limit: Duration) -> Result<()> {
    let verify_from = Instant::now();
    loop {
        let sh = probe::probe(s, PROBE_TIMEOUT).await;
        let standby = sh.as_ref().is_ok_and(|h| h.in_recovery);
        let streaming = sh.as_ref().is_ok_and(|h| h.wal_receiver.as_deref() == Some("streaming"))
            || probe::probe(m, PROBE_TIMEOUT).await.is_ok_and(|h| h.streaming_replicas.unwrap_or(0) > 0);
        if standby && streaming {
            return Ok(());
        }
        if verify_from.elapsed() > limit {
            return Err(PgctlError::Verify {
                what: format!("rejoining {name}"),
                expected: format!("a standby streaming from {master_name}"),
                found: match sh {
                    Ok(h) if h.in_recovery => "a standby that does not stream".into(),
                    Ok(_) => "a master".into(),
                    Err(e) => e.to_string(),
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
