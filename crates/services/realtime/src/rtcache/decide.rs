//! What the sidecar does with one read, as a pure function of what it knows:
//! the cached entry (if any), the clock, the lifetimes, and, once asked, what
//! the upstreams answered. The caller acts on the [`Decision`]; its `Display`
//! is the reason in words, logged at debug level and shown in tests.
//!
//! The lifetimes are sorcery memory cache's: an entry is fresh for
//! `object_lifetime_stale` seconds, then served while refreshed in the
//! background, and dropped after `object_lifetime_maximum`. When every
//! upstream fails (transport error, timeout or 5xx) a cached answer that has
//! not yet expired is served, and its life is extended to at least
//! `now + object_lifetime_stale`, as the Ozon patch does; an answer of "not
//! found" (200 with an empty body) is the only thing that removes an object.
//! A write through the sidecar marks the entries of its entity and family for
//! revalidation instead of dropping them, so a write followed by an outage
//! still leaves the objects servable. An upstream that refuses the caller
//! (401, 403, 404: a credential changed, an entity removed) drops the cached
//! answer of that credential.

use std::fmt;

/// Lifetimes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// `object_lifetime_maximum`.
    pub maximum_ms: u64,
    /// `object_lifetime_stale`.
    pub stale_ms: u64,
}

/// When a cached entry was fetched and until when it may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryTimes {
    /// When the upstream gave this answer (ms since the Unix epoch).
    pub fetched_ms: u64,
    /// After this (ms since the Unix epoch) the entry is never served.
    pub expires_ms: u64,
    /// A write touched this entity and family: ask upstream before serving it again,
    /// but keep it as the answer of last resort while every upstream fails.
    pub revalidate: bool,
}

/// What the upstreams answered for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamAnswer {
    /// 2xx with a non-empty body.
    Found,
    /// 2xx with an empty body: the object does not exist.
    NotFound,
    /// 4xx: a real answer about a bad request; passed on, never cached.
    Refused,
    /// 401, 403 or 404: the caller may no longer see this; passed on, and its cached
    /// answer dropped.
    Denied,
    /// Every upstream failed (transport error, timeout, 5xx).
    Failed,
}

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Now, ms since the Unix epoch.
    pub now_ms: u64,
    /// The configured lifetimes.
    pub lifetimes: Lifetimes,
    /// The cached entry for this key, if any.
    pub entry: Option<EntryTimes>,
    /// The upstreams' answer, once asked.
    pub upstream: Option<UpstreamAnswer>,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve the cached entry; do not ask upstream.
    ServeFresh {
        /// Entry age, ms.
        age_ms: u64,
    },
    /// Serve the cached entry and refresh it in the background.
    ServeStaleAndRefresh {
        /// Entry age, ms.
        age_ms: u64,
    },
    /// A write marked the entry: ask the upstreams, keep the entry as a fallback.
    Revalidate,
    /// Nothing usable is cached: ask the upstreams.
    AskUpstream {
        /// True when an entry was there but had expired (drop it).
        expired: bool,
    },
    /// Store the upstream's answer and serve it.
    StoreAndServe,
    /// The object does not exist: remove it and answer empty.
    RemoveAndServeEmpty,
    /// Pass the upstream's 4xx answer on, uncached.
    PassThrough,
    /// Pass the upstream's refusal of the caller on and drop the cached answer.
    DropAndPassThrough,
    /// Every upstream failed: serve the cached entry and extend its life.
    ServeCachedOnError {
        /// The entry's new expiry, ms since the Unix epoch.
        extend_to_ms: u64,
    },
    /// Every upstream failed and nothing usable is cached: answer the failure.
    Fail,
}

