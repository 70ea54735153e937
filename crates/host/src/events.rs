//! The host's event channel: every state change an operator or another service cares
//! about (this instance became active or passive, a service started or failed, a
//! probe or an alarm changed) goes out here, once, in order.
//!
//! Subscribers are in-process (the console's live stream `GET /api/v1/events`,
//! monitoring, alarms). Each event has an id that grows for the life of the process;
//! the last [`RING`] events are kept so that a subscriber that (re)connects can ask for
//! what it missed (`since(id)`), as an SSE client does with `Last-Event-ID`.
//!
//! The channel itself is in memory. What must survive a failover is persisted by the
//! service that owns it before it is published here (the DESIGN's rule): the channel
//! announces a change, the coordinator keeps the state.

use crate::state::ServiceState;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for subscribers that reconnect.
pub const RING: usize = 1024;

/// One state change.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Grows by one per event for the life of the process.
    pub id: u64,
    /// When it happened, ms since the Unix epoch.
    pub at_ms: u64,
    /// The instance that saw it.
    pub instance: String,
    /// That instance's group.
    pub group: u32,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// This instance became active (with its epoch) or passive.
    Activity {
        /// True when active.
        active: bool,
        /// The fencing epoch while active.
        epoch: Option<u64>,
        /// Why, in words.
        reason: String,
    },
    /// A service of this instance changed state.
    Service {
        /// The service's name.
        service: String,
        /// Its new state.
        state: ServiceState,
        /// Why, in words.
        reason: String,
    },
    /// A group's active instance changed, as the coordinator shows it (seen by every
    /// instance, for the console).
    Cluster {
        /// The group.
        group: u32,
        /// Its active instance now (`None`: nobody).
        active: Option<String>,
        /// Its epoch.
        epoch: Option<u64>,
    },
    /// The running site config changed (reloaded from the file, SIGHUP or the coordinator).
    Config {
        /// Where the new config came from.
        source: String,
    },
    /// A monitored item (a probe, a backup target, a pg group...) changed health.
    Item {
        /// Who watches it (`monitoring`, `backup`, `pgctl` ...).
        source: String,
        /// The item's name.
        item: String,
        /// `ok`, `warning` or `failing`.
        state: String,
        /// Why, in words.
        reason: String,
    },
    /// A call of the callmanager changed state.
    Call {
        /// The call's id.
        id: String,
        /// Its domain.
        domain: String,
        /// Its new state (`dialing` ... `ended`).
        state: String,
        /// Why, in words (for `ended`: a leg's final code, a hang-up and by whom, a timeout).
        reason: String,
    },
}

struct Inner {
    tx: broadcast::Sender<Arc<Event>>,
    ring: Mutex<VecDeque<Arc<Event>>>,
    next: AtomicU64,
    instance: String,
    group: u32,
}

/// The event channel of one instance; cheap to clone.
#[derive(Clone)]
pub struct Events(Arc<Inner>);

impl Events {
    /// The channel of `instance` in `group`.
    pub fn new(instance: impl Into<String>, group: u32) -> Self {
        let (tx, _) = broadcast::channel(RING);
        Events(Arc::new(Inner {
            tx,
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            next: AtomicU64::new(1),
            instance: instance.into(),
            group,
        }))
    }

    /// A channel nobody listens to (tests, tools).
    pub fn detached() -> Self {
        Events::new("detached", 0)
    }

    /// Publishes `kind`; returns the event's id.
    pub fn publish(&self, kind: EventKind) -> u64 {
        // The ring lock orders ids and ring entries the same way, so `since` never skips one.
        let mut ring = self.0.ring.lock().unwrap_or_else(|e| e.into_inner());
        let id = self.0.next.fetch_add(1, Ordering::Relaxed);
        let ev = Arc::new(Event { id, at_ms: mware_coord::now_ms(), instance: self.0.instance.clone(), group: self.0.group, kind });
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(ev.clone());
        let _ = self.0.tx.send(ev);
        id
    }

    /// New events from now on. A receiver that falls more than [`RING`] events behind gets
    /// `Lagged` and should catch up with [`Events::since`].
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.0.tx.subscribe()
    }

    /// Kept events with an id above `id`, oldest first, and whether some were already
    /// dropped from the ring (the subscriber then missed events).
    pub fn since(&self, id: u64) -> (Vec<Arc<Event>>, bool) {
        let ring = self.0.ring.lock().unwrap_or_else(|e| e.into_inner());
        let missed = ring.front().is_some_and(|f| f.id > id + 1);
        (ring.iter().filter(|e| e.id > id).cloned().collect(), missed)
    }

    /// The id of the last event published (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.0.next.load(Ordering::Relaxed) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> EventKind {
        EventKind::Config { source: s.into() }
    }

    #[tokio::test]
    async fn subscribers_get_every_event_in_order() {
        let ev = Events::new("mware1", 7);
        let mut rx = ev.subscribe();
        for i in 0..5 {
            ev.publish(cfg(&i.to_string()));
        }
        for i in 1..=5u64 {
            let e = rx.recv().await.unwrap();
            assert_eq!((e.id, e.group, e.instance.as_str()), (i, 7, "mware1"));
        }
        assert_eq!(ev.last_id(), 5);
    }

    #[test]
    fn since_returns_what_a_reconnecting_client_missed() {
        let ev = Events::detached();
        for i in 0..(RING + 10) {
            ev.publish(cfg(&i.to_string()));
        }
        let (got, missed) = ev.since(RING as u64);
        assert!(!missed);
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].id, RING as u64 + 1);
        let (got, missed) = ev.since(3);
        assert!(missed, "events 4..=10 fell out of the ring");
        assert_eq!(got.len(), RING);
    }

    #[test]
    fn events_serialise_flat_with_their_type() {
        let ev = Events::new("m", 1);
        ev.publish(EventKind::Service { service: "mutex".into(), state: ServiceState::Failed, reason: "x".into() });
        let (got, _) = ev.since(0);
        let v = serde_json::to_value(&*got[0]).unwrap();
        assert_eq!(v["type"], "service");
        assert_eq!(v["state"], "failed");
        assert_eq!(v["service"], "mutex");
    }
}
