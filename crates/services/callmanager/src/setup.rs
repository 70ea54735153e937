//! Calls whose set-up an active instance left unfinished when it stopped.
//!
//! A call is written to the coordinator fenced before it is reported connected; until
//! then it has a set-up record (`store::SETUP_PREFIX`), queued without waiting when the
//! call starts and again when `from` answers, and removed in the write that connects
//! it. The next active instance ends each such call in the open instead of forgetting
//! it: the API lists it as `ended` with the reason, and if `from` had answered (its 2xx
//! not ACKed yet) that leg gets an ACK refusing the offer and a BYE, so the phone stops
//! at once rather than after its 32 s of unanswered 2xx. A leg still ringing cannot be
//! cancelled from here (its INVITE transaction died with the instance): it rings until
//! the phone or the proxy gives up, and the reason says so.

use crate::call::{CallHandle, Engine, Task};
use crate::decide::{CallState, LegState};
use crate::store::SetupCall;
use crate::ua::sdp;
use mware_coord::now_ms;
use std::sync::Arc;

/// Queues the set-up record of `task`'s call (no wait).
pub(crate) fn note(task: &Task) {
    let view = task.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let rec = SetupCall { view, a: task.recs[0].clone(), offer_of_a: String::from_utf8_lossy(&task.sdp_to_b).into_owned() };
    task.eng.store.note_setup(&rec);
}

/// Why an unfinished call ended, in words.
pub fn reason(s: &SetupCall) -> String {
    let state = format!("{:?}", s.view.state).to_lowercase();
    let from = if s.a.is_some() { "from was answered and is hung up now" } else { "from was not answered and rings until it gives up" };
    format!("set-up interrupted: {} stopped while the call was {state}; {from}", s.view.instance)
}

/// Ends a call the previous instance left in set-up; its handle, for the API's list.
pub async fn end(eng: &Arc<Engine>, s: SetupCall) -> CallHandle {
    let why = reason(&s);
    if let Some(mut a) = s.a.clone() {
        let refusal = sdp::refuse(&s.offer_of_a);
        if let Err(e) = eng.ua.ack(&a, a.cseq, Some(refusal.as_bytes())).await {
            tracing::warn!(call = %s.view.id, error = %e, "ACK to from not sent");
        }
        match eng.ua.bye(&mut a, "set-up interrupted by a failover of mware").await {
            Ok(code) => tracing::info!(call = %s.view.id, code, "from hung up after the failover"),
            Err(e) => tracing::warn!(call = %s.view.id, error = %e, "BYE to from failed"),
        }
    }
    let mut view = s.view;
    let now = now_ms();
    view.state = CallState::Ended;
    view.ended = Some(why);
    view.ended_ms = Some(now);
    view.instance = eng.instance.clone();
    for l in &mut view.legs {
        if l.state != LegState::Idle {
            l.state = LegState::Ended;
            l.since_ms = now;
        }
    }
    if let Err(e) = eng.store.delete(&view.id).await {
        tracing::warn!(call = %view.id, error = %e, "unfinished call not removed from the coordinator");
    }
    CallHandle::ended(view)
}
