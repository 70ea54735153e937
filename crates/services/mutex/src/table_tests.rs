//! Unit tests of the lock table: no I/O, time passed by hand.

use super::*;

fn limits() -> CriticalSections {
    CriticalSections {
        enabled: true,
        max_name_len: 64,
        max_waiters_per_mutex: 3,
        max_mutexes_per_domain: 2,
        max_ttl_ms: 60_000,
        max_wait_ms: 60_000,
        max_domains: 3,
        max_limit: 1000,
    }
}

fn req(owner: &str, wait: bool) -> AcquireReq {
    AcquireReq { owner: owner.into(), ttl_ms: 1000, wait, limit: 1 }
}

fn granted(a: Acquired) -> Grant {
    match a {
        Acquired::Now(fx) => fx.grants.into_iter().next().expect("one grant"),
        Acquired::Queued(id, _) => panic!("expected a grant, got queued waiter {id}"),
    }
}

fn queued(a: Acquired) -> WaiterId {
    match a {
        Acquired::Queued(id, _) => id,
        Acquired::Now(fx) => panic!("expected to queue, got {fx:?}"),
    }
}

fn saved(name: &str, owner: &str, token: u64, expires_at_ms: u64, queued_ttl_ms: Option<u64>) -> SavedHolder {
    SavedHolder {
        domain: "d.ru".into(),
        name: name.into(),
        limit: 1,
        holder: HolderView { owner: owner.into(), token, expires_at_ms, granted_at_ms: 0, unconfirmed: false },
        queued_ttl_ms,
    }
}

#[test]
fn grant_is_written_before_it_is_answered() {
    let mut t = Table::new(limits());
    let a = t.acquire("d.ru", "m", req("a", false), 100).unwrap();
    let Acquired::Now(fx) = a else { panic!("not granted") };
    assert_eq!(fx.grants.len(), 1);
    assert_eq!(fx.grants[0].holder.token, 1);
    assert_eq!(fx.grants[0].holder.expires_at_ms, 1100);
    assert!(matches!(&fx.writes[..], [Write::Put { holder, .. }] if holder.token == 1));
    assert_eq!(fx.next_token, 2);
}

#[test]
fn busy_without_wait_names_the_holder_and_changes_nothing() {
    let mut t = Table::new(limits());
    granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let e = t.acquire("d.ru", "m", req("b", false), 1).unwrap_err();
    match e {
        MutexError::Busy { holders, .. } => assert_eq!(holders[0].owner, "a"),
        other => panic!("expected busy, got {other}"),
    }
    assert_eq!(t.get("d.ru", "m").unwrap().waiters.len(), 0);
    assert_eq!(t.next_token(), 2);
}

#[test]
fn waiters_are_granted_in_fifo_order_with_growing_tokens() {
    let mut t = Table::new(limits());
    let g = granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let wb = queued(t.acquire("d.ru", "m", req("b", true), 1).unwrap());
    let wc = queued(t.acquire("d.ru", "m", req("c", true), 2).unwrap());
    let fx = t.release("d.ru", "m", "a", g.holder.token, 10).unwrap();
    assert_eq!(fx.grants.len(), 1);
    assert_eq!(fx.grants[0].waiter, Some(wb));
    assert_eq!(fx.grants[0].waited_ms, 9);
    let tb = fx.grants[0].holder.token;
    assert!(tb > g.holder.token);
    // Delete of the old holder comes before the put of the new one.
    assert!(matches!(fx.writes[0], Write::Delete { token, .. } if token == g.holder.token));
    let fx = t.release("d.ru", "m", "b", tb, 20).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(wc));
    assert!(fx.grants[0].holder.token > tb);
}

#[test]
fn new_acquirer_does_not_overtake_waiters() {
    let mut t = Table::new(CriticalSections { max_mutexes_per_domain: 10, ..limits() });
    let l = AcquireReq { limit: 2, ..req("a", false) };
    granted(t.acquire("d.ru", "s", l.clone(), 0).unwrap());
    let b = granted(t.acquire("d.ru", "s", AcquireReq { owner: "b".into(), ..l.clone() }, 0).unwrap());
    queued(t.acquire("d.ru", "s", AcquireReq { owner: "c".into(), wait: true, ..l.clone() }, 0).unwrap());
    let fx = t.release("d.ru", "s", "b", b.holder.token, 5).unwrap();
    assert_eq!(fx.grants[0].holder.owner, "c");
    let e = t.acquire("d.ru", "s", AcquireReq { owner: "d".into(), ..l }, 6).unwrap_err();
    assert!(matches!(e, MutexError::Busy { .. }));
}

