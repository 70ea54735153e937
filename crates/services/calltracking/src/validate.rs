//! Checks of what the site file and clients give: an account's domain and user, a
//! `PUT …/static/{domain}/{user}` body, the call events the core posts. Each error says what was expected and found.

use crate::calls::{CallEvent, Kind};
use crate::section::Transport;
use serde_json::Value;

/// A domain as the site writes them: its canonical (lowercase, punycode) form.
pub fn domain(d: &str) -> Result<String, String> {
    mware_config::canonical(d).map_err(|e| format!("expected a domain name, found {d:?}: {e}"))
}

/// An account's user part: 1 to 64 letters, digits and `-_.!~*'()+`.
pub fn user(u: &str) -> Result<(), String> {
    if !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+".contains(c)) {
        Ok(())
    } else {
        Err(format!("expected 1 to 64 letters, digits and -_.!~*'()+, found {:?}", u.chars().take(80).collect::<String>()))
    }
}

/// The contact as bound in the registrar: `;transport=tcp` added for TCP when the URI
/// names no transport.
pub fn bound_contact(contact: &str, transport: Option<Transport>) -> String {
    match transport {
        Some(Transport::Tcp) if !contact.to_ascii_lowercase().contains(";transport=") => format!("{contact};transport=tcp"),
        _ => contact.to_string(),
    }
}

/// A `PUT` body `{contact, transport?}`: the contact to bind, or every problem as
/// `(field, message)`.
pub fn put_body(v: &Value) -> Result<String, Vec<(String, String)>> {
    let mut errs = vec![];
    let Some(m) = v.as_object() else {
        return Err(vec![("".into(), format!("expected a JSON object, found {}", mware_config::kind(v)))]);
    };
    for k in m.keys().filter(|k| !matches!(k.as_str(), "contact" | "transport")) {
        errs.push((k.chars().take(64).collect(), "expected only contact and transport, found this field".into()));
    }
    let transport = match m.get("transport") {
        None => None,
        Some(Value::String(s)) if s == "udp" => Some(Transport::Udp),
        Some(Value::String(s)) if s == "tcp" => Some(Transport::Tcp),
        Some(other) => {
            errs.push(("transport".into(), format!("expected \"udp\" or \"tcp\", found {}", mware_config::found(other))));
            None
        }
    };
    let contact = match m.get("contact") {
        Some(Value::String(c)) => match mware_sip::addr::contact_target(c) {
            Ok(_) => Some(c.clone()),
            Err(e) => {
                errs.push(("contact".into(), e));
                None
            }
        },
        Some(other) => {
            errs.push(("contact".into(), format!("expected a sip: URI string, found {}", mware_config::kind(other))));
            None
        }
        None => {
            errs.push(("contact".into(), "expected a sip: URI, found nothing".into()));
            None
        }
    };
    match contact {
        Some(c) if errs.is_empty() => Ok(bound_contact(&c, transport)),
        _ => Err(errs),
    }
}

/// Most events in one POST.
pub const MAX_EVENTS: usize = 1000;

/// The events of a POST from the core (an array, or one object): the good ones, and
/// every problem of the others as `(JSON path, message)`.
pub fn events(v: &Value) -> (Vec<CallEvent>, Vec<(String, String)>) {
    let one = [v.clone()];
    let list: &[Value] = match v {
        Value::Array(a) => a,
        Value::Object(_) => &one,
        other => return (vec![], vec![(String::new(), format!("expected an array of events, found {}", mware_config::kind(other)))]),
    };
    if list.len() > MAX_EVENTS {
        return (vec![], vec![(String::new(), format!("expected at most {MAX_EVENTS} events, found {}", list.len()))]);
    }
    let (mut ok, mut errs) = (vec![], vec![]);
    for (i, e) in list.iter().enumerate() {
        match event(e) {
            Ok(ev) => ok.push(ev),
            Err((f, m)) => errs.push((format!("[{i}].{f}"), m)),
        }
    }
    (ok, errs)
}

