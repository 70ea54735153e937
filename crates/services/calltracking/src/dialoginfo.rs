//! The dialog event package's bodies (RFC 4235, `application/dialog-info+xml`), pure:
//! [`parse`] reads a NOTIFY body (with `roxmltree`), [`fold`] applies it to the dialogs
//! known of a number (a `full` document replaces them, a `partial` one changes the
//! dialogs it names; a `terminated` dialog leaves), and [`summary`] says what a user
//! sees: `busy` (a confirmed dialog), `ringing` (an early or trying one) or `idle`.
//! [`check_uri`] is the check of a watched number.

use std::collections::BTreeMap;

/// The dialog-info namespace.
const NS: &str = "urn:ietf:params:xml:ns:dialog-info";
/// Largest body read.
const MAX_BODY: usize = 64 * 1024;

/// One NOTIFY body, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The document's `version` (increases with each NOTIFY of a subscription).
    pub version: u64,
    /// `state="full"` (every dialog of the entity) or `partial`.
    pub full: bool,
    /// Each dialog's id and state (`trying`, `proceeding`, `early`, `confirmed`,
    /// `terminated`).
    pub dialogs: Vec<(String, String)>,
}

/// Reads a dialog-info document; an error says what was expected and found.
pub fn parse(body: &str) -> Result<Notice, String> {
    if body.len() > MAX_BODY {
        return Err(format!("expected a dialog-info body of at most {MAX_BODY} bytes, found {} bytes", body.len()));
    }
    let doc = roxmltree::Document::parse(body).map_err(|e| format!("expected dialog-info XML, found malformed XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "dialog-info" || root.tag_name().namespace() != Some(NS) {
        return Err(format!("expected the root element dialog-info in {NS}, found {:?}", root.tag_name().name()));
    }
    let version = root
        .attribute("version")
        .ok_or("expected a version attribute on dialog-info, found none")?
        .parse::<u64>()
        .map_err(|e| format!("expected dialog-info version to be a number: {e}"))?;
    let full = match root.attribute("state") {
        Some("full") => true,
        Some("partial") => false,
        other => return Err(format!("expected dialog-info state \"full\" or \"partial\", found {other:?}")),
    };
    let mut dialogs = vec![];
    for d in root.children().filter(|n| n.is_element() && n.tag_name().name() == "dialog") {
        let id = d.attribute("id").ok_or("expected an id attribute on each dialog, found none")?;
        let state = d
            .children()
            .find(|n| n.is_element() && n.tag_name().name() == "state")
            .and_then(|n| n.text())
            .map(|t| t.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("expected a state element in dialog {id:?}, found none"))?;
        if !matches!(state.as_str(), "trying" | "proceeding" | "early" | "confirmed" | "terminated") {
            return Err(format!(
                "expected the state of dialog {id:?} to be trying, proceeding, early, confirmed or terminated, found {state:?}"
            ));
        }
        dialogs.push((id.to_string(), state));
    }
    Ok(Notice { version, full, dialogs })
}

/// The dialogs known after `n` (terminated ones leave).
pub fn fold(known: &BTreeMap<String, String>, n: &Notice) -> BTreeMap<String, String> {
    let mut out = if n.full { BTreeMap::new() } else { known.clone() };
    for (id, state) in &n.dialogs {
        if state == "terminated" {
            out.remove(id);
        } else {
            out.insert(id.clone(), state.clone());
        }
    }
    out
}

/// What a user sees of a number with these dialogs.
pub fn summary(dialogs: &BTreeMap<String, String>) -> &'static str {
    if dialogs.values().any(|s| s == "confirmed") {
        "busy"
    } else if dialogs.is_empty() {
        "idle"
    } else {
        "ringing"
    }
}

/// A watched number: `sip:user@host` with a plain user part and host, no spaces or
/// parameters (it goes into the Request-URI and To of each SUBSCRIBE).
pub fn check_uri(u: &str) -> Result<(), String> {
    let Some(rest) = u.strip_prefix("sip:") else {
        return Err(format!("expected a sip: URI such as \"sip:201@other.example.ru\", found {u:?}"));
    };
    let Some((user, host)) = rest.split_once('@') else {
        return Err(format!("expected sip:user@host, found {u:?}"));
    };
    let user_ok = !user.is_empty() && user.len() <= 64 && user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+*#".contains(c));
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        && !host.starts_with(['.', '-']);
    match (user_ok, host_ok) {
        (true, true) => Ok(()),
        (false, _) => Err(format!("expected a user part of letters, digits and -_.+*#, found {user:?}")),
        (_, false) => Err(format!("expected a host of letters, digits, dots and dashes (or an IP), found {host:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Kamailio 5.6's pua_dialoginfo publishes it (abridged).
    const EARLY: &str = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="full" entity="sip:201@other.test">
  <dialog id="padi-1" call-id="1-22832@127.0.0.1" direction="recipient">
    <state>early</state>
    <remote><identity>sip:caller@other.test</identity></remote>
  </dialog>
</dialog-info>"#;

    fn doc(version: u64, full: bool, dialogs: &[(&str, &str)]) -> String {
        let d: String = dialogs.iter().map(|(id, s)| format!("<dialog id=\"{id}\"><state>{s}</state></dialog>")).collect();
        format!(
            "<dialog-info xmlns=\"{NS}\" version=\"{version}\" state=\"{}\" entity=\"sip:a@b\">{d}</dialog-info>",
            if full { "full" } else { "partial" }
        )
    }

    #[test]
    fn kamailios_body_is_read() {
        let n = parse(EARLY).unwrap();
        assert_eq!(n, Notice { version: 2, full: true, dialogs: vec![("padi-1".into(), "early".into())] });
        assert_eq!(summary(&fold(&BTreeMap::new(), &n)), "ringing");
    }

    #[test]
    fn states_follow_the_dialogs() {
        let mut known = BTreeMap::new();
        for (body, want) in [
            (doc(0, true, &[]), "idle"),
            (doc(1, true, &[("a", "trying")]), "ringing"),
            (doc(2, true, &[("a", "confirmed")]), "busy"),
            (doc(3, false, &[("b", "early")]), "busy"),
            (doc(4, false, &[("a", "terminated")]), "ringing"),
            (doc(5, true, &[("b", "terminated")]), "idle"),
        ] {
            known = fold(&known, &parse(&body).unwrap());
            assert_eq!(summary(&known), want, "{body}");
        }
    }

    #[test]
    fn wrong_bodies_say_what_was_expected() {
        for (body, says) in [
            ("<x/>".to_string(), "root element dialog-info"),
            ("not xml".to_string(), "malformed XML"),
            (format!("<dialog-info xmlns=\"{NS}\" state=\"full\"/>"), "version attribute"),
            (format!("<dialog-info xmlns=\"{NS}\" version=\"1\" state=\"odd\"/>"), "\"full\" or \"partial\""),
            (doc(1, true, &[("a", "dancing")]), "found \"dancing\""),
            (
                format!("<dialog-info xmlns=\"{NS}\" version=\"1\" state=\"full\"><dialog><state>early</state></dialog></dialog-info>"),
                "id attribute",
            ),
        ] {
            let e = parse(&body).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn numbers_are_plain_sip_uris() {
        assert!(check_uri("sip:201@other.example.ru").is_ok());
        assert!(check_uri("sip:+74951234567@10.0.1.5").is_ok());
        for bad in ["tel:201", "sip:other.example.ru", "sip:2 01@x", "sip:201@x;transport=tcp", "sip:@x", "sip:201@x\r\nVia: y"] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }
}