#[test]
fn semaphore_grants_up_to_its_limit_and_the_limit_is_fixed() {
    let mut t = Table::new(limits());
    let l = |o: &str| AcquireReq { owner: o.into(), ttl_ms: 100, wait: false, limit: 3 };
    for o in ["a", "b", "c"] {
        granted(t.acquire("d.ru", "s", l(o), 0).unwrap());
    }
    assert!(matches!(t.acquire("d.ru", "s", l("d"), 0), Err(MutexError::Busy { .. })));
    let e = t.acquire("d.ru", "s", AcquireReq { limit: 2, ..l("e") }, 0).unwrap_err();
    assert!(matches!(e, MutexError::LimitMismatch { existing: 3, requested: 2, .. }), "{e}");
    assert_eq!(t.get("d.ru", "s").unwrap().holders.len(), 3);
}

#[test]
fn expired_holder_is_dropped_and_the_next_waiter_granted() {
    let mut t = Table::new(limits());
    granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    queued(t.acquire("d.ru", "m", req("b", true), 500).unwrap());
    assert!(t.expire(999).grants.is_empty());
    assert_eq!(t.next_expiry(), Some(1000));
    let fx = t.expire(1000);
    assert_eq!(fx.expired.len(), 1);
    assert_eq!(fx.expired[0].2.owner, "a");
    assert_eq!(fx.grants[0].holder.owner, "b");
    assert_eq!(fx.grants[0].holder.expires_at_ms, 2000);
    assert_eq!(t.holder_count(), 1);
}

#[test]
fn renew_moves_the_expiry_and_wrong_owner_or_token_changes_nothing() {
    let mut t = Table::new(limits());
    let g = granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let e = t.renew("d.ru", "m", "x", g.holder.token, 5000, 10).unwrap_err();
    assert!(matches!(e, MutexError::WrongOwner { .. }), "{e}");
    let e = t.renew("d.ru", "m", "a", g.holder.token + 7, 5000, 10).unwrap_err();
    assert!(matches!(e, MutexError::NotHeld { .. }), "{e}");
    let e = t.release("d.ru", "m", "x", g.holder.token, 10).unwrap_err();
    assert!(matches!(e, MutexError::WrongOwner { .. }), "{e}");
    assert_eq!(t.get("d.ru", "m").unwrap().holders[0].expires_at_ms, 1000);
    t.renew("d.ru", "m", "a", g.holder.token, 5000, 10).unwrap();
    assert!(t.expire(1000).expired.is_empty());
    assert_eq!(t.expire(5010).expired.len(), 1);
    assert!(t.get("d.ru", "m").is_none(), "an empty mutex is forgotten");
}

#[test]
fn reacquire_by_the_holder_returns_its_token() {
    let mut t = Table::new(limits());
    let g = granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let again = granted(t.acquire("d.ru", "m", req("a", false), 50).unwrap());
    assert_eq!(again.holder.token, g.holder.token);
    assert_eq!(again.holder.expires_at_ms, 1050);
}

#[test]
fn cancelled_waiter_is_skipped_and_late_cancel_reports_the_grant() {
    let mut t = Table::new(limits());
    let g = granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let wb = queued(t.acquire("d.ru", "m", req("b", true), 0).unwrap());
    let wc = queued(t.acquire("d.ru", "m", req("c", true), 0).unwrap());
    let fx = t.cancel_wait("d.ru", "m", wb).expect("was queued");
    assert!(matches!(&fx.writes[..], [Write::Delete { token: 2, .. }]), "its line record goes: {fx:?}");
    let fx = t.release("d.ru", "m", "a", g.holder.token, 1).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(wc));
    assert!(t.cancel_wait("d.ru", "m", wc).is_none(), "already granted: the caller must take the grant");
}

#[test]
fn limits_on_waiters_and_mutexes_per_domain() {
    let mut t = Table::new(limits());
    granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    for o in ["b", "c", "d"] {
        queued(t.acquire("d.ru", "m", req(o, true), 0).unwrap());
    }
    assert!(matches!(t.acquire("d.ru", "m", req("e", true), 0), Err(MutexError::TooManyWaiters { max: 3, .. })));
    granted(t.acquire("d.ru", "n", req("a", false), 0).unwrap());
    assert!(matches!(t.acquire("d.ru", "o", req("a", false), 0), Err(MutexError::TooManyMutexes { max: 2, .. })));
    // Another domain has its own budget.
    granted(t.acquire("e.ru", "o", req("a", false), 0).unwrap());
}

