//! Checks of what the site file and clients give: an account's domain and user, a
//! `PUT …/static/{domain}/{user}` body. Each error says what was expected and found.

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
}
