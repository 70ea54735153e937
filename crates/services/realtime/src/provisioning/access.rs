//! Who is calling and what it may see.
//!
//! The path segment after `/provision/asterisk/` names the SIP server: its entity id
//! (Asterisk's `entityid`, `12:34:56:78:9a:bc`), listed in one group's
//! `provisioning.entities`. [`resolve`] is the route's rule from that segment to the
//! group serving it (the daemon forwards there); an id listed nowhere is refused (404)
//! with no group guessed. A tenant domain in that segment (the old form) is taken only
//! where the owning group's section sets `accept_domain_segment`.
//!
//! [`authorize`] then checks the HTTP Basic credential that res_config_curl sends when
//! its URL is `http://USER:PASSWORD@host/...`: for an entity id, the entity's own
//! credential; for a domain, the credential of an entity of that group whose `domains`
//! list it. Missing or wrong is 401, nothing read or written; a write by an entity
//! without `write` is 403. Passwords are compared in time independent of where they
//! differ.

use super::Backend;
use crate::codec::Op;
use crate::section::is_entity_id;
use axum::http::HeaderValue;
use base64::Engine;
use mware_config::{canonical, DomainTree, Secret, Site};

/// One entity as the running service keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entity {
    pub user: String,
    pub password: Secret,
    /// Canonical domain names.
    pub domains: Vec<String>,
    pub write: bool,
}

/// A caller whose credential was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The entity id.
    pub entity: String,
    /// The domains this call may see.
    pub domains: Vec<String>,
}

/// Why a call is refused before it reaches the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404: no entity of that id here (or a domain where the domain form is off).
    Unknown(String),
    /// 401: no usable HTTP Basic credential.
    NoCredential,
    /// 401: a credential that does not match.
    BadCredential,
    /// 403: the entity may not do this.
    Forbidden(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Unknown(_) => 404,
            Refusal::NoCredential | Refusal::BadCredential => 401,
            Refusal::Forbidden(_) => 403,
        }
    }
    /// The metric outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::Unknown(_) => "unknown_entity",
            Refusal::NoCredential | Refusal::BadCredential => "unauthorized",
            Refusal::Forbidden(_) => "forbidden",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unknown(why) | Refusal::Forbidden(why) => f.write_str(why),
            Refusal::NoCredential => f.write_str(
                "expected an Authorization: Basic header (http://USER:PASSWORD@host/... in the SIP server's URL), found none usable",
            ),
            Refusal::BadCredential => f.write_str("expected the entity's user and password, found a credential that does not match"),
        }
    }
}

