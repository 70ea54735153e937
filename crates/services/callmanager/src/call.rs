//! The step that acts: one task per call runs its legs, feeds what happens to
//! [`crate::decide::decide`] and does what it answers (INVITE, ACK, CANCEL, BYE, the
//! fenced write). The task owns the call; the API talks to it through a [`CallHandle`]
//! and reads its [`CallView`].

use crate::decide::{decide, Action, CallState, Event, LegState, Side, Snapshot};
use crate::error::CallError;
use crate::store::{Store, StoredCall};
use crate::ua::leg::{Dial, Leg, LegEvent};
use crate::ua::record::DialogRecord;
use crate::ua::{sdp, InDialog, Ua};
pub use crate::view::{CallView, LegView};
use mware_coord::now_ms;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a new call needs.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// Id.
    pub id: String,
    /// Domain.
    pub domain: String,
    /// A's URI.
    pub from: String,
    /// B's URI.
    pub to: String,
    /// Display name shown to the phones.
    pub caller_id: Option<String>,
    /// Longest ringing of a leg, seconds.
    pub answer_timeout_s: u32,
    /// Longest call, seconds.
    pub max_duration_s: u32,
    /// Client variables.
    pub variables: serde_json::Value,
}

/// A request to a running call.
pub enum Command {
    /// End it (by whom, in words).
    HangUp(String),
    /// Put B on hold (re-INVITE with `sendonly`).
    Hold,
    /// Take B off hold (`sendrecv`).
    Resume,
    /// Send DTMF digits to B (SIP INFO `application/dtmf-relay`).
    Dtmf(String),
    /// Connect A with a new party instead of B.
    Transfer(String),
}

/// The API's side of a call.
#[derive(Clone)]
pub struct CallHandle {
    /// The live view.
    pub view: Arc<Mutex<CallView>>,
    cmds: mpsc::Sender<(Command, oneshot::Sender<Result<String, CallError>>)>,
}