#[test]
fn restore_keeps_live_holders_drops_lapsed_ones_and_tokens_keep_growing() {
    let mut t = Table::new(limits());
    let fx = t.restore(10, vec![saved("m", "a", 7, 5000, None), saved("old", "z", 12, 900, None)], 1000);
    assert_eq!(fx.expired.len(), 1);
    assert!(matches!(&fx.writes[..], [Write::Delete { token: 12, .. }]));
    assert_eq!(t.next_token(), 13, "above every token ever seen");
    assert_eq!(t.get("d.ru", "m").unwrap().holders[0].owner, "a");
    let w = queued(t.acquire("d.ru", "m", req("b", true), 1000).unwrap());
    let fx = t.release("d.ru", "m", "a", 7, 1001).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(w));
    assert_eq!(fx.grants[0].holder.token, 13);
}

#[test]
fn many_random_operations_keep_the_invariants() {
    // A small deterministic pseudo-random walk over acquire/release/evict/expire.
    let mut t = Table::new(CriticalSections { max_waiters_per_mutex: 100, max_mutexes_per_domain: 100, ..limits() });
    let mut seed: u64 = 42;
    let mut rnd = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut last_token = 0;
    let mut last_of: std::collections::HashMap<String, u64> = Default::default();
    let mut held: Vec<(String, String, u64)> = vec![];
    for now in 0..5000u64 {
        let name = format!("m{}", rnd(3));
        let owner = format!("o{}", rnd(20));
        let fx = match rnd(4) {
            0 => match t.acquire("d.ru", &name, AcquireReq { owner, ttl_ms: 1 + rnd(50), wait: true, limit: 2 }, now) {
                Ok(Acquired::Now(fx)) => fx,
                Ok(Acquired::Queued(id, fx)) => {
                    assert!(matches!(&fx.writes[..], [Write::Queue { .. }]), "a waiter's line record is written");
                    if rnd(2) == 0 {
                        t.mark_durable("d.ru", &name, id);
                    }
                    Effects::default()
                }
                _ => Effects::default(),
            },
            1 if !held.is_empty() => {
                let (n, o, tok) = held.swap_remove(rnd(held.len() as u64) as usize);
                t.release("d.ru", &n, &o, tok, now).unwrap_or_default()
            }
            2 if !held.is_empty() => {
                let (n, _, tok) = held.swap_remove(rnd(held.len() as u64) as usize);
                t.evict("d.ru", &n, tok, now).map(|(fx, _)| fx).unwrap_or_default()
            }
            _ => t.expire(now),
        };
        for g in fx.grants {
            if g.holder.granted_at_ms == now && g.holder.token > last_token {
                last_token = g.holder.token;
            }
            let last = last_of.entry(g.name.clone()).or_default();
            if g.holder.granted_at_ms == now {
                assert!(g.holder.token > *last, "tokens of {} out of grant order: {} after {}", g.name, g.holder.token, *last);
                *last = g.holder.token;
            }
            held.push((g.name, g.holder.owner, g.holder.token));
        }
        let all = t.list("d.ru", &mware_host::PageQuery { limit: usize::MAX, after: None }).items;
        assert_eq!(t.waiter_count(), all.iter().map(|m| m.waiters.len()).sum::<usize>(), "waiter count");
        assert_eq!(t.holder_count(), all.iter().map(|m| m.holders.len()).sum::<usize>(), "holder count");
        for m in all {
            assert!(m.holders.len() <= 2, "over the limit: {m:?}");
            assert!(m.waiters.is_empty() || m.holders.len() == 2, "a waiter while there is room: {m:?}");
        }
    }
    assert!(last_token > 100);
}

#[test]
fn a_waiter_is_answered_at_once_only_when_its_line_record_is_durable() {
    let mut t = Table::new(limits());
    let g = granted(t.acquire("d.ru", "m", req("a", false), 0).unwrap());
    let Acquired::Queued(wb, fx) = t.acquire("d.ru", "m", req("b", true), 0).unwrap() else { panic!("not queued") };
    assert!(matches!(&fx.writes[..], [Write::Queue { token: 2, ttl_ms: 1000, .. }]));
    assert_eq!(fx.next_token, 3, "the counter covers the token handed to the waiter");
    assert_eq!(fx.queued, vec![Queued { domain: "d.ru".into(), name: "m".into(), id: wb, ahead: 0 }]);
    let wc = queued(t.acquire("d.ru", "m", req("c", true), 0).unwrap());
    assert!(t.mark_durable("d.ru", "m", wb));
    let fx = t.release("d.ru", "m", "a", g.holder.token, 5).unwrap();
    assert_eq!(fx.grants.len(), 1);
    assert!(fx.grants[0].ready, "b's line record is durable: answer at once");
    assert_eq!(fx.grants[0].holder.token, 2);
    let fx = t.release("d.ru", "m", "b", 2, 6).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(wc));
    assert!(!fx.grants[0].ready, "c's line record is not durable yet: wait for it");
    assert!(!t.mark_durable("d.ru", "m", wc), "no longer queued");
}

