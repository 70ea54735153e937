//! The live calls of the group's domains, fed by the core's events: each event goes
//! through [`crate::calls::step`]; the calls a batch ends are journaled (fenced, one
//! write) before any change of the batch is announced; every kept change goes out on a bounded broadcast channel that the CTI
//! adapters read (a reader that falls behind is cut there, never the tracker). Events
//! of domains another group serves are dropped and counted.

use crate::calls::{step, CallEvent, Dialog, EndedCall, Kind, Step};
use crate::error::TrackError;
use crate::journal::Journal;
use crate::metrics::Metrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for CTI readers that are behind; past this a reader is cut.
pub const FEED: usize = 4096;

/// A change of a call as the CTI adapters send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// `ringing`, `answered` or `ended`; `number` for a change of an external number.
    pub event: &'static str,
    /// The call.
    pub id: String,
    /// The domain.
    pub domain: String,
    /// The caller.
    pub from: String,
    /// The called party.
    pub to: String,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: u64,
    /// For `ended`: whether it had been answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered: Option<bool>,
    /// For `ringing` and `answered` of a hunt number or queue: the member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// For `ended` unanswered: the final SIP code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// For `number` (an external number, `id` and `to` its URI): `idle`, `ringing`,
    /// `busy` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// This change as JSON, made once for every reader.
    #[serde(skip)]
    pub frame: String,
}

/// What a batch of events did.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// Events that changed a call.
    pub applied: usize,
    /// Repeated or late events.
    pub ignored: usize,
    /// Events of domains another group serves, or past `max_live_calls`.
    pub dropped: usize,
}

/// The tracker of one activity.
pub struct Tracker {
    live: Mutex<BTreeMap<String, Dialog>>,
    journal: Journal,
    feed: broadcast::Sender<Arc<Published>>,
    ours: Box<dyn Fn(&str) -> bool + Send + Sync>,
    max_live: usize,
    metrics: Metrics,
    apply_lock: tokio::sync::Mutex<()>,
    members: crate::members::Members,
    numbers: crate::numbers::Cache,
}

impl Tracker {
    /// A tracker writing to `journal`, keeping calls of the domains `ours` accepts.
    /// Members are named from the registrar's bindings (`members`).
    pub fn new(
        journal: Journal,
        ours: Box<dyn Fn(&str) -> bool + Send + Sync>,
        max_live: usize,
        metrics: Metrics,
        members: crate::members::Members,
    ) -> Tracker {
        let (feed, _) = broadcast::channel(FEED);
        Tracker {
            live: Mutex::new(BTreeMap::new()),
            journal,
            feed,
            ours,
            max_live,
            metrics,
            apply_lock: tokio::sync::Mutex::new(()),
            members,
            numbers: crate::numbers::Cache::default(),
        }
    }

    /// A new reader of the published changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.feed.subscribe()
    }

    /// The external numbers' states.
    pub fn numbers(&self) -> &crate::numbers::Cache {
        &self.numbers
    }

    /// Keeps a number's view; a change of its state goes to the CTI readers.
    pub fn set_number(&self, v: crate::numbers::NumberView) {
        let (domain, number, state, at_ms) = (v.domain.clone(), v.number.clone(), v.state.clone(), v.since_ms);
        if self.numbers.set(v) {
            let _ = self.feed.send(Arc::new(number_event(domain, number, state, at_ms)));
        }
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The live calls of `domain`.
    pub fn live(&self, domain: &str) -> Vec<Dialog> {
        self.live.lock().unwrap().values().filter(|d| d.domain == domain).cloned().collect()
    }

    /// Live calls in all.
    pub fn live_count(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    /// Puts back live calls read from the core (after a failover), without announcing.
    pub fn restore(&self, dialogs: Vec<Dialog>) {
        let mut live = self.live.lock().unwrap();
        for d in dialogs.into_iter().filter(|d| (self.ours)(&d.domain)).take(self.max_live) {
            live.insert(d.id.clone(), d);
        }
    }

    /// Applies a batch in order (one batch at a time, so events keep their order): the
    /// calls it ends are journaled in one fenced write, then every change is announced.
    pub async fn apply(&self, events: Vec<CallEvent>) -> Result<Applied, TrackError> {
        let _one = self.apply_lock.lock().await;
        let mut out = Applied::default();
        let (mut changes, mut ended) = (vec![], vec![]);
        for mut ev in events {
            if !(self.ours)(&ev.domain) {
                out.dropped += 1;
                continue;
            }
            if let Some(addr) = ev.member.take() {
                ev.member = Some(self.members.name(&addr, &ev.to).await);
            }
            let mut live = self.live.lock().unwrap();
            let full = live.len() >= self.max_live && !live.contains_key(&ev.id);
            match step(live.get(&ev.id), &ev) {
                Step::Ignore(_) => out.ignored += 1,
                Step::Keep(_) | Step::Quiet(_) if full => out.dropped += 1,
                Step::Quiet(d) => {
                    live.insert(d.id.clone(), d);
                    out.applied += 1;
                }
                Step::Keep(d) => {
                    live.insert(d.id.clone(), d.clone());
                    changes.push(self.published(&d, ev.event, ev.at_ms, None));
                    out.applied += 1;
                }
                Step::End(e) => {
                    live.remove(&e.dialog.id);
                    changes.push(self.published(&e.dialog, Kind::Ended, e.ended_ms, Some(&e)));
                    ended.push(e);
                    out.applied += 1;
                }
            }
        }
        self.journal.push(&ended).await?;
        for p in changes {
            // No reader: nothing to do.
            let _ = self.feed.send(Arc::new(p));
        }
        self.metrics.live_calls.set(self.live_count() as i64);
        self.metrics.events.inc_by(out.applied as u64);
        self.metrics.events_dropped.inc_by(out.dropped as u64);
        Ok(out)
    }

    fn published(&self, d: &Dialog, kind: Kind, at_ms: u64, ended: Option<&EndedCall>) -> Published {
        let event = match kind {
            Kind::Ringing => "ringing",
            Kind::Answered => "answered",
            Kind::Ended | Kind::Failed => "ended",
        };
        let mut p = Published {
            event,
            id: d.id.clone(),
            domain: d.domain.clone(),
            from: d.from.clone(),
            to: d.to.clone(),
            at_ms,
            answered: ended.map(|e| e.answered),
            member: match kind {
                Kind::Ringing => d.rang.last().cloned(),
                Kind::Answered => d.answered_by.clone(),
                _ => None,
            },
            code: ended.filter(|e| !e.answered).map(|e| e.code),
            state: None,
            frame: String::new(),
        };
        p.frame = serde_json::to_string(&p).unwrap_or_default();
        p
    }
}

/// A change of an external number as the CTI adapters send it.
pub fn number_event(domain: String, number: String, state: String, at_ms: u64) -> Published {
    let mut p = Published {
        event: "number",
        id: number.clone(),
        domain,
        from: String::new(),
        to: number,
        at_ms,
        answered: None,
        member: None,
        code: None,
        state: Some(state),
        frame: String::new(),
    };
    p.frame = serde_json::to_string(&p).unwrap_or_default();
    p
}