impl CallHandle {
    /// A copy of the view.
    pub fn get(&self) -> CallView {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends a command and waits for its outcome (in words).
    pub async fn send(&self, c: Command) -> Result<String, CallError> {
        let (tx, rx) = oneshot::channel();
        if self.cmds.send((c, tx)).await.is_err() {
            return Err(CallError::Conflict("the call has ended".into()));
        }
        rx.await.unwrap_or_else(|_| Err(CallError::Conflict("the call has ended".into())))
    }
}

/// Told of every change of a call, with the reason in words when there is one.
pub type OnChange = Box<dyn Fn(&CallView, Option<&str>) + Send + Sync>;

/// What every call of an activity shares.
pub struct Engine {
    /// The user agent.
    pub ua: Ua,
    /// Where connected calls are written.
    pub store: Store,
    /// This instance's name.
    pub instance: String,
    /// Told of every change of a call (metrics, events).
    pub on_change: OnChange,
    /// Session timer of the calls (RFC 4028), seconds; both legs are refreshed every half
    /// of it. 0: none.
    pub session_timer_s: u32,
    /// Cancelled when the activity ends: calls stay up, their records stay written.
    pub cancel: CancellationToken,
}

impl CallHandle {
    /// The handle of a call that is over and takes no command (a call whose set-up the
    /// previous active instance left unfinished).
    pub(crate) fn ended(view: CallView) -> CallHandle {
        let (cmds, _) = mpsc::channel(1);
        CallHandle { view: Arc::new(Mutex::new(view)), cmds }
    }
}

/// Starts a new call: A is dialled now.
pub fn start(eng: Arc<Engine>, spec: CallSpec) -> CallHandle {
    let now = now_ms();
    let leg =
        |side, party: &str, state| LegView { side, party: party.into(), state, code: None, reason: None, since_ms: now, call_id: None };
    let view = CallView {
        id: spec.id.clone(),
        domain: spec.domain.clone(),
        state: CallState::Dialing,
        legs: vec![leg(Side::A, &spec.from, LegState::Dialing), leg(Side::B, &spec.to, LegState::Idle)],
        caller_id: spec.caller_id.clone(),
        held: false,
        variables: spec.variables.clone(),
        created_ms: now,
        connected_ms: None,
        ended_ms: None,
        ended: None,
        instance: eng.instance.clone(),
    };
    let end_at = Instant::now() + Duration::from_secs(spec.max_duration_s.into());
    let (task, handle) = Task::new(eng, spec, view, Snapshot::new(), end_at);
    tokio::spawn(task.run_new());
    handle
}

/// Takes over a call the previous active instance wrote: both dialogs are up.
pub fn resume(eng: Arc<Engine>, s: StoredCall) -> CallHandle {
    let spec = CallSpec {
        id: s.view.id.clone(),
        domain: s.view.domain.clone(),
        from: s.view.legs[0].party.clone(),
        to: s.view.legs[1].party.clone(),
        caller_id: s.view.caller_id.clone(),
        answer_timeout_s: 30,
        max_duration_s: (s.end_at_ms.saturating_sub(s.view.created_ms) / 1000) as u32,
        variables: s.view.variables.clone(),
    };
    let mut view = s.view.clone();
    view.instance = eng.instance.clone();
    let left = s.end_at_ms.saturating_sub(now_ms());
    let end_at = Instant::now() + Duration::from_millis(left);
    let snap = Snapshot { state: CallState::Connected, a: LegState::Connected, b: LegState::Connected, ending: None };
    let (mut task, handle) = Task::new(eng, spec, view, snap, end_at);
    task.recs = [Some(s.a), Some(s.b)];
    task.sdp_to_a = s.sdp_to_a.into_bytes();
    task.sdp_to_b = s.sdp_to_b.into_bytes();
    task.end_at_ms = s.end_at_ms;
    task.persisted = true;
    task.watch(Side::A);
    task.watch(Side::B);
    // The previous instance refreshed at most half a period before it died: refreshing an
    // eighth of a period after the takeover keeps every leg well inside its interval
    // (a phone ends the session shortly before the interval runs out, RFC 4028 §10).
    task.refresh_at = task.period().map(|p| Instant::now() + p / 8);
    tokio::spawn(task.run());
    handle
}

type Reply = oneshot::Sender<Result<String, CallError>>;

pub(crate) struct Task {
    pub(crate) eng: Arc<Engine>,
    pub(crate) spec: CallSpec,
    snap: Snapshot,
    pub(crate) view: Arc<Mutex<CallView>>,
    pub(crate) legs: [Option<Leg>; 2],
    pub(crate) recs: [Option<DialogRecord>; 2],
    /// A's offer (its 2xx), sent to B.
    pub(crate) sdp_to_b: Vec<u8>,
    /// B's answer, sent to A in its ACK.
    pub(crate) sdp_to_a: Vec<u8>,
    ring: [Option<Instant>; 2],
    /// When both legs are refreshed next (session timer).
    pub(crate) refresh_at: Option<Instant>,
    end_at: Instant,
    pub(crate) end_at_ms: u64,
    pub(crate) persisted: bool,
    byes: [mpsc::UnboundedSender<InDialog>; 2],
    bye_rx: [mpsc::UnboundedReceiver<InDialog>; 2],
    cmds: mpsc::Receiver<(Command, Reply)>,
}

enum Got {
    Refresh,
    Leg(Side, LegEvent),
    Ev(Event),
    Cmd((Command, Reply)),
}

fn ix(s: Side) -> usize {
    match s {
        Side::A => 0,
        Side::B => 1,
    }
}

async fn next_of(l: &mut Option<Leg>) -> LegEvent {
    match l {
        Some(l) => l.next().await,
        None => std::future::pending().await,
    }
}

async fn until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Task {
    fn new(eng: Arc<Engine>, spec: CallSpec, view: CallView, snap: Snapshot, end_at: Instant) -> (Task, CallHandle) {
        let view = Arc::new(Mutex::new(view));
        let (tx, cmds) = mpsc::channel(8);
        let (ba, ra) = mpsc::unbounded_channel();
        let (bb, rb) = mpsc::unbounded_channel();
        let end_at_ms = now_ms() + u64::from(spec.max_duration_s) * 1000;
        let handle = CallHandle { view: view.clone(), cmds: tx };
        let task = Task {
            eng,
            spec,
            snap,
            view,
            legs: [None, None],
            recs: [None, None],
            sdp_to_b: vec![],
            sdp_to_a: vec![],
            ring: [None, None],
            refresh_at: None,
            end_at,
            end_at_ms,
            persisted: false,
            byes: [ba, bb],
            bye_rx: [ra, rb],
            cmds,
        };
        (task, handle)
    }

    async fn run_new(mut self) {
        let dial = Dial {
            to: self.spec.from.clone(),
            domain: self.spec.domain.clone(),
            display: self.spec.caller_id.clone(),
            sdp: None,
            session_s: self.eng.session_timer_s,
        };
        match Leg::invite(&self.eng.ua, dial) {
            Ok(l) => {
                self.set_call_id(Side::A, l.call_id());
                self.legs[0] = Some(l);
                self.ring[0] = Some(Instant::now() + Duration::from_secs(self.spec.answer_timeout_s.into()));
                crate::setup::note(&self);
            }
            Err(e) => {
                Box::pin(self.step(Event::Failed(Side::A, 503, e.to_string()))).await;
                return;
            }
        }
        self.changed(Some("dialing from"));
        // Boxed (as every long step below): the idle call's future stays small.
        Box::pin(self.run()).await
    }

    async fn run(mut self) {
        let secs = self.spec.answer_timeout_s;
        loop {
            let [la, lb] = &mut self.legs;
            let [ba, bb] = &mut self.bye_rx;
            let got = tokio::select! {
                _ = self.eng.cancel.cancelled() => return,
                e = next_of(la) => Got::Leg(Side::A, e),
                e = next_of(lb) => Got::Leg(Side::B, e),
                Some(_) = ba.recv() => Got::Ev(Event::RemoteBye(Side::A)),
                Some(_) = bb.recv() => Got::Ev(Event::RemoteBye(Side::B)),
                _ = until(self.ring[0]) => { self.ring[0] = None; Got::Ev(Event::RingTimeout(Side::A, secs)) }
                _ = until(self.ring[1]) => { self.ring[1] = None; Got::Ev(Event::RingTimeout(Side::B, secs)) }
                _ = tokio::time::sleep_until(self.end_at) => Got::Ev(Event::MaxDuration(self.spec.max_duration_s)),
                _ = until(self.refresh_at) => Got::Refresh,
                Some(c) = self.cmds.recv() => Got::Cmd(c),
            };
            let ev = match got {
                Got::Refresh => match Box::pin(self.refresh()).await {
                    Some(ev) => ev,
                    None => continue,
                },
                Got::Leg(side, e) => self.leg_event(side, e),
                Got::Ev(e) => e,
                Got::Cmd((Command::HangUp(by), reply)) => {
                    let _ = reply.send(Ok(format!("hung up by {by}")));
                    Event::HangUp(by)
                }
                Got::Cmd((other, reply)) => {
                    let r = Box::pin(self.command(other)).await;
                    let _ = reply.send(r);
                    continue;
                }
            };
            if Box::pin(self.step(ev)).await {
                return;
            }
        }
    }

    fn leg_event(&mut self, side: Side, e: LegEvent) -> Event {
        match e {
            LegEvent::Ringing(code) => {
                self.leg_view(side, |l| l.code = Some(code));
                Event::Ringing(side, code)
            }
            LegEvent::Answered { record, sdp } => {
                self.ring[ix(side)] = None;
                self.legs[ix(side)] = None;
                self.leg_view(side, |l| {
                    l.code = Some(200);
                    l.reason = Some("OK".into());
                });
                match side {
                    Side::A => self.sdp_to_b = sdp,
                    Side::B => self.sdp_to_a = sdp,
                }
                self.recs[ix(side)] = Some(record);
                Event::Answered(side)
            }
            LegEvent::Failed { code, reason } => {
                self.ring[ix(side)] = None;
                self.legs[ix(side)] = None;
                self.leg_view(side, |l| {
                    l.code = Some(code);
                    l.reason = Some(reason.clone());
                });
                Event::Failed(side, code, reason)
            }
        }
    }

    /// Decides and acts, until no follow-up event; true when the call is over.
    async fn step(&mut self, first: Event) -> bool {
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            let d = decide(&self.snap, &ev);
            tracing::debug!(call = %self.spec.id, event = ?ev, decision = %d, "call step");
            self.snap = d.next.clone();
            for a in &d.actions {
                if let Some(f) = self.act(a, d.ended.as_deref()).await {
                    next = Some(f);
                }
            }
            self.sync_view(d.ended.clone());
            if ev == Event::Answered(Side::A) && self.snap.state == CallState::Answered {
                crate::setup::note(self); // from is up and not yet ACKed: the next instance must end it
            }
            self.changed(Some(&d.reason));
            if self.snap.state == CallState::Ended {
                return true;
            }
        }
        false
    }

