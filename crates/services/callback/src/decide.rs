//! The pure decisions of the service, tested without touching the world: what an order
//! needs now ([`next`]), how a call the callmanager reports ended counts
//! ([`classify`]), what an attempt's outcome does to its order ([`settle`]), and in which
//! order a queue's operators are tried ([`rotation`]).

use crate::order::{Order, OrderState, Outcome};
use crate::section::Policy;
use serde_json::Value;
use std::fmt;

/// What an order needs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: it is over.
    Nothing,
    /// Its attempt under way is to be followed (after a failover: taken over).
    Follow,
    /// A new attempt is due.
    Dial,
    /// Nothing until this instant (ms since the Unix epoch).
    Wait(u64),
    /// Give up, for this reason.
    Fail(String),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Nothing => write!(f, "finished"),
            Step::Follow => write!(f, "an attempt is under way"),
            Step::Dial => write!(f, "an attempt is due"),
            Step::Wait(t) => write!(f, "waiting until {t} (ms)"),
            Step::Fail(why) => write!(f, "gives up: {why}"),
        }
    }
}

/// What `o` needs at `now` under `p`.
pub fn next(o: &Order, p: &Policy, now: u64) -> Step {
    if o.open_attempt().is_some() {
        return Step::Follow; // even when cancelled: followed to its end, the operator released
    }
    if o.state.finished() {
        return Step::Nothing;
    }
    let used = o.attempts.len() as u32;
    if used >= p.attempts {
        return Step::Fail(format!("no connection after {used} attempts"));
    }
    if let Some(end) = o.not_after_ms.filter(|end| now > *end) {
        return Step::Fail(format!("the window closed at {end} (ms) after {used} attempts"));
    }
    let at = o.next_at_ms.max(o.not_before_ms.unwrap_or(0));
    if now < at {
        return Step::Wait(at);
    }
    Step::Dial
}

/// How a call the callmanager shows (its `CallView` JSON) counts, once it ended: the
/// outcome and the callmanager's reason. `None` while the call goes on.
pub fn classify(call: &Value) -> Option<(Outcome, String)> {
    if call["state"] != "ended" {
        return None;
    }
    let why = call["ended"].as_str().unwrap_or("ended").to_string();
    if call["connected_ms"].is_u64() {
        return Some((Outcome::Connected, why));
    }
    if why.contains("set-up interrupted") {
        return Some((Outcome::Interrupted, why));
    }
    let code = |i: usize| call["legs"][i]["code"].as_u64();
    let unanswered = |c: Option<u64>| matches!(c, None | Some(0..=199) | Some(408 | 480 | 487));
    let outcome = if !code(0).is_some_and(|c| (200..300).contains(&c)) {
        if why.starts_with("no answer from from") || unanswered(code(0)) {
            Outcome::OperatorNoAnswer
        } else {
            Outcome::OperatorRefused
        }
    } else if why.starts_with("no answer from to") || unanswered(code(1)) {
        Outcome::CustomerNoAnswer
    } else if matches!(code(1), Some(486 | 600 | 603)) {
        Outcome::CustomerBusy
    } else {
        Outcome::Failed
    };
    Some((outcome, why))
}

/// Records `outcome` on `o`'s attempt under way and moves the order on: completed on a
/// connection, else waiting for the next attempt (`p.retry_after_ms` later) or failed when
/// no attempt is left or the window closes first. A cancelled order stays cancelled.
pub fn settle(o: &mut Order, outcome: Outcome, detail: String, p: &Policy, now: u64) {
    if let Some(a) = o.open_attempt_mut() {
        a.outcome = Some(outcome);
        a.detail = Some(detail.clone());
        a.ended_ms = Some(now);
    }
    if o.state.finished() {
        return;
    }
    let used = o.attempts.len() as u32;
    let next_at = now + p.retry_after_ms;
    let (state, reason) = if outcome == Outcome::Connected {
        (OrderState::Completed, format!("connected on attempt {used}"))
    } else if used >= p.attempts {
        (OrderState::Failed, format!("no connection after {used} attempts (last: {}, {detail})", outcome.as_str()))
    } else if o.not_after_ms.is_some_and(|end| next_at > end) {
        (OrderState::Failed, format!("the window closes before attempt {} could start (last: {})", used + 1, outcome.as_str()))
    } else {
        o.state = OrderState::Waiting;
        o.next_at_ms = next_at;
        o.reason = Some(format!("attempt {used}: {}; next attempt at {next_at} (ms)", outcome.as_str()));
        return;
    };
    o.state = state;
    o.reason = Some(reason);
    o.ended_ms = Some(now);
}

/// The order in which a queue of `n` operators is tried for attempt `attempt` (1-based):
/// starting one further along each attempt, so a retry rings another operator first.
pub fn rotation(n: usize, attempt: u32) -> Vec<usize> {
    let start = (attempt.saturating_sub(1) as usize) % n.max(1);
    (0..n).map(|i| (start + i) % n).collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
