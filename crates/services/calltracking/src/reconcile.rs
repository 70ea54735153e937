//! The step that acts for the static registrations: one cycle reads the site file's
//! accounts, the coordinator's entries and the registrar's bindings of those AoRs, asks
//! [`crate::decide`] what to do and does it in order, logging each action's reason.
//! A failed action ends the cycle; the next one starts again from what is there.

use crate::decide::{decide, Action, Snapshot, Wanted};
use crate::error::TrackError;
use crate::handle::Inner;
use crate::section::CallTracking;
use crate::store::{Store, Stored};
use mware_sip::Registrar;
use std::collections::{BTreeMap, BTreeSet};

/// The site file's accounts, with their contacts as bound.
pub fn wanted(cfg: &CallTracking) -> Vec<Wanted> {
    cfg.static_registrations
        .iter()
        .filter_map(|r| {
            Some(Wanted {
                domain: crate::validate::domain(&r.domain).ok()?,
                user: r.user.clone(),
                contact: crate::validate::bound_contact(&r.contact, r.transport),
            })
        })
        .collect()
}

/// One cycle: the actions done, in words.
pub async fn cycle(inner: &Inner, cfg: &CallTracking, store: &Store, registrar: &Registrar) -> Result<Vec<String>, TrackError> {
    let site = wanted(cfg);
    let (stored, bad) = store.load().await?;
    for key in &bad {
        tracing::warn!(key, "an unreadable static registration in the coordinator is skipped");
    }
    let aors: BTreeSet<String> = site.iter().map(|w| format!("{}@{}", w.user, w.domain)).chain(stored.iter().map(Stored::aor)).collect();
    let mut bound = BTreeMap::new();
    for aor in aors {
        let contacts = registrar.lookup(&aor).await?.into_iter().map(|b| b.contact).collect();
        bound.insert(aor, contacts);
    }
    let actions = decide(&Snapshot { site: &site, stored: &stored, bound: &bound, now_ms: mware_config::now_ms() });
    let mut done = vec![];
    for a in actions {
        act(inner, &a, store, registrar).await?;
        tracing::info!(action = %a, "static registration");
        done.push(a.to_string());
    }
    let live = store.load().await?.0.into_iter().filter(|s| !s.removing).count();
    inner.metrics.statics.set(live as i64);
    Ok(done)
}

async fn act(inner: &Inner, a: &Action, store: &Store, registrar: &Registrar) -> Result<(), TrackError> {
    match a {
        Action::Store(s, _) => store.put(s).await,
        Action::Add { aor, contact, lost } => {
            registrar.add(aor, contact, "").await?;
            inner.metrics.bound.inc();
            if *lost {
                inner.metrics.rebound.inc();
            }
            Ok(())
        }
        Action::Remove { aor, contact, .. } => registrar.rm_contact(aor, contact).await.map(|_| ()).map_err(Into::into),
        Action::Forget(key) => {
            inner.forget_probe(key);
            store.forget(key).await
        }
    }
}