    async fn act(&mut self, a: &Action, why: Option<&str>) -> Option<Event> {
        let ua = self.eng.ua.clone();
        match a {
            Action::InviteB => {
                let dial = Dial {
                    to: self.spec.to.clone(),
                    domain: self.spec.domain.clone(),
                    display: self.spec.caller_id.clone(),
                    sdp: Some(self.sdp_to_b.clone()),
                    session_s: self.eng.session_timer_s,
                };
                match Leg::invite(&ua, dial) {
                    Ok(l) => {
                        self.set_call_id(Side::B, l.call_id());
                        self.legs[1] = Some(l);
                        self.ring[1] = Some(Instant::now() + Duration::from_secs(self.spec.answer_timeout_s.into()));
                    }
                    Err(e) => return Some(Event::Failed(Side::B, 503, e.to_string())),
                }
            }
            Action::Ack(side) => {
                let body = match side {
                    Side::A => Some(self.sdp_to_a.clone()),
                    Side::B => None,
                };
                if let Some(r) = &self.recs[ix(*side)] {
                    if let Err(e) = ua.ack(r, r.cseq, body.as_deref()).await {
                        tracing::warn!(call = %self.spec.id, error = %e, "ACK not sent");
                    }
                    self.watch(*side);
                }
            }
            Action::AckRefusing(side) => {
                if let Some(r) = &self.recs[ix(*side)] {
                    let body = (*side == Side::A).then(|| sdp::refuse(&String::from_utf8_lossy(&self.sdp_to_b)).into_bytes());
                    let _ = ua.ack(r, r.cseq, body.as_deref()).await;
                }
            }
            Action::Cancel(side) => {
                if let Some(l) = &self.legs[ix(*side)] {
                    l.cancel().await;
                }
            }
            Action::Bye(side) => {
                if let Some(mut r) = self.recs[ix(*side)].take() {
                    match ua.bye(&mut r, why.unwrap_or("call ended")).await {
                        Ok(code) => tracing::debug!(call = %self.spec.id, code, "BYE answered"),
                        Err(e) => tracing::warn!(call = %self.spec.id, error = %e, "BYE failed"),
                    }
                }
            }
            Action::Persist => {
                return Some(match self.persist().await {
                    Ok(()) => {
                        self.refresh_at = self.period().map(|p| Instant::now() + p / 2);
                        Event::Persisted
                    }
                    Err(e) => Event::PersistFailed(e.to_string()),
                });
            }
            Action::Forget => {
                for r in self.recs.iter().flatten() {
                    ua.forget(&r.call_id);
                }
                if self.persisted {
                    if let Err(e) = self.eng.store.delete(&self.spec.id).await {
                        tracing::warn!(call = %self.spec.id, error = %e, "ended call not removed from the coordinator");
                    }
                } else {
                    self.eng.store.forget_setup(&self.spec.id);
                }
            }
        }
        None
    }

