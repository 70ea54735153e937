//! One attempt of an order, acted out: a free operator is taken (its critical section
//! acquired, held for the attempt), the attempt is written fenced **before** the call is
//! placed, the call's id right after; then the call is followed until it ends, and the
//! outcome settles the order (see [`crate::decide::settle`]).
//!
//! Why a failover never rings a customer twice for one attempt: an attempt is placed at
//! most once, by the instance that wrote it. The next instance finds it open and only
//! follows it: by its call id, or, when the id was not yet written, by the call whose
//! variables name the order and attempt; when the callmanager has no such call the
//! attempt ends `interrupted` and a new attempt (a new number) is made later.

use crate::active::Active;
use crate::decide::{self, rotation};
use crate::local::{LocalError, Placed};
use crate::order::{Attempt, Order, OrderState, Outcome};
use crate::section::Policy;
use crate::store;
use serde_json::json;
use std::time::Duration;

/// How often a call is looked at while it goes on.
const POLL: Duration = Duration::from_millis(300);
/// Pause after the local API did not answer usefully.
const BACKOFF_MS: u64 = 2_000;

/// The critical section is held this long unless renewed: two rings and a margin.
fn hold_ms(p: &Policy) -> u64 {
    (u64::from(p.answer_timeout_s) * 2 + 30) * 1000
}

/// Runs what order `id` needs: a new attempt when none is under way, then follows it.
/// Runs the attempt steps that a tick found due, each in a task of its own.
pub(crate) fn start_due(a: &std::sync::Arc<Active>, ids: Vec<String>) {
    for id in ids {
        let a = a.clone();
        tokio::spawn(async move {
            if let Err(e) = run(&a, &id).await {
                tracing::warn!(order = %id, error = %e, "callback attempt step failed; tried again on a later tick");
            }
            a.finished(&id);
        });
    }
}

pub(crate) async fn run(a: &Active, id: &str) -> Result<(), String> {
    let Some(o) = a.get(id) else { return Ok(()) };
    let p = a.cfg().policy(o.queue.as_deref());
    if o.open_attempt().is_none() && (o.state.finished() || !start(a, &o, &p).await?) {
        return Ok(());
    }
    follow(a, id, &p).await
}

/// The operators to try for `o`, in turn: (uri, critical section).
fn candidates(a: &Active, o: &Order) -> Vec<(String, String)> {
    let n = o.attempts.len() as u32 + 1;
    let cfg = a.cfg();
    if let Some(q) = o.queue.as_deref().and_then(|q| cfg.queue(q)) {
        return rotation(q.operators.len(), n).into_iter().map(|i| (q.operators[i].uri.clone(), q.operators[i].section.clone())).collect();
    }
    o.operator.as_deref().and_then(|u| cfg.operator(u)).map(|(_, op)| vec![(op.uri.clone(), op.section.clone())]).unwrap_or_default()
}

