//! The checks of a new notification's body (`POST /api/callmanager/v1/notifications`):
//! every problem reported, each naming its field (`to[2]`, `window.not_after`), into a
//! [`Notice`] whose message is yet to be rendered.

use super::{media, Message, Notice, Number, Window};
use crate::error::CallError;
use crate::validate;
use serde_json::{Map, Value};

/// Most numbers in one notification.
pub const MAX_NUMBERS: usize = 100;

pub(crate) const KNOWN: [&str; 10] =
    ["domain", "to", "text", "audio", "caller_id", "attempts", "retry_after_s", "answer_timeout_s", "window", "confirm_digit"];

type Result<T> = std::result::Result<T, CallError>;
type Errs = Vec<(String, String)>;

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

fn num(m: &Map<String, Value>, k: &str, max: u32, dflt: u32, errs: &mut Errs) -> u32 {
    match m.get(k) {
        None | Some(Value::Null) => dflt,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|x| (1..=u64::from(max)).contains(&x)) => n.as_u64().unwrap_or(1) as u32,
        Some(v) => {
            errs.push((k.into(), format!("expected a whole number 1..={max}, found {}", cut(&v.to_string()))));
            dflt
        }
    }
}

fn time(v: Option<&Value>, field: &str, errs: &mut Errs) -> Option<u64> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.timestamp_millis().max(0) as u64),
            Err(e) => {
                errs.push((field.into(), format!("expected an RFC 3339 time (2026-12-07T09:00:00Z), found {:?}: {e}", cut(s))));
                None
            }
        },
        Some(v) => {
            errs.push((field.into(), format!("expected an RFC 3339 time string, found {}", mware_config::kind(v))));
            None
        }
    }
}

/// Checks `window` (every problem into `errs`).
fn window(v: Option<&Value>, now: u64, errs: &mut Errs) -> Window {
    let m = match v {
        None | Some(Value::Null) => return Window::default(),
        Some(Value::Object(m)) => m,
        Some(v) => {
            errs.push(("window".into(), format!("expected an object {{not_before?, not_after?}}, found {}", mware_config::kind(v))));
            return Window::default();
        }
    };
    for k in m.keys().filter(|k| !["not_before", "not_after"].contains(&k.as_str())) {
        errs.push((format!("window.{}", cut(k)), "unknown field; expected not_before, not_after".into()));
    }
    let w = Window {
        not_before_ms: time(m.get("not_before"), "window.not_before", errs),
        not_after_ms: time(m.get("not_after"), "window.not_after", errs),
    };
    if let Some(na) = w.not_after_ms {
        if na <= now {
            errs.push((
                "window.not_after".into(),
                format!("expected a time in the future, found {} (now is {})", rfc3339(na), rfc3339(now)),
            ));
        } else if w.not_before_ms.is_some_and(|nb| nb >= na) {
            errs.push(("window.not_before".into(), "expected a time before window.not_after".into()));
        }
    }
    w
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Checks a new notification's body (every problem reported) into a [`Notice`] whose
/// message is yet to be rendered.
pub(crate) fn check(m: &Map<String, Value>, domain: Option<String>, group: u32, instance: &str, now: u64) -> Result<Notice> {
    let mut errs: Errs = vec![];
    for k in m.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        errs.push((cut(k), format!("unknown field; expected one of {}", KNOWN.join(", "))));
    }
    let domain = match (domain, m.get("domain")) {
        (Some(d), _) => Some(d),
        (None, Some(Value::String(d))) => {
            errs.push(("domain".into(), format!("expected a domain that a group of the site serves, found {:?}", cut(d))));
            None
        }
        (None, _) => {
            errs.push(("domain".into(), "required: a domain of the site".into()));
            None
        }
    };
    let dom = domain.clone().unwrap_or_else(|| "invalid".into());
    let mut to: Vec<String> = vec![];
    match m.get("to") {
        Some(Value::Array(a)) if a.is_empty() || a.len() > MAX_NUMBERS => {
            errs.push(("to".into(), format!("expected 1 to {MAX_NUMBERS} numbers, found {}", a.len())))
        }
        Some(Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                let field = format!("to[{i}]");
                match v {
                    Value::String(s) => match validate::party(s, &dom) {
                        Ok(u) if to.contains(&u) => errs.push((field, format!("a duplicate of an earlier number ({u})"))),
                        Ok(u) => to.push(u),
                        Err(e) => errs.push((field, e)),
                    },
                    v => errs.push((field, format!("expected a string, found {}", mware_config::kind(v)))),
                }
            }
        }
        Some(v) => errs.push(("to".into(), format!("expected an array of numbers, found {}", mware_config::kind(v)))),
        None => errs.push(("to".into(), "required: 1 to 100 numbers".into())),
    }
    let message = match (m.get("text"), m.get("audio")) {
        (Some(_), Some(_)) => {
            errs.push(("text".into(), "expected text or audio, found both".into()));
            None
        }
        (Some(Value::String(t)), None) => {
            let n = t.chars().count();
            if n == 0 || n > media::MAX_TEXT {
                errs.push(("text".into(), format!("expected 1 to {} characters, found {n}", media::MAX_TEXT)));
                None
            } else if let Some(c) = t.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
                errs.push(("text".into(), format!("expected no control characters, found U+{:04X}", c as u32)));
                None
            } else {
                Some(Message::Text(t.clone()))
            }
        }
        (None, Some(Value::String(p))) => match media::check_wav(p) {
            Ok(()) => Some(Message::Audio(p.clone())),
            Err(e) => {
                errs.push(("audio".into(), e));
                None
            }
        },
        (Some(v), None) => {
            errs.push(("text".into(), format!("expected a string, found {}", mware_config::kind(v))));
            None
        }
        (None, Some(v)) => {
            errs.push(("audio".into(), format!("expected a string, found {}", mware_config::kind(v))));
            None
        }
        (None, None) => {
            errs.push(("text".into(), "required: text (or audio, a WAV file)".into()));
            None
        }
    };
    let caller_id = match m.get("caller_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => validate::display(s).map_err(|e| errs.push(("caller_id".into(), e))).ok(),
        Some(v) => {
            errs.push(("caller_id".into(), format!("expected a string, found {}", mware_config::kind(v))));
            None
        }
    };
    let attempts = num(m, "attempts", 10, 3, &mut errs);
    let retry_after_s = num(m, "retry_after_s", 86_400, 300, &mut errs);
    let answer_timeout_s = num(m, "answer_timeout_s", 120, 30, &mut errs);
    let window = window(m.get("window"), now, &mut errs);
    let confirm_digit = match m.get("confirm_digit") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() == 1 && validate::dtmf(s).is_ok() => s.chars().next(),
        Some(v) => {
            errs.push(("confirm_digit".into(), format!("expected one digit 0-9, *, #, A-D, found {}", cut(&v.to_string()))));
            None
        }
    };
    let (Some(domain), Some(message)) = (domain, message) else {
        return Err(CallError::InvalidMany(errs));
    };
    if !errs.is_empty() {
        return Err(CallError::InvalidMany(errs));
    }
    let numbers = to.into_iter().map(|to| Number { to, state: "pending".into(), next_ms: 0, attempts: vec![] }).collect();
    Ok(Notice {
        id: format!("{group}-n{:012x}", rand::random::<u64>() >> 16),
        domain,
        message,
        message_ms: 0,
        caller_id,
        attempts,
        retry_after_s,
        answer_timeout_s,
        window,
        confirm_digit,
        created_ms: now,
        state: "running".into(),
        instance: instance.to_string(),
        numbers,
    })
}