/// Decides one step (before asking upstream when `upstream` is `None`, after otherwise).
pub fn decide(s: &Snapshot) -> Decision {
    let live = s.entry.filter(|e| s.now_ms < e.expires_ms);
    match s.upstream {
        None => match live {
            Some(e) if e.revalidate => Decision::Revalidate,
            Some(e) => {
                let age_ms = s.now_ms.saturating_sub(e.fetched_ms);
                if age_ms < s.lifetimes.stale_ms {
                    Decision::ServeFresh { age_ms }
                } else {
                    Decision::ServeStaleAndRefresh { age_ms }
                }
            }
            None => Decision::AskUpstream { expired: s.entry.is_some() },
        },
        Some(UpstreamAnswer::Found) => Decision::StoreAndServe,
        Some(UpstreamAnswer::NotFound) => Decision::RemoveAndServeEmpty,
        Some(UpstreamAnswer::Refused) => Decision::PassThrough,
        Some(UpstreamAnswer::Denied) => Decision::DropAndPassThrough,
        Some(UpstreamAnswer::Failed) => match live {
            Some(e) => Decision::ServeCachedOnError { extend_to_ms: e.expires_ms.max(s.now_ms.saturating_add(s.lifetimes.stale_ms)) },
            None => Decision::Fail,
        },
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::ServeFresh { age_ms } => write!(f, "served from cache: the entry is {age_ms} ms old, still fresh"),
            Decision::ServeStaleAndRefresh { age_ms } => {
                write!(f, "served from cache and refreshing in the background: the entry is {age_ms} ms old, past object_lifetime_stale")
            }
            Decision::AskUpstream { expired: true } => {
                write!(f, "asking upstream: the cached entry is past object_lifetime_maximum")
            }
            Decision::Revalidate => {
                write!(f, "asking upstream: a write touched this family; the cached entry is kept as a fallback")
            }
            Decision::AskUpstream { expired: false } => write!(f, "asking upstream: nothing cached"),
            Decision::StoreAndServe => write!(f, "cached the upstream's answer"),
            Decision::RemoveAndServeEmpty => {
                write!(f, "removed from cache: the upstream answered that the object does not exist")
            }
            Decision::PassThrough => write!(f, "passed on the upstream's refusal uncached"),
            Decision::DropAndPassThrough => {
                write!(f, "passed on the upstream's refusal of this caller and dropped its cached answer")
            }
            Decision::ServeCachedOnError { extend_to_ms } => {
                write!(f, "served from cache because every upstream failed; the entry now lives until {extend_to_ms} ms")
            }
            Decision::Fail => write!(f, "answered failure: every upstream failed and nothing usable is cached"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const LT: Lifetimes = Lifetimes { maximum_ms: 10_000, stale_ms: 1_000 };
    fn snap(now: u64, fetched: Option<u64>, up: Option<UpstreamAnswer>) -> Snapshot {
        Snapshot {
            now_ms: now,
            lifetimes: LT,
            entry: fetched.map(|f| EntryTimes { fetched_ms: f, expires_ms: f + LT.maximum_ms, revalidate: false }),
            upstream: up,
        }
    }

    #[test]
    fn fresh_stale_expired() {
        assert_eq!(decide(&snap(500, Some(0), None)), Decision::ServeFresh { age_ms: 500 });
        assert_eq!(decide(&snap(5_000, Some(0), None)), Decision::ServeStaleAndRefresh { age_ms: 5_000 });
        assert_eq!(decide(&snap(10_000, Some(0), None)), Decision::AskUpstream { expired: true });
        assert_eq!(decide(&snap(1, None, None)), Decision::AskUpstream { expired: false });
    }

    #[test]
    fn outage_serves_until_maximum_and_extends_by_stale() {
        let d = decide(&snap(9_500, Some(0), Some(UpstreamAnswer::Failed)));
        assert_eq!(d, Decision::ServeCachedOnError { extend_to_ms: 10_500 });
        assert!(d.to_string().contains("every upstream failed"));
        assert_eq!(decide(&snap(3_000, Some(0), Some(UpstreamAnswer::Failed))), Decision::ServeCachedOnError { extend_to_ms: 10_000 });
        assert_eq!(decide(&snap(10_001, Some(0), Some(UpstreamAnswer::Failed))), Decision::Fail);
        assert_eq!(decide(&snap(1, None, Some(UpstreamAnswer::Failed))), Decision::Fail);
    }

    #[test]
    fn a_write_forces_revalidation_but_keeps_the_fallback() {
        let mut s = snap(100, Some(0), None);
        s.entry.as_mut().unwrap().revalidate = true;
        assert_eq!(decide(&s), Decision::Revalidate);
        s.upstream = Some(UpstreamAnswer::Failed);
        assert!(matches!(decide(&s), Decision::ServeCachedOnError { .. }));
    }

    #[test]
    fn only_a_real_not_found_removes() {
        assert_eq!(decide(&snap(5_000, Some(0), Some(UpstreamAnswer::NotFound))), Decision::RemoveAndServeEmpty);
        assert_eq!(decide(&snap(5_000, Some(0), Some(UpstreamAnswer::Refused))), Decision::PassThrough);
        assert_eq!(decide(&snap(5_000, Some(0), Some(UpstreamAnswer::Denied))), Decision::DropAndPassThrough);
    }
}
