//! The pure part: which rule a message matches ([`Rules::first_match`]), and whether a
//! matched message raises an alarm now or is counted for the window's summary
//! ([`Limiter::admit`], its [`Verdict`] says why in words). No I/O, no clock: the
//! caller passes the time, so every rule here is tested without a socket.

use crate::section::{AlarmRule, FACILITIES};
use regex::Regex;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A parsed syslog message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msg {
    /// Facility number (`None`: the message had none).
    pub facility: Option<u8>,
    /// Severity number, 0 (`emerg`) to 7 (`debug`).
    pub severity: Option<u8>,
    /// Sending host (`-` when it named none: then the peer address).
    pub host: String,
    /// App-name or tag.
    pub app: String,
    /// The text.
    pub text: String,
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Name.
    pub name: String,
    facilities: u32,
    at_or_above: Option<u8>,
    host: Option<Regex>,
    app: Option<Regex>,
    message: Option<Regex>,
    /// The alarm's severity (`None`: the message's).
    pub alarm_severity: Option<u8>,
    /// Most alarms per window.
    pub max_per_window: Option<u32>,
}

/// The group's rules, in order.
#[derive(Debug, Clone, Default)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// Compiles the rules; `Err` names the rule and what is wrong (the validator
    /// refuses these first).
    pub fn new(list: &[AlarmRule]) -> Result<Self, String> {
        let re = |name: &str, what: &str, s: &Option<String>| -> Result<Option<Regex>, String> {
            s.as_deref().map(Regex::new).transpose().map_err(|e| format!("rule {name:?}: {what}: {e}"))
        };
        let sev = |name: &str, s: &Option<String>| -> Result<Option<u8>, String> {
            s.as_deref().map(|v| crate::alarm::rank(v).ok_or_else(|| format!("rule {name:?}: unknown severity {v:?}"))).transpose()
        };
        let mut out = Vec::with_capacity(list.len());
        for r in list {
            let mut facilities = 0u32;
            for f in &r.facility {
                let i = FACILITIES.iter().position(|x| x == f).ok_or_else(|| format!("rule {:?}: unknown facility {f:?}", r.name))?;
                facilities |= 1 << i;
            }
            out.push(Rule {
                name: r.name.clone(),
                facilities,
                at_or_above: sev(&r.name, &r.severity)?,
                host: re(&r.name, "host", &r.host)?,
                app: re(&r.name, "app", &r.app)?,
                message: re(&r.name, "message", &r.message)?,
                alarm_severity: sev(&r.name, &r.alarm_severity)?,
                max_per_window: r.max_per_window,
            });
        }
        Ok(Rules(out))
    }

    /// The index of the first rule every condition of which holds.
    pub fn first_match(&self, m: &Msg) -> Option<usize> {
        self.0.iter().position(|r| {
            (r.facilities == 0 || m.facility.is_some_and(|f| f < 32 && r.facilities & (1 << f) != 0))
                && r.at_or_above.is_none_or(|lvl| m.severity.is_some_and(|s| s <= lvl))
                && r.host.as_ref().is_none_or(|re| re.is_match(&m.host))
                && r.app.as_ref().is_none_or(|re| re.is_match(&m.app))
                && r.message.as_ref().is_none_or(|re| re.is_match(&m.text))
        })
    }
}

/// What [`Limiter::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Raise an alarm now.
    Raise,
    /// The same alarm was raised in this window: counted for its summary.
    Duplicate,
    /// The rule raised `max_per_window` alarms in this window: counted for its summary.
    RateLimited,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Raise => "first of its kind in the window: raised",
            Verdict::Duplicate => "the same alarm (rule, host, app, text) was raised in this window: counted for its summary",
            Verdict::RateLimited => "the rule raised its max_per_window alarms in this window: counted for its summary",
        })
    }
}

/// A summary to raise when a window closes: `count` messages like `sample` were not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Rule index.
    pub rule: usize,
    /// One of the messages (the first suppressed).
    pub sample: Msg,
    /// How many were suppressed.
    pub count: u32,
    /// Why (duplicates of one alarm, or the rule's rate limit).
    pub why: Verdict,
}

struct Seen {
    opened_ms: u64,
    suppressed: u32,
    sample: Option<Msg>,
}

struct RuleWindow {
    opened_ms: u64,
    raised: u32,
    suppressed: u32,
    sample: Option<Msg>,
}

/// Dedupe and rate limits over a window. Bounded: past `max_tracked` distinct alarms in
/// one window, new ones are raised without being tracked (never dropped for lack of room).
pub struct Limiter {
    window_ms: u64,
    max_tracked: usize,
    seen: HashMap<(usize, u64), Seen>,
    rules: HashMap<usize, RuleWindow>,
}

fn fingerprint(m: &Msg) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&m.host, &m.app, &m.text).hash(&mut h);
    h.finish()
}

impl Limiter {
    /// A limiter with this window.
    pub fn new(window_ms: u64, max_tracked: usize) -> Self {
        Limiter { window_ms: window_ms.max(1), max_tracked, seen: HashMap::new(), rules: HashMap::new() }
    }

    /// Decides for a message that matched `rule` (with its `max_per_window`).
    pub fn admit(&mut self, rule: usize, max_per_window: Option<u32>, m: &Msg, now_ms: u64) -> Verdict {
        let key = (rule, fingerprint(m));
        if let Some(s) = self.seen.get_mut(&key) {
            if now_ms < s.opened_ms + self.window_ms {
                s.suppressed += 1;
                s.sample.get_or_insert_with(|| m.clone());
                return Verdict::Duplicate;
            }
        }
        if let Some(max) = max_per_window {
            let w = self.rules.entry(rule).or_insert(RuleWindow { opened_ms: now_ms, raised: 0, suppressed: 0, sample: None });
            if now_ms >= w.opened_ms + self.window_ms && w.suppressed == 0 {
                *w = RuleWindow { opened_ms: now_ms, raised: 0, suppressed: 0, sample: None };
            }
            if w.raised >= max {
                w.suppressed += 1;
                w.sample.get_or_insert_with(|| m.clone());
                return Verdict::RateLimited;
            }
            w.raised += 1;
        }
        if self.seen.len() < self.max_tracked || self.seen.contains_key(&key) {
            self.seen.insert(key, Seen { opened_ms: now_ms, suppressed: 0, sample: None });
        }
        Verdict::Raise
    }

