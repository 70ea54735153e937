//! The intake of an activity: syslog messages through the rules and the limiter,
//! monitoring state changes from the instance's events, and the window summaries,
//! each made an [`Alarm`] with the next id and handed to the writer.

use crate::alarm::{Alarm, Source};
use crate::clean;
use crate::metrics::Metrics;
use crate::rules::{Limiter, Msg, Rules, Verdict};
use crate::section::{MonitoringAlarms, SEVERITIES};
use crate::store::{Cmd, Shared};
use mware_host::{Event, EventKind};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Most distinct alarms tracked for dedupe in one window.
const MAX_TRACKED: usize = 100_000;

/// Makes alarms: ids, and the fields every alarm carries.
pub struct Maker {
    /// Epoch of the activity.
    pub epoch: u64,
    /// Next counter.
    pub next: AtomicU64,
    /// Site name.
    pub site: String,
    /// Group.
    pub group: u32,
    /// This instance.
    pub instance: String,
}

impl Maker {
    /// A new alarm with the next id; its texts go through [`clean::text`] (every source
    /// comes here).
    #[allow(clippy::too_many_arguments)]
    pub fn make(&self, source: Source, rule: &str, severity: &str, host: &str, app: &str, message: String, count: u32) -> Alarm {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let message = match clean::text(&message) {
            Cow::Borrowed(_) => message,
            Cow::Owned(m) => m,
        };
        Alarm {
            id: format!("{}-{n}", self.epoch),
            at_ms: mware_coord::now_ms(),
            source,
            rule: clean::text(rule).into_owned(),
            severity: severity.to_string(),
            host: clean::text(host).into_owned(),
            app: clean::text(app).into_owned(),
            message,
            site: self.site.clone(),
            group: self.group,
            instance: self.instance.clone(),
            item: None,
            state: None,
            count,
            open: true,
            acked: None,
        }
    }
}

/// The intake's inputs.
pub struct Intake {
    /// Alarm maker.
    pub maker: Arc<Maker>,
    /// Compiled rules.
    pub rules: Rules,
    /// Dedupe window.
    pub window_ms: u64,
    /// Monitoring severities.
    pub monitoring: MonitoringAlarms,
    /// The shared log (items' last states).
    pub shared: Arc<Shared>,
    /// Metrics.
    pub metrics: Metrics,
}