    pub(crate) async fn persist(&mut self) -> Result<(), CallError> {
        let (Some(a), Some(b)) = (self.recs[0].clone(), self.recs[1].clone()) else {
            return Err(CallError::Conflict("a leg has no dialog".into()));
        };
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        view.state = CallState::Connected;
        view.connected_ms = view.connected_ms.or(Some(now_ms()));
        for l in &mut view.legs {
            l.state = LegState::Connected;
        }
        let s = StoredCall {
            view,
            a,
            b,
            sdp_to_a: String::from_utf8_lossy(&self.sdp_to_a).into_owned(),
            sdp_to_b: String::from_utf8_lossy(&self.sdp_to_b).into_owned(),
            end_at_ms: self.end_at_ms,
        };
        self.eng.store.connect(&s).await?;
        self.persisted = true;
        Ok(())
    }

    pub(crate) fn watch(&self, side: Side) {
        if let Some(r) = &self.recs[ix(side)] {
            let sdp = match side {
                Side::A => self.sdp_to_a.clone(),
                Side::B => self.sdp_to_b.clone(),
            };
            self.eng.ua.watch(&r.call_id, sdp, self.byes[ix(side)].clone());
            self.set_call_id(side, r.call_id.clone());
        }
    }

    fn set_call_id(&self, side: Side, id: String) {
        self.leg_view(side, |l| l.call_id = Some(id));
    }

    pub(crate) fn leg_view(&self, side: Side, f: impl FnOnce(&mut LegView)) {
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut v.legs[ix(side)]);
    }

    fn sync_view(&self, ended: Option<String>) {
        let now = now_ms();
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        if v.state != self.snap.state {
            v.state = self.snap.state;
            if v.state == CallState::Connected {
                v.connected_ms = Some(now);
            }
        }
        for (i, st) in [self.snap.a, self.snap.b].into_iter().enumerate() {
            if v.legs[i].state != st {
                v.legs[i].state = st;
                v.legs[i].since_ms = now;
            }
        }
        if let Some(why) = ended {
            v.ended = Some(why);
            v.ended_ms = Some(now);
        }
    }

    pub(crate) fn changed(&self, why: Option<&str>) {
        let v = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (self.eng.on_change)(&v, why);
    }
}

#[path = "call_ops.rs"]
mod ops;
