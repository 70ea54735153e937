//! The check of a new order's body: every problem is reported with its field, expected
//! and found; nothing is stored unless all pass. Pure: the config, the group's view of
//! the domain and the clock come in as arguments.

use crate::order::{Order, OrderState};
use crate::party;
use crate::section::CallbackConfig;
use serde_json::{Map, Value};

/// Fields of a new order.
pub const FIELDS: &[&str] = &["domain", "number", "queue", "operator", "not_before", "not_after", "note"];
/// Longest note, in bytes.
pub const MAX_NOTE: usize = 1024;

/// What the order's domain is to this group (from the site's domain tree).
pub enum Owner {
    /// This group serves it.
    Us,
    /// Another group serves it.
    Group(u32),
    /// No group serves it.
    Nobody,
}

/// Everything the check needs besides the body.
pub struct Ctx<'a> {
    /// The group's `callback` section.
    pub cfg: &'a CallbackConfig,
    /// This group's number.
    pub group: u32,
    /// Who serves a canonical domain.
    pub owner: &'a dyn Fn(&str) -> Owner,
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
}

/// A new order from `body`, or every problem as (field, message).
pub fn order(body: &[u8], cx: &Ctx<'_>, id: String) -> Result<Order, Vec<(String, String)>> {
    let m: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        Ok(other) => return Err(vec![("body".into(), format!("expected a JSON object, found {}", mware_config::kind(&other)))]),
        Err(e) => return Err(vec![("body".into(), format!("expected JSON: {e}"))]),
    };
    let mut errs: Vec<(String, String)> = vec![];
    for k in m.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errs.push((k.chars().take(64).collect(), format!("unknown field; expected one of {}", FIELDS.join(", "))));
    }
    let text = |k: &str, need: bool, errs: &mut Vec<(String, String)>| -> Option<String> {
        match m.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) if !need => None,
            None | Some(Value::Null) => {
                errs.push((k.into(), "required".into()));
                None
            }
            Some(v) => {
                errs.push((k.into(), format!("expected a string, found {}", mware_config::kind(v))));
                None
            }
        }
    };
    let domain = text("domain", true, &mut errs).and_then(|d| match mware_config::canonical(&d) {
        Ok(c) => match (cx.owner)(&c) {
            Owner::Us => Some(c),
            Owner::Group(g) => {
                errs.push((
                    "domain".into(),
                    format!("{c} is served by group {g}, not group {}: ask that group's active instance", cx.group),
                ));
                None
            }
            Owner::Nobody => {
                errs.push(("domain".into(), format!("expected a domain that a group of the site serves, found {c}")));
                None
            }
        },
        Err(e) => {
            errs.push(("domain".into(), e.to_string()));
            None
        }
    });
    let number = text("number", true, &mut errs).filter(|n| party::check(n).map_err(|e| errs.push(("number".into(), e))).is_ok());
    let queue = text("queue", false, &mut errs);
    let operator = text("operator", false, &mut errs);
    match (&queue, &operator) {
        (None, None) => errs.push(("queue".into(), "expected a queue or an operator, found neither".into())),
        (Some(_), Some(_)) => errs.push(("operator".into(), "expected a queue or an operator, found both".into())),
        (Some(q), None) if cx.cfg.queue(q).is_none() => {
            let known: Vec<&str> = cx.cfg.queues.iter().map(|q| q.name.as_str()).collect();
            errs.push(("queue".into(), format!("unknown queue {}; expected one of: {}", mware_config::quote(q), known.join(", "))));
        }
        (None, Some(o)) if cx.cfg.operator(o).is_none() => {
            errs.push((
                "operator".into(),
                format!("expected an operator listed in a queue of the callback section, found {}", mware_config::quote(o)),
            ));
        }
        _ => {}
    }
    let not_before = time(&m, "not_before", &mut errs);
    let not_after = time(&m, "not_after", &mut errs);
    if let Some(end) = not_after {
        if end <= cx.now_ms {
            errs.push((
                "not_after".into(),
                format!("expected a time in the future, found {} (now is {})", rfc3339(end), rfc3339(cx.now_ms)),
            ));
        } else if let Some(start) = not_before.filter(|s| *s >= end) {
            errs.push(("not_before".into(), format!("expected a time before not_after ({}), found {}", rfc3339(end), rfc3339(start))));
        }
    }
    let note = text("note", false, &mut errs).filter(|n| {
        let bad = if n.len() > MAX_NOTE {
            Some(format!("expected at most {MAX_NOTE} bytes, found {} bytes", n.len()))
        } else {
            n.chars()
                .find(|c| c.is_control() && *c != '\n')
                .map(|c| format!("expected no control characters but newlines, found U+{:04X}", c as u32))
        };
        bad.map(|b| errs.push(("note".into(), b))).is_none()
    });
    if !errs.is_empty() {
        return Err(errs);
    }
    let (Some(domain), Some(number)) = (domain, number) else {
        return Err(vec![("body".into(), "incomplete".into())]);
    };
    Ok(Order {
        id,
        domain,
        number,
        queue,
        operator,
        not_before_ms: not_before,
        not_after_ms: not_after,
        note,
        created_ms: cx.now_ms,
        state: OrderState::Waiting,
        next_at_ms: cx.now_ms,
        reason: None,
        attempts: vec![],
        ended_ms: None,
    })
}

