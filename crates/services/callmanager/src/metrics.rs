//! Prometheus metrics of the callmanager (labels only from fixed sets: call states,
//! legs, status classes).

use crate::decide::{CallState, Side};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `dialing`, `ringing`, `answered`, `connecting`, `connected`.
    pub state: String,
}

/// `leg` and `class` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// `from` or `to`.
    pub leg: String,
    /// `2xx` ... `6xx`.
    pub class: String,
}

/// `outcome` label of notification attempts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `confirmed`, `played`, `no_answer`, `busy`, `failed`, `interrupted`, `cancelled`.
    pub outcome: String,
}

/// The service's metrics, cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// Live calls by state.
    pub calls: Family<StateLabel, Gauge>,
    /// Calls started.
    pub started: Counter,
    /// Calls refused past a limit (429).
    pub limited: Counter,
    /// Time from the API call to connected, seconds.
    pub setup_seconds: Histogram,
    /// Final codes of the legs' INVITEs, by leg and class.
    pub final_codes: Family<CodeLabel, Counter>,
    /// Calls taken over from the previous active instance.
    pub restored: Counter,
    /// Voice notifications created through the API.
    pub notices: Counter,
    /// Notification attempts ended, by outcome.
    pub notice_attempts: Family<OutcomeLabel, Counter>,
    /// Notification calls: from the phone's 2xx to the first RTP packet of the message.
    pub notice_answer_to_audio_seconds: Histogram,
    /// Numbers of notifications not yet final (pending or being called).
    pub notice_numbers_open: Gauge,
    /// Conferences of the group run here.
    pub conferences: Gauge,
    /// Participants joined to them.
    pub conference_participants: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `mware_callmanager_*`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            calls: Family::default(),
            started: Counter::default(),
            limited: Counter::default(),
            setup_seconds: Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0]),
            final_codes: Family::default(),
            restored: Counter::default(),
            notices: Counter::default(),
            notice_attempts: Family::default(),
            notice_answer_to_audio_seconds: Histogram::new([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            notice_numbers_open: Gauge::default(),
            conferences: Gauge::default(),
            conference_participants: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("mware_callmanager");
        r.register("calls", "Live calls by state", m.calls.clone());
        r.register("started", "Calls started through the API", m.started.clone());
        r.register("limited", "Calls refused past a limit (429)", m.limited.clone());
        r.register("setup_seconds", "Time from the API call to connected", m.setup_seconds.clone());
        r.register("final_codes", "Final codes of the legs' INVITEs by leg and class", m.final_codes.clone());
        r.register("restored", "Calls taken over from the previous active instance", m.restored.clone());
        r.register("notifications", "Voice notifications created through the API", m.notices.clone());
        r.register("notification_attempts", "Notification attempts ended, by outcome", m.notice_attempts.clone());
        r.register(
            "notification_answer_to_audio_seconds",
            "Notification calls: from the phone's 2xx to the first RTP packet",
            m.notice_answer_to_audio_seconds.clone(),
        );
        r.register("notification_numbers_open", "Numbers of notifications not yet final", m.notice_numbers_open.clone());
        r.register("conferences", "Conferences run by this instance", m.conferences.clone());
        r.register("conference_participants", "Participants joined to this instance's conferences", m.conference_participants.clone());
        m
    }

    /// A call moved from `old` (none: new) to `new` (none: gone).
    pub fn moved(&self, old: Option<CallState>, new: Option<CallState>) {
        if let Some(o) = old.filter(|s| *s != CallState::Ended) {
            self.calls.get_or_create(&label(o)).dec();
        }
        if let Some(n) = new.filter(|s| *s != CallState::Ended) {
            self.calls.get_or_create(&label(n)).inc();
        }
    }

    /// A leg's INVITE ended with `code`.
    pub fn final_code(&self, side: Side, code: u16) {
        let class = format!("{}xx", (code / 100).clamp(1, 6));
        self.final_codes.get_or_create(&CodeLabel { leg: side.field().into(), class }).inc();
    }
}

fn label(s: CallState) -> StateLabel {
    StateLabel { state: format!("{s:?}").to_lowercase() }
}
