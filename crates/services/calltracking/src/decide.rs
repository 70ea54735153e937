//! The pure step of the static registrations: given what the site file wants, what the
//! coordinator holds and what the registrar has bound, which contacts to add or remove
//! and which entries to store or forget, each with the reason in words. Tested without
//! touching the world; `reconcile` acts on it.

use crate::store::{Source, Stored};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// An account the site file wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The domain (canonical).
    pub domain: String,
    /// The user part.
    pub user: String,
    /// The contact to bind.
    pub contact: String,
}

/// What one cycle looks at.
pub struct Snapshot<'a> {
    /// The site file's accounts.
    pub site: &'a [Wanted],
    /// The entries in the coordinator.
    pub stored: &'a [Stored],
    /// The contacts the registrar has bound, by AoR (only the AoRs asked about).
    pub bound: &'a BTreeMap<String, Vec<String>>,
    /// Now, ms since the Unix epoch (the `since_ms` of new entries).
    pub now_ms: u64,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write an entry to the coordinator.
    Store(Stored, &'static str),
    /// Bind a contact in the registrar.
    Add {
        /// The AoR.
        aor: String,
        /// The contact.
        contact: String,
        /// Whether it was there before (the registrar lost it: restarted, or someone
        /// removed it) or is new.
        lost: bool,
    },
    /// Unbind a contact.
    Remove {
        /// The AoR.
        aor: String,
        /// The contact.
        contact: String,
        /// Why, in words.
        why: &'static str,
    },
    /// Forget an entry (its contact is gone from the registrar).
    Forget(String),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Store(s, why) => write!(f, "stored {} -> {} because {why}", s.aor(), s.contact),
            Action::Add { aor, contact, lost: true } => {
                write!(f, "bound {aor} -> {contact} again because the registrar had lost it (restarted, or removed by someone)")
            }
            Action::Add { aor, contact, lost: false } => write!(f, "bound {aor} -> {contact} because it is a new static registration"),
            Action::Remove { aor, contact, why } => write!(f, "unbound {aor} -> {contact} because {why}"),
            Action::Forget(key) => write!(f, "forgot {key}: its contact left the registrar"),
        }
    }
}

/// The actions of one cycle, in the order they must run.
pub fn decide(s: &Snapshot) -> Vec<Action> {
    let is_bound = |aor: &str, contact: &str| s.bound.get(aor).is_some_and(|c| c.iter().any(|x| x == contact));
    let mut out = vec![];
    let mut from_site = HashSet::new();
    let stored: BTreeMap<String, &Stored> = s.stored.iter().map(|e| (e.key(), e)).collect();
    for w in s.site {
        let entry = Stored {
            domain: w.domain.clone(),
            user: w.user.clone(),
            contact: w.contact.clone(),
            source: Source::Site,
            removing: false,
            since_ms: s.now_ms,
        };
        let key = entry.key();
        from_site.insert(key.clone());
        let old = stored.get(&key);
        let same = old.is_some_and(|o| o.source == Source::Site && o.contact == w.contact && !o.removing);
        if !same {
            if let Some(o) = old.filter(|o| o.contact != w.contact && is_bound(&o.aor(), &o.contact)) {
                out.push(Action::Remove {
                    aor: o.aor(),
                    contact: o.contact.clone(),
                    why: "the site file gives the account another contact",
                });
            }
            let why =
                if old.is_some() { "the site file names the account (it takes over the API's entry)" } else { "the site file names it" };
            out.push(Action::Store(entry.clone(), why));
        }
        if !is_bound(&entry.aor(), &entry.contact) {
            out.push(Action::Add { aor: entry.aor(), contact: entry.contact.clone(), lost: old.is_some() && same });
        }
    }
    for e in s.stored.iter().filter(|e| !from_site.contains(&e.key())) {
        let gone_from_site = e.source == Source::Site;
        if e.removing || gone_from_site {
            if is_bound(&e.aor(), &e.contact) {
                let why = if e.removing { "the account was deleted through the API" } else { "the site file no longer names it" };
                out.push(Action::Remove { aor: e.aor(), contact: e.contact.clone(), why });
            }
            out.push(Action::Forget(e.key()));
        } else if !is_bound(&e.aor(), &e.contact) {
            out.push(Action::Add { aor: e.aor(), contact: e.contact.clone(), lost: true });
        }
    }
    out
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