    /// Closes every window that ended by `now_ms`; returns the summaries to raise.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Summary> {
        let w = self.window_ms;
        let mut out = Vec::new();
        self.seen.retain(|(rule, _), s| {
            if now_ms < s.opened_ms + w {
                return true;
            }
            if let Some(sample) = s.sample.take() {
                out.push(Summary { rule: *rule, sample, count: s.suppressed, why: Verdict::Duplicate });
            }
            false
        });
        self.rules.retain(|rule, r| {
            if now_ms < r.opened_ms + w {
                return true;
            }
            if let Some(sample) = r.sample.take() {
                out.push(Summary { rule: *rule, sample, count: r.suppressed, why: Verdict::RateLimited });
            }
            false
        });
        out.sort_by_key(|s| s.rule);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> AlarmRule {
        AlarmRule {
            name: name.into(),
            facility: vec![],
            severity: None,
            host: None,
            app: None,
            message: None,
            alarm_severity: None,
            max_per_window: None,
        }
    }

    fn msg(fac: u8, sev: u8, host: &str, app: &str, text: &str) -> Msg {
        Msg { facility: Some(fac), severity: Some(sev), host: host.into(), app: app.into(), text: text.into() }
    }

    #[test]
    fn first_rule_whose_every_condition_holds() {
        let rules = Rules::new(&[
            AlarmRule { facility: vec!["local0".into()], severity: Some("err".into()), ..rule("sip-errors") },
            AlarmRule { host: Some("^gw[0-9]+$".into()), app: Some("kamailio".into()), message: Some("(?i)timeout".into()), ..rule("gw") },
            rule("catch-all"),
        ])
        .unwrap();
        assert_eq!(rules.first_match(&msg(16, 3, "a", "b", "x")), Some(0), "local0.err is at or above err");
        assert_eq!(rules.first_match(&msg(16, 2, "a", "b", "x")), Some(0), "crit is above err");
        assert_eq!(rules.first_match(&msg(16, 4, "gw1", "kamailio", "TIMEOUT")), Some(1), "warning is below err: next rule");
        assert_eq!(rules.first_match(&msg(1, 4, "gw1", "kamailio", "ok")), Some(2), "the regex on the text fails");
        let none = Rules::new(&[AlarmRule { severity: Some("crit".into()), ..rule("r") }]).unwrap();
        assert_eq!(none.first_match(&Msg { severity: None, ..msg(1, 0, "h", "a", "t") }), None, "no severity: not at or above");
    }

    #[test]
    fn bad_rules_are_named() {
        let e = Rules::new(&[AlarmRule { message: Some("(".into()), ..rule("broken") }]).unwrap_err();
        assert!(e.contains("broken") && e.contains("message"), "{e}");
    }

    #[test]
    fn duplicates_within_the_window_are_counted_and_summarised_once() {
        let mut l = Limiter::new(1000, 100);
        let m = msg(16, 3, "h", "a", "link down");
        assert_eq!(l.admit(0, None, &m, 0), Verdict::Raise);
        assert_eq!(l.admit(0, None, &m, 10), Verdict::Duplicate);
        assert_eq!(l.admit(0, None, &m, 999), Verdict::Duplicate);
        assert_eq!(l.admit(0, None, &msg(16, 3, "h", "a", "link up"), 20), Verdict::Raise, "another text is another alarm");
        assert!(l.expire(999).is_empty(), "the window is still open");
        let s = l.expire(1000);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].count, s[0].why), (2, Verdict::Duplicate));
        assert_eq!(l.admit(0, None, &m, 1001), Verdict::Raise, "a new window raises again");
    }

    #[test]
    fn a_rules_rate_limit_counts_the_rest() {
        let mut l = Limiter::new(1000, 100);
        for i in 0..3 {
            assert_eq!(l.admit(1, Some(3), &msg(1, 3, "h", "a", &format!("m{i}")), i), Verdict::Raise);
        }
        assert_eq!(l.admit(1, Some(3), &msg(1, 3, "h", "a", "m4"), 5), Verdict::RateLimited);
        assert_eq!(l.admit(1, Some(3), &msg(1, 3, "h", "a", "m5"), 6), Verdict::RateLimited);
        let s = l.expire(1000);
        assert_eq!(s.iter().map(|s| (s.count, s.why)).collect::<Vec<_>>(), vec![(2, Verdict::RateLimited)]);
        assert_eq!(l.admit(1, Some(3), &msg(1, 3, "h", "a", "m6"), 1001), Verdict::Raise);
    }

    #[test]
    fn past_the_tracking_bound_alarms_are_raised_not_dropped() {
        let mut l = Limiter::new(1000, 2);
        for i in 0..10 {
            assert_eq!(l.admit(0, None, &msg(1, 3, "h", "a", &format!("m{i}")), 1), Verdict::Raise);
        }
        assert_eq!(l.admit(0, None, &msg(1, 3, "h", "a", "m9"), 2), Verdict::Raise, "untracked: no dedupe, but nothing lost");
        assert_eq!(l.admit(0, None, &msg(1, 3, "h", "a", "m0"), 2), Verdict::Duplicate, "tracked ones still dedupe");
    }
}