impl Intake {
    /// Runs until `cancel` or both inputs end.
    pub async fn run(
        self,
        mut syslog: mpsc::Receiver<Vec<Msg>>,
        mut events: broadcast::Receiver<Arc<Event>>,
        writer: mpsc::Sender<Cmd>,
        cancel: CancellationToken,
    ) {
        let mut limiter = Limiter::new(self.window_ms, MAX_TRACKED);
        let mut tick = tokio::time::interval(Duration::from_millis((self.window_ms / 10).clamp(100, 1000)));
        loop {
            let cmd = tokio::select! {
                _ = cancel.cancelled() => return,
                m = syslog.recv() => match m {
                    Some(batch) => {
                        let alarms = self.messages(&mut limiter, batch);
                        if alarms.is_empty() { None } else { Some(Cmd::Raise(alarms, None)) }
                    }
                    None => { tokio::time::sleep(Duration::from_millis(50)).await; None }
                },
                e = events.recv() => match e {
                    Ok(e) => self.event(&e.kind),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "alarms: fell behind the event channel; some state changes were not seen");
                        None
                    }
                    Err(_) => None,
                },
                _ = tick.tick() => {
                    for s in limiter.expire(mware_coord::now_ms()) {
                        let r = &self.rules.0[s.rule];
                        let sev = severity_of(r.alarm_severity, s.sample.severity);
                        let why = if s.why == Verdict::Duplicate { "repeated" } else { "over the rule's rate limit" };
                        let text = format!("{} more {why} in the last window, like: {}", s.count, s.sample.text);
                        let a = self.maker.make(Source::Summary, &r.name, sev, &s.sample.host, &s.sample.app, text, s.count);
                        self.metrics.raised("summary", 1);
                        if writer.send(Cmd::Raise(vec![a], None)).await.is_err() { return }
                    }
                    None
                }
            };
            if let Some(c) = cmd {
                if writer.send(c).await.is_err() {
                    return;
                }
            }
        }
    }

    /// A batch of syslog messages through the rules and the limiter: the alarms to
    /// raise; the counters move once per batch.
    fn messages(&self, limiter: &mut Limiter, batch: Vec<Msg>) -> Vec<Alarm> {
        let now = mware_coord::now_ms();
        let mut matched = vec![0u64; self.rules.0.len()];
        let (mut unmatched, mut dupes, mut limited) = (0, 0, 0);
        let mut out = Vec::with_capacity(batch.len());
        for m in batch {
            let Some(i) = self.rules.first_match(&m) else {
                unmatched += 1;
                continue;
            };
            let r = &self.rules.0[i];
            matched[i] += 1;
            match limiter.admit(i, r.max_per_window, &m, now) {
                Verdict::Raise => {}
                Verdict::Duplicate => {
                    dupes += 1;
                    continue;
                }
                Verdict::RateLimited => {
                    limited += 1;
                    continue;
                }
            }
            let sev = severity_of(r.alarm_severity, m.severity);
            out.push(self.maker.make(Source::Syslog, &r.name, sev, &m.host, &m.app, m.text, 1));
        }
        for (i, n) in matched.into_iter().enumerate() {
            self.metrics.matched(&self.rules.0[i].name, n);
        }
        if unmatched > 0 {
            self.metrics.unmatched(unmatched);
        }
        self.metrics.dropped_n("dedupe", dupes);
        self.metrics.dropped_n("rate_limit", limited);
        if !out.is_empty() {
            self.metrics.raised("syslog", out.len() as u64);
        }
        out
    }

    fn event(&self, kind: &EventKind) -> Option<Cmd> {
        let EventKind::Item { source, item, state, reason } = kind else { return None };
        if source != "monitoring" || !self.monitoring.enabled {
            return None;
        }
        let before = self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).items.get(item).cloned();
        if before.as_deref() == Some(state.as_str()) || (before.is_none() && state == "ok") {
            return None;
        }
        let sev = match state.as_str() {
            "failing" => &self.monitoring.failing,
            "warning" => &self.monitoring.warning,
            _ => &self.monitoring.ok,
        };
        let text = match (state.as_str(), &before) {
            ("ok", _) => format!("{item} recovered: {reason}"),
            (s, Some(b)) => format!("{item} is {s} (was {b}): {reason}"),
            (s, None) => format!("{item} is {s}: {reason}"),
        };
        let mut a = self.maker.make(Source::Monitoring, "monitoring", sev, &self.maker.instance, "mware", text, 1);
        a.item = Some(item.clone());
        a.state = Some(state.clone());
        a.open = state != "ok";
        // The writer records the item's state with the alarm; until then a repeat of
        // the same change is told apart here.
        self.shared.log.lock().unwrap_or_else(|e| e.into_inner()).items.insert(item.clone(), state.clone());
        self.metrics.raised("monitoring", 1);
        Some(Cmd::Raise(vec![a], None))
    }
}

/// The rule's severity, else the message's, else `notice`.
fn severity_of(rule: Option<u8>, msg: Option<u8>) -> &'static str {
    SEVERITIES[rule.or(msg).unwrap_or(5).min(7) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alarm_made_has_clean_texts() {
        let m = Maker { epoch: 3, next: AtomicU64::new(1), site: "s".into(), group: 1, instance: "i".into() };
        let a = m.make(Source::Syslog, "r\u{1b}[1m", "err", "gw\u{202E}1", "app\0", "\u{1b}[31mred\u{1b}[0m\u{202E}txt\nnext".into(), 1);
        assert_eq!((a.rule.as_str(), a.host.as_str(), a.app.as_str()), ("r", "gw1", "app"));
        assert_eq!(a.message, "redtxt next");
        assert_eq!(a.id, "3-1");
    }
}