#[test]
fn restored_line_records_block_like_holders_until_gone() {
    let mut t = Table::new(limits());
    // The old active had holder a (token 7) and waiters b (8) and c (9) in line; it may
    // have handed the mutex to b, then c, without writing it down.
    let fx = t.restore(10, vec![saved("m", "a", 7, 5000, None), saved("m", "b", 8, 0, Some(3000)), saved("m", "c", 9, 0, Some(500))], 1000);
    let m = t.get("d.ru", "m").unwrap();
    assert_eq!(
        m.holders.iter().map(|h| (h.token, h.unconfirmed, h.expires_at_ms)).collect::<Vec<_>>(),
        vec![(7, true, 5000), (8, true, 4000), (9, true, 1500)]
    );
    assert_eq!(fx.writes.len(), 2, "unconfirmed holders are written back with their expiry: {fx:?}");
    assert_eq!(t.next_token(), 10);
    // Nobody else gets it while any of them may hold it.
    let wd = queued(t.acquire("d.ru", "m", req("d", true), 1000).unwrap());
    assert!(t.release("d.ru", "m", "a", 7, 1001).unwrap().grants.is_empty());
    let fx = t.renew("d.ru", "m", "b", 8, 2000, 1002).unwrap();
    assert!(!fx.grants[0].holder.unconfirmed, "its owner renewed it: confirmed");
    assert!(t.expire(1500).grants.is_empty(), "c lapsed, b still holds");
    let fx = t.release("d.ru", "m", "b", 8, 1600).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(wd));
    assert_eq!(fx.grants[0].holder.token, 10, "the token d got when it joined the line");
}

#[test]
fn an_owner_asking_again_drops_its_unconfirmed_grant() {
    let mut t = Table::new(limits());
    t.restore(1, vec![saved("m", "b", 8, 0, Some(3000)), saved("m", "c", 9, 0, Some(3000))], 1000);
    // c's client retries after the failover: it is not inside, so its record goes, but
    // b may still hold the mutex, so c waits.
    let fx = t.drop_unconfirmed("d.ru", "m", "c", 1001);
    assert!(matches!(&fx.writes[..], [Write::Delete { token: 9, .. }]));
    assert!(t.acquire("d.ru", "m", req("c", false), 1001).is_err(), "b may hold it");
    let fx = t.drop_unconfirmed("d.ru", "m", "b", 1002);
    assert!(fx.grants.is_empty());
    let g = granted(t.acquire("d.ru", "m", req("b", false), 1002).unwrap());
    assert_eq!(g.holder.token, 10);
    assert!(t.drop_unconfirmed("d.ru", "m", "b", 1003).writes.is_empty(), "a confirmed grant is kept");
}

#[test]
fn domains_beyond_max_domains_get_429_until_one_is_free() {
    let mut t = Table::new(limits());
    let mut held = vec![];
    for d in ["a.ru", "b.ru", "c.ru"] {
        held.push((d, granted(t.acquire(d, "m", req("o", false), 0).unwrap())));
    }
    let e = t.acquire("d.ru", "m", req("o", false), 0).unwrap_err();
    assert!(matches!(e, MutexError::TooManyDomains { max: 3 }), "{e}");
    assert_eq!(e.status(), 429);
    // A known domain still takes a new mutex within its own limit.
    assert!(t.acquire("a.ru", "m2", req("o", false), 0).is_ok());
    // Once a domain has nothing held or waited on, another may come.
    let (d, g) = held.remove(1);
    t.release(d, "m", "o", g.holder.token, 0).unwrap();
    assert!(t.acquire("d.ru", "m", req("o", false), 0).is_ok());
}

#[test]
fn the_list_of_a_domain_is_paged_by_name() {
    let mut t = Table::new(CriticalSections { max_mutexes_per_domain: 50, ..limits() });
    for i in 0..25 {
        granted(t.acquire("d.ru", &format!("m{i:02}"), req("a", false), 100).unwrap());
    }
    let first = t.list("d.ru", &mware_host::PageQuery { limit: 10, after: None });
    assert_eq!((first.items.len(), first.total, first.next.as_deref()), (10, 25, Some("m09")));
    let last = t.list("d.ru", &mware_host::PageQuery { limit: 10, after: Some("m19".into()) });
    let names: Vec<&str> = last.items.iter().map(|m| m.name.as_str()).collect();
    assert_eq!((names, last.total, last.next), (vec!["m20", "m21", "m22", "m23", "m24"], 25, None));
}