/// `user` and `password` of an `Authorization: Basic` header.
pub(crate) fn basic(h: Option<&HeaderValue>) -> Option<(String, String)> {
    let v = h?.to_str().ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Text from a client, escaped and cut, for a message.
fn shown(raw: &str) -> String {
    let cut: String = raw.chars().take(64).collect();
    format!("{cut:?}{}", if raw.chars().count() > 64 { " (cut)" } else { "" })
}

/// The route's rule: the group serving the segment `raw`, and its canonical key (the
/// entity id, or the domain where the domain form is on).
pub fn resolve(site: &Site, tree: &DomainTree, raw: &str) -> Result<(u32, String), (u16, String)> {
    let r = resolve_inner(site, tree, raw);
    if let Err((code, why)) = &r {
        tracing::warn!(status = code, reason = %why, "provisioning: refused before routing, nothing read or written");
    }
    r
}

fn resolve_inner(site: &Site, tree: &DomainTree, raw: &str) -> Result<(u32, String), (u16, String)> {
    let id = raw.to_ascii_lowercase();
    if is_entity_id(&id) {
        let listed =
            site.instances().find(|p| p.role.section::<crate::section::Provisioning>().is_some_and(|s| s.entities.contains_key(&id)));
        return match listed {
            Some(p) => Ok((p.role.group, id)),
            None => Err((404, format!("expected an entity id listed in a group's provisioning.entities, found {id} listed nowhere"))),
        };
    }
    let expected = "expected an entity id (six hexadecimal octets like 12:34:56:78:9a:bc, Asterisk's ${ENTITYID})";
    let Ok(domain) = canonical(raw) else {
        return Err((404, format!("{expected}, found {}", shown(raw))));
    };
    let Some(group) = tree.route(&domain) else {
        return Err((404, format!("{expected}, found domain {domain}, which no group serves")));
    };
    let accepts = site
        .group_members(group)
        .first()
        .and_then(|p| p.role.section::<crate::section::Provisioning>())
        .is_some_and(|p| p.accept_domain_segment);
    if !accepts {
        return Err((
            404,
            format!("{expected}, found domain {domain}: group {group} takes a domain there only with provisioning.accept_domain_segment"),
        ));
    }
    Ok((group, domain))
}

/// The canonical key of a segment when no routing layer resolved it (a service run on
/// its own): the same rule as [`resolve`], without the group.
pub(crate) fn key_of(raw: &str) -> Option<String> {
    let id = raw.to_ascii_lowercase();
    if is_entity_id(&id) {
        return Some(id);
    }
    canonical(raw).ok()
}

/// Checks the credential of a call about `key` (an entity id or a domain) doing `op`.
pub(crate) fn authorize(b: &Backend, key: &str, auth: Option<&HeaderValue>, op: Op) -> Result<Caller, Refusal> {
    let (id, entity) = if is_entity_id(key) {
        let Some(e) = b.entities.get(key) else {
            return Err(Refusal::Unknown(format!(
                "expected an entity id listed in provisioning.entities, found {key} listed nowhere in this group"
            )));
        };
        let (user, pass) = basic(auth).ok_or(Refusal::NoCredential)?;
        // Both compared, always: the answer's time says nothing about which was wrong.
        let ok = mware_config::same(user.as_bytes(), e.user.as_bytes()) & e.password.matches(&pass);
        if !ok {
            return Err(Refusal::BadCredential);
        }
        (key.to_string(), e)
    } else {
        if !b.accept_domain_segment {
            return Err(Refusal::Unknown(format!(
                "expected an entity id, found domain {key}: this group takes a domain there only with provisioning.accept_domain_segment"
            )));
        }
        let (user, pass) = basic(auth).ok_or(Refusal::NoCredential)?;
        let Some((id, e)) = b.entities.iter().find(|(_, e)| e.user == user) else {
            return Err(Refusal::BadCredential);
        };
        if !e.password.matches(&pass) {
            return Err(Refusal::BadCredential);
        }
        if !e.domains.iter().any(|d| d == key) {
            return Err(Refusal::Forbidden(format!("expected a domain of entity {id} ({}), found {key}", e.domains.join(", "))));
        }
        (id.clone(), e)
    };
    if op.is_write() && !entity.write {
        return Err(Refusal::Forbidden(format!(
            "entity {id} may not {}: its provisioning entry has no \"write\": true; nothing written",
            op.as_str()
        )));
    }
    let domains = if is_entity_id(key) { entity.domains.clone() } else { vec![key.to_string()] };
    Ok(Caller { entity: id, domains })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> HeaderValue {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {b}")).unwrap()
    }

    #[test]
    fn basic_header_parsing() {
        assert_eq!(basic(Some(&header("ast1", "p:w"))), Some(("ast1".into(), "p:w".into())));
        assert_eq!(basic(Some(&HeaderValue::from_static("Bearer abc"))), None);
        assert_eq!(basic(Some(&HeaderValue::from_static("Basic !!!"))), None);
        assert_eq!(basic(None), None);
    }

    #[test]
    fn keys() {
        assert_eq!(key_of("12:34:56:78:9A:BC").as_deref(), Some("12:34:56:78:9a:bc"));
        assert_eq!(key_of("T1.Example.RU.").as_deref(), Some("t1.example.ru"));
        assert_eq!(key_of("a\"} 1\nx"), None);
    }
}
