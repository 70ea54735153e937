//! What a CTI client follows, for every adapter (WebSocket JSON, gRPC): a domain, an
//! extension (calls from or to it), a hunt number or queue (calls to it) or an
//! external number; read from the client's request and checked (the error says what
//! was expected and found), matched against each published change.

use crate::tracker::{Published, Tracker};
use serde_json::{json, Value};

/// What a client follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every call of the domain (and its external numbers' changes).
    Domain(String),
    /// Calls from or to `user` in `domain`.
    Extension(String, String),
    /// Calls to the hunt number or queue `user` in `domain`.
    Hunt(String, String),
    /// An external number (its URI).
    Number(String),
}

impl Filter {
    /// Whether the change `p` goes to this client.
    pub fn matches(&self, p: &Published) -> bool {
        match self {
            Filter::Domain(d) => &p.domain == d,
            Filter::Extension(u, d) => &p.domain == d && (&p.from == u || &p.to == u),
            Filter::Hunt(u, d) => p.event != "number" && &p.domain == d && &p.to == u,
            Filter::Number(n) => p.event == "number" && &p.id == n,
        }
    }

    /// The answer's `subscribed` value.
    pub fn describe(&self) -> Value {
        match self {
            Filter::Domain(d) => json!({"domain": d}),
            Filter::Extension(u, d) => json!({"extension": format!("{u}@{d}")}),
            Filter::Hunt(u, d) => json!({"hunt": format!("{u}@{d}")}),
            Filter::Number(n) => json!({"number": n}),
        }
    }

    /// What a new subscriber gets at once: an external number's state now.
    pub fn current(&self, tracker: &Tracker) -> Vec<Published> {
        let Filter::Number(n) = self else { return vec![] };
        let views = tracker.numbers().find(n, mware_config::now_ms());
        views.into_iter().map(|v| crate::tracker::number_event(v.domain, v.number, v.state, v.since_ms)).collect()
    }

    /// One of `domain`, `extension`, `hunt`, `number` with its value.
    pub fn parse(kind: &str, value: &str) -> Result<Filter, String> {
        let user_at = |x: &str| -> Result<(String, String), String> {
            let (u, d) = x.split_once('@').ok_or_else(|| format!("expected {kind} as user@domain, found {x:?}"))?;
            crate::validate::user(u)?;
            Ok((u.to_string(), crate::validate::domain(d)?))
        };
        match kind {
            "domain" => crate::validate::domain(value).map(Filter::Domain),
            "extension" => user_at(value).map(|(u, d)| Filter::Extension(u, d)),
            "hunt" => user_at(value).map(|(u, d)| Filter::Hunt(u, d)),
            "number" => crate::dialoginfo::check_uri(value).map(|()| Filter::Number(value.to_string())),
            other => Err(format!("expected domain, extension, hunt or number, found {other:?}")),
        }
    }

    /// A WebSocket client's `{"subscribe": {"domain": "d"}}` (or `extension`, `hunt`,
    /// `number`).
    pub fn from_json(text: &str) -> Result<Filter, String> {
        const EXPECTED: &str = "expected {\"subscribe\": {\"domain\": \"d\"}} (or \"extension\": \"user@d\", \"hunt\": \"user@d\", \"number\": \"sip:user@host\")";
        let v: Value = serde_json::from_str(text).map_err(|e| format!("{EXPECTED}, found no JSON: {e}"))?;
        let s = v.get("subscribe").and_then(Value::as_object).ok_or(EXPECTED)?;
        let mut keys = s.iter();
        match (keys.next(), keys.next()) {
            (Some((k, Value::String(val))), None) => Filter::parse(k, val),
            _ => Err(format!("{EXPECTED}, found {}", Value::Object(s.clone()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_and_checked() {
        assert_eq!(Filter::from_json(r#"{"subscribe": {"domain": "Example.Test"}}"#), Ok(Filter::Domain("example.test".into())));
        assert_eq!(
            Filter::from_json(r#"{"subscribe": {"hunt": "hunt1@example.test"}}"#),
            Ok(Filter::Hunt("hunt1".into(), "example.test".into()))
        );
        assert_eq!(Filter::parse("number", "sip:201@other.test"), Ok(Filter::Number("sip:201@other.test".into())));
        for bad in [r#"{"subscribe": {"hunt": "hunt1"}}"#, r#"{"subscribe": {"colour": "x"}}"#, r#"{"subscribe": {}}"#, "nope"] {
            assert!(Filter::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hunt_subscriber_gets_calls_to_it_only() {
        let call = |from: &str, to: &str| crate::tracker::Published {
            event: "ringing",
            id: "c".into(),
            domain: "d".into(),
            from: from.into(),
            to: to.into(),
            at_ms: 1,
            answered: None,
            member: None,
            code: None,
            state: None,
            frame: String::new(),
        };
        let f = Filter::Hunt("hunt1".into(), "d".into());
        assert!(f.matches(&call("alice", "hunt1")) && !f.matches(&call("hunt1", "bob")));
        assert!(Filter::Extension("hunt1".into(), "d".into()).matches(&call("hunt1", "bob")));
    }
}