/// Takes a free operator and places the call; `false` when nothing was started (every
/// operator busy, the local API not ready).
async fn start(a: &Active, o: &Order, p: &Policy) -> Result<bool, String> {
    let n = o.attempts.len() as u32 + 1;
    let owner = Attempt::owner(&o.id, n);
    let ops = candidates(a, o);
    if ops.is_empty() {
        // The site file was changed under the order: it cannot be tried any more.
        let now = mware_coord::now_ms();
        if let Some((_, pending)) = a.update(&o.id, |x| {
            x.state = OrderState::Failed;
            x.reason = Some("its queue or operator is no longer in the callback section".into());
            x.ended_ms = Some(now);
        }) {
            store::done(pending).await.map_err(|e| e.to_string())?;
        }
        return Ok(false);
    }
    let mut skipped = vec![];
    let mut chosen = None;
    for (uri, section) in ops {
        match a.local.try_acquire(&o.domain, &section, &owner, hold_ms(p)).await {
            Ok(Some(token)) => {
                chosen = Some((uri, section, token));
                break;
            }
            Ok(None) => {
                a.metrics.busy_skips.inc();
                skipped.push(uri);
            }
            Err(e) => {
                let now = mware_coord::now_ms();
                a.note(&o.id, |x| {
                    x.next_at_ms = now + BACKOFF_MS;
                    x.reason = Some(format!("critical sections service not ready: {e}"));
                });
                return Ok(false);
            }
        }
    }
    let now = mware_coord::now_ms();
    let Some((operator, section, token)) = chosen else {
        let busy = skipped.join(", ");
        a.note(&o.id, |x| {
            x.next_at_ms = now + p.busy_retry_ms;
            x.reason = Some(format!("every operator is busy ({busy}); looking again in {} s", p.busy_retry_ms / 1000));
        });
        return Ok(false);
    };
    let attempt = Attempt {
        n,
        operator: operator.clone(),
        section: section.clone(),
        section_token: token,
        skipped_busy: skipped,
        started_ms: now,
        call_id: None,
        connected_ms: None,
        ended_ms: None,
        outcome: None,
        detail: None,
        instance: a.instance.clone(),
    };
    let written = a.update(&o.id, |x| {
        x.attempts.push(attempt);
        x.state = OrderState::Calling;
        x.reason = Some(format!("attempt {n}: ringing operator {operator}"));
    });
    let Some((_, pending)) = written else { return Ok(false) };
    if let Err(e) = store::done(pending).await {
        // Not durable: this instance is no longer active (fenced) or the queue is full;
        // nothing was dialled. Free the operator; the next active instance decides again.
        let _ = a.local.release(&o.domain, &section, &owner, token).await;
        return Err(format!("attempt {n} not written, nothing dialled: {e}"));
    }
    a.metrics.attempts_started.inc();
    let vars = json!({"callback_order": o.id, "attempt": n});
    match a.local.place(&o.domain, &operator, &o.number, p.answer_timeout_s, vars).await {
        Ok(Placed::Call(call)) => {
            tracing::info!(order = %o.id, attempt = n, call, operator, "callback attempt placed");
            if let Some((_, pending)) = a.update(&o.id, |x| {
                if let Some(at) = x.open_attempt_mut() {
                    at.call_id = Some(call.clone());
                }
            }) {
                store::done(pending).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(Placed::Refused(why)) => finish(a, &o.id, p, Outcome::Failed, format!("the callmanager refused the call: {why}")).await,
        Err(LocalError::Unavailable(why)) => {
            // Answered "not now" (starting, a limit): nothing was placed; the attempt is
            // withdrawn and made again shortly, the operator freed.
            let _ = a.local.release(&o.domain, &section, &owner, token).await;
            let now = mware_coord::now_ms();
            if let Some((_, pending)) = a.update(&o.id, |x| {
                if x.open_attempt().is_some_and(|at| at.n == n) {
                    x.attempts.pop();
                }
                if x.state == OrderState::Calling {
                    x.state = OrderState::Waiting;
                }
                x.next_at_ms = now + BACKOFF_MS;
                x.reason = Some(format!("the callmanager is not ready: {why}"));
            }) {
                store::done(pending).await.map_err(|e| e.to_string())?;
            }
            return Ok(false);
        }
        // Not answered: the call may or may not have been placed; `follow` finds it by
        // its variables or ends the attempt as interrupted.
        Err(e) => tracing::warn!(order = %o.id, attempt = n, error = %e, "placing the call got no answer; looking for it"),
    }
    Ok(true)
}

/// Follows the attempt under way of order `id` until it ends.
async fn follow(a: &Active, id: &str, p: &Policy) -> Result<(), String> {
    let mut renewed = std::time::Instant::now();
    let mut hung_up = false;
    loop {
        if a.cancel.is_cancelled() {
            return Ok(());
        }
        let Some(o) = a.get(id) else { return Ok(()) };
        let Some(at) = o.open_attempt().cloned() else { return Ok(()) };
        let call = match &at.call_id {
            Some(c) => a.local.call(c).await,
            None => a.local.find_call(&o.domain, id, at.n).await,
        };
        match call {
            Ok(None) if at.call_id.is_some() => {
                let why = "the callmanager lost the call (a failover while it was being set up)";
                finish(a, id, p, Outcome::Interrupted, why.into()).await;
                return Ok(());
            }
            Ok(None) => {
                let why = "no call was placed for this attempt (mware stopped while placing it); it is not dialled again";
                finish(a, id, p, Outcome::Interrupted, why.into()).await;
                return Ok(());
            }
            Ok(Some(v)) => {
                let call_id = v["id"].as_str().map(str::to_string);
                let connected = v["connected_ms"].as_u64();
                if (at.call_id.is_none() && call_id.is_some()) || (at.connected_ms.is_none() && connected.is_some()) {
                    if let Some((_, pending)) = a.update(id, |x| {
                        if let Some(y) = x.open_attempt_mut() {
                            y.call_id = y.call_id.take().or(call_id.clone());
                            y.connected_ms = y.connected_ms.or(connected);
                            y.instance = a.instance.clone();
                        }
                        if connected.is_some() {
                            x.reason = Some(format!("attempt {}: operator {} connected with the customer", at.n, at.operator));
                        }
                    }) {
                        store::done(pending).await.map_err(|e| e.to_string())?;
                    }
                }
                if let Some((outcome, why)) = decide::classify(&v) {
                    finish(a, id, p, outcome, why).await;
                    return Ok(());
                }
                if o.state == OrderState::Cancelled && !hung_up {
                    if let Some(c) = &call_id {
                        hung_up = a.local.hang_up(c).await.is_ok();
                    }
                }
            }
            Err(e) => tracing::debug!(order = id, error = %e, "the call could not be looked at now"),
        }
        if renewed.elapsed() > Duration::from_millis(hold_ms(p) / 3) {
            let owner = Attempt::owner(id, at.n);
            match a.local.renew(&o.domain, &at.section, &owner, at.section_token, hold_ms(p)).await {
                Ok(true) => renewed = std::time::Instant::now(),
                Ok(false) => {
                    tracing::warn!(order = id, section = at.section, "the operator's critical section was lost during the attempt")
                }
                Err(e) => tracing::debug!(order = id, error = %e, "renewing the operator's critical section failed; tried again"),
            }
        }
        tokio::select! {
            _ = a.cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Ends the attempt under way with `outcome`: the operator released, the order settled
/// and written.
async fn finish(a: &Active, id: &str, p: &Policy, outcome: Outcome, detail: String) {
    let Some(o) = a.get(id) else { return };
    let Some(at) = o.open_attempt().cloned() else { return };
    if let Err(e) = a.local.release(&o.domain, &at.section, &Attempt::owner(id, at.n), at.section_token).await {
        tracing::warn!(order = id, section = at.section, error = %e, "the operator's critical section could not be released; it lapses at its ttl");
    }
    let now = mware_coord::now_ms();
    let outcome = if o.state == OrderState::Cancelled && outcome != Outcome::Connected { Outcome::Cancelled } else { outcome };
    a.metrics.attempt_ended(outcome);
    tracing::info!(order = id, attempt = at.n, outcome = outcome.as_str(), detail, "callback attempt ended");
    if let Some((after, pending)) = a.update(id, |x| decide::settle(x, outcome, detail, p, now)) {
        if let Err(e) = store::done(pending).await {
            tracing::warn!(order = id, error = %e, "the attempt's outcome was not written; the next active instance follows the attempt again");
        }
        if after.state == OrderState::Completed {
            a.metrics.completed.inc();
        }
    }
}
