//! Acting on a promotion decision: check the former master once more, write the intent
//! (fenced), promote the standby the way the decision chose ([`PromoteMethod`]), and wait
//! until it accepts writes.
//!
//! `pg_ctl promote -W` only signals the server; the promotion is done when the server
//! accepts a write, checked every 20 ms (pg_ctl's own wait checks every 100 ms). The SSH
//! session is usually the one opened while the promotion waited out `promote_after`. The signal file is touched only when the standby watches it (decided in
//! [`crate::trigger`]); the server polls for it, so that way can take a few seconds, and
//! `pg_ctl promote` still follows if nothing happened after [`SIGNAL_FALLBACK`].

use crate::config::GroupSpec;
use crate::decide::Decision;
use crate::error::Result;
use crate::probe;
use crate::remote;
use crate::status::{record, GroupCtx, PROBE_TIMEOUT, SSH_SHORT};
use crate::store::{self, Intent, Persisted};
use crate::trigger::PromoteMethod;
use mware_coord::now_ms;
use std::time::{Duration, Instant};

/// How long a touched signal file may take before `pg_ctl promote` is run as well.
pub const SIGNAL_FALLBACK: Duration = Duration::from_secs(15);
/// How long the promoted server may take to accept writes before the action fails.
const WRITES_LIMIT: Duration = Duration::from_secs(90);
/// Pause between two checks of whether the server accepts writes (a promotion takes tens
/// of milliseconds; a coarser poll was a visible share of the failover time).
const POLL: Duration = Duration::from_millis(20);

/// Promotes `target` (index, name, method) of `g` for the decision `d` taken at `decided`.
/// `Ok(Some(text))` says what was done and how long after the decision writes were accepted.
pub(crate) async fn promote(
    g: &GroupSpec,
    cx: &GroupCtx,
    p: &mut Persisted,
    d: &Decision,
    (target, name, method): (usize, &String, &PromoteMethod),
    decided: Instant,
    warm: Option<mware_ssh::Session>,
) -> Result<Option<String>> {
    let s = &g.servers[target];
    let other = &g.servers[1 - target];
    if probe::probe(other, PROBE_TIMEOUT).await.is_ok_and(|h| !h.in_recovery) {
        return Ok(Some(format!("promotion of {name} skipped: {} answers as master again", other.name)));
    }
    // SSH first (host key checked, logged in; usually opened during the wait): a refusal
    // records nothing. Then the fenced intent: the new master is "master last" before it
    // exists, so an instance taking over mid-way promotes the same server or nothing.
    let (mut ssh, mut opened_early) = match warm {
        Some(w) => (w, true),
        None => (s.ssh.connect().await?, false),
    };
    p.last_master = Some(name.clone());
    p.intent = Some(Intent { action: "promote".into(), target: name.clone(), epoch: cx.fence.epoch, at_ms: now_ms() });
    store::save(cx.coord.as_ref(), &cx.fence, &g.key, p, None).await?;
    let started = Instant::now();
    let use_signal = matches!(method, PromoteMethod::SignalFile(_));
    let script = remote::promote_script(s, use_signal);
    loop {
        match remote::run(&ssh, s, "promote", &script, false, SSH_SHORT).await {
            Ok(_) => break,
            // A session opened during the wait may have been cut since (sshd restarted):
            // once, with a fresh one. A command that ran and failed is not retried.
            Err(crate::error::PgctlError::Ssh(e)) if opened_early => {
                cx.journal.warn(&format!("the SSH session opened during the wait failed ({e}); connecting again"));
                ssh.close().await;
                ssh = s.ssh.connect().await?;
                opened_early = false;
            }
            Err(e) => return Err(e),
        }
    }
    let mut fallback = String::new();
    loop {
        match probe::accepts_writes(s, PROBE_TIMEOUT).await {
            Ok(()) => break,
            Err(e) if started.elapsed() > WRITES_LIMIT => return Err(e),
            Err(_) if use_signal && fallback.is_empty() && started.elapsed() > SIGNAL_FALLBACK => {
                cx.journal.warn(&format!(
                    "{name} did not promote within {} s of its signal file being touched; running pg_ctl promote",
                    SIGNAL_FALLBACK.as_secs()
                ));
                remote::run(&ssh, s, "promote (pg_ctl)", &remote::promote_script(s, false), false, SSH_SHORT).await?;
                fallback = format!(" (the signal file did nothing for {} s, then pg_ctl promote)", SIGNAL_FALLBACK.as_secs());
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
    let after = decided.elapsed();
    ssh.close().await;
    p.intent = None;
    store::save(cx.coord.as_ref(), &cx.fence, &g.key, p, Some(&record(s))).await?;
    Ok(Some(format!("{d}: done, {name} accepts writes {} ms after the decision{fallback}", after.as_millis())))
}