fn event(v: &Value) -> Result<CallEvent, (String, String)> {
    let text = |k: &str, max: usize, ok: &dyn Fn(char) -> bool| -> Result<String, (String, String)> {
        match v.get(k) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= max && s.chars().all(ok) => Ok(s.clone()),
            Some(Value::String(s)) => Err((
                k.into(),
                format!("expected 1 to {max} of the allowed characters, found {:?}", s.chars().take(80).collect::<String>()),
            )),
            other => Err((k.into(), format!("expected a string, found {}", other.map_or("nothing".into(), mware_config::found)))),
        }
    };
    let user = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%#".contains(c);
    let kind = match v.get("event").and_then(Value::as_str) {
        Some("ringing") => Kind::Ringing,
        Some("answered") => Kind::Answered,
        Some("ended") => Kind::Ended,
        Some("failed") => Kind::Failed,
        other => return Err(("event".into(), format!("expected ringing, answered, ended or failed, found {other:?}"))),
    };
    let id = text("id", 64, &|c| c.is_ascii_alphanumeric() || c == '-')?;
    let from = text("from", 64, &user)?;
    let to = text("to", 64, &user)?;
    let domain =
        domain(&text("domain", 253, &|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')?).map_err(|e| ("domain".to_string(), e))?;
    let code = match v.get("code") {
        None => 0,
        Some(c) => {
            c.as_u64().filter(|c| *c < 700).ok_or_else(|| ("code".to_string(), format!("expected a SIP code 0..699, found {c}")))? as u16
        }
    };
    let at_ms =
        v.get("at_ms").and_then(Value::as_u64).ok_or_else(|| ("at_ms".to_string(), "expected ms since the Unix epoch".to_string()))?;
    // The member's Contact: kept as its address when it is a sip: URI with an IP address,
    // dropped otherwise (a phone's odd Contact never costs the event).
    let member = v.get("member").and_then(Value::as_str).and_then(|c| mware_sip::addr::contact_target(c).ok()).map(|a| a.to_string());
    let queue = match v.get("queue") {
        None | Some(Value::Null) => None,
        Some(Value::String(q)) if q.is_empty() => None,
        Some(_) => Some(text("queue", 64, &user)?),
    };
    Ok(CallEvent { event: kind, id, from, to, domain, code, at_ms, member, queue })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_checked_field_by_field() {
        assert_eq!(put_body(&json!({"contact": "sip:gw@10.0.0.1:5070"})), Ok("sip:gw@10.0.0.1:5070".into()));
        assert_eq!(put_body(&json!({"contact": "sip:gw@10.0.0.1", "transport": "tcp"})), Ok("sip:gw@10.0.0.1;transport=tcp".into()));
        let e = put_body(&json!({"contact": "sip:gw@host.example", "transport": "sctp", "x": 1})).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["x", "transport", "contact"], "{e:?}");
        assert!(put_body(&json!({})).unwrap_err()[0].1.contains("found nothing"));
        assert!(put_body(&json!([1])).is_err());
        assert!(user("gw1").is_ok() && user("a b").is_err() && user("").is_err());
        assert_eq!(domain("Example.TEST").unwrap(), "example.test");
    }

    #[test]
    fn events_are_checked_one_by_one() {
        let good = json!({"event": "ringing", "id": "ab12", "from": "1001", "to": "1002", "domain": "D.test", "code": 180, "at_ms": 5, "queue": "queue-7"});
        let (ok, errs) =
            events(&json!([good, {"event": "rung"}, {"event": "ended", "id": "x\"y", "from": "a", "to": "b", "domain": "d", "at_ms": 1}]));
        assert_eq!(ok.len(), 1);
        assert_eq!((ok[0].domain.as_str(), ok[0].queue.as_deref()), ("d.test", Some("queue-7")));
        let paths: Vec<_> = errs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["[1].event", "[2].id"], "{errs:?}");
        assert_eq!(events(&good).0.len(), 1, "one object is one event");
        assert!(events(&json!("x")).1[0].1.contains("array"));
    }
}