/// An optional time: RFC 3339 in UTC (`2026-12-07T15:00:00Z`) or ms since the Unix epoch.
fn time(m: &Map<String, Value>, k: &str, errs: &mut Vec<(String, String)>) -> Option<u64> {
    match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(Value::String(s)) => match humantime::parse_rfc3339(s) {
            Ok(t) => t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as u64),
            Err(e) => {
                errs.push((
                    k.into(),
                    format!("expected an RFC 3339 UTC time such as 2026-12-07T15:00:00Z ({e}), found {}", mware_config::quote(s)),
                ));
                None
            }
        },
        Some(v) => {
            errs.push((k.into(), format!("expected an RFC 3339 UTC time or ms since the Unix epoch, found {}", mware_config::found(v))));
            None
        }
    }
}

/// `ms` as RFC 3339 UTC.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> CallbackConfig {
        serde_json::from_value(json!({"queues": [{"name": "sales", "operators": [{"uri": "1001", "section": "op-1001"}]}]})).unwrap()
    }

    fn check(body: Value) -> Result<Order, Vec<(String, String)>> {
        let c = cfg();
        let owner = |d: &str| {
            if d == "example.test" {
                Owner::Us
            } else if d == "other.test" {
                Owner::Group(2)
            } else {
                Owner::Nobody
            }
        };
        let cx = Ctx { cfg: &c, group: 1, owner: &owner, now_ms: 1_800_000_000_000 };
        order(body.to_string().as_bytes(), &cx, "1-ab".into())
    }

    fn fields(r: Result<Order, Vec<(String, String)>>) -> Vec<String> {
        r.unwrap_err().into_iter().map(|(f, m)| format!("{f}: {m}")).collect()
    }

    #[test]
    fn a_good_order_is_taken() {
        let o = check(json!({"domain": "Example.TEST", "number": "+7 495".replace(' ', ""), "queue": "sales",
            "not_before": "2027-01-15T08:00:00Z", "not_after": 1_900_000_000_000u64, "note": "call back\nabout the bill"}))
        .unwrap();
        assert_eq!((o.domain.as_str(), o.state, o.not_after_ms), ("example.test", OrderState::Waiting, Some(1_900_000_000_000)));
        assert_eq!(o.not_before_ms, Some(1_800_000_000_000));
        assert!(check(json!({"domain": "example.test", "number": "2001", "operator": "1001"})).is_ok());
    }

    #[test]
    fn bad_input_names_every_field() {
        let f = fields(check(json!({"domain": "example.test", "number": "2001\r\nVia: x", "queue": "nope", "bogus": 1,
            "not_after": "2020-01-01T00:00:00Z", "note": 5})));
        for w in [
            "bogus: unknown field",
            "number: expected no control characters",
            "queue: unknown queue \"nope\"",
            "not_after: expected a time in the future",
            "note: expected a string",
        ] {
            assert!(f.iter().any(|x| x.starts_with(w)), "{w} not in {f:#?}");
        }
        assert_eq!(f.len(), 5, "{f:#?}");
        let f = fields(check(json!({"domain": "other.test", "number": "2001", "queue": "sales", "operator": "1001"})));
        assert!(
            f[0].starts_with("domain: other.test is served by group 2")
                && f[1].starts_with("operator: expected a queue or an operator, found both"),
            "{f:#?}"
        );
        let f = fields(check(
            json!({"domain": "example.test", "number": "2001", "operator": "9999", "not_before": "tomorrow", "not_after": -1}),
        ));
        assert_eq!(f.len(), 3, "{f:#?}");
        let f = fields(check(
            json!({"domain": "example.test", "number": "2001", "queue": "sales", "not_before": 1_900_000_000_001u64, "not_after": 1_900_000_000_000u64}),
        ));
        assert!(f[0].starts_with("not_before: expected a time before not_after"), "{f:#?}");
        assert_eq!(fields(check(json!([1]))), vec!["body: expected a JSON object, found a list".to_string()]);
    }
}