/// The group a notification id names (`<group>-n<hex>`).
pub(crate) fn group_of(id: &str) -> Option<u32> {
    id.split_once("-n").and_then(|(g, _)| g.parse::<u32>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn fields(r: Result<Notice>) -> Vec<String> {
        match r {
            Err(CallError::InvalidMany(v)) => v.into_iter().map(|(f, m)| format!("{f}: {m}")).collect(),
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let now = 1_800_000_000_000;
        let long = "x".repeat(1001);
        let m = body(serde_json::json!({
            "to": [], "text": long, "bogus": 1, "window": {"not_after": "2020-01-01T00:00:00Z"}, "confirm_digit": "12"
        }));
        let e = fields(check(&m, Some("d.test".into()), 1, "m1", now));
        for want in [
            "to: expected 1 to 100",
            "text: expected 1 to 1000 characters, found 1001",
            "bogus: unknown field",
            "window.not_after: expected a time in the future",
            "confirm_digit:",
        ] {
            assert!(e.iter().any(|x| x.starts_with(want)), "{want} in {e:#?}");
        }
        let m = body(serde_json::json!({"to": ["1001", "sip:a@b\r\nX: y", "1001"], "audio": "rel.wav", "window": {"x": 1}}));
        let e = fields(check(&m, Some("d.test".into()), 1, "m1", now));
        for want in ["to[1]: expected no control", "to[2]: a duplicate", "audio: expected an absolute path", "window.x: unknown field"] {
            assert!(e.iter().any(|x| x.starts_with(want)), "{want} in {e:#?}");
        }
        let m = body(serde_json::json!({"to": ["1001"], "text": "hi"}));
        let e = fields(check(&m, None, 1, "m1", now));
        assert!(e[0].starts_with("domain: required"), "{e:?}");
    }

    #[test]
    fn a_good_body_gives_the_defaults() {
        let m = body(serde_json::json!({"to": ["1001", "tel:+7495"], "text": "Hello", "confirm_digit": "1",
            "window": {"not_before": "2026-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00+03:00"}}));
        let n = check(&m, Some("d.test".into()), 4, "m1", 1_800_000_000_000).unwrap();
        assert!(n.id.starts_with("4-n"));
        assert_eq!(n.numbers[1].to, "sip:+7495@d.test;user=phone");
        assert_eq!((n.attempts, n.retry_after_s, n.answer_timeout_s, n.confirm_digit), (3, 300, 30, Some('1')));
        assert_eq!(n.window.not_before_ms, Some(1_767_225_600_000));
        assert_eq!(group_of(&n.id), Some(4));
        assert_eq!(group_of("4-c12"), None);
    }
}
