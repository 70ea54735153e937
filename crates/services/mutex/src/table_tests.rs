//! Unit tests of the lock table: no I/O, time passed by hand.

use super::*;

fn limits() -> CriticalSections {
    CriticalSections {
        enabled: true,
        max_name_len: 64,
        max_waiters_per_mutex: 3,
        max_mutexes_per_domain: 2,
        max_ttl_ms: 60_000,
    }
}

fn req(owner: &str, wait: bool) -> AcquireReq {
    AcquireReq { owner: owner.into(), ttl_ms: 1000, wait, limit: 1 }
}

fn granted(a: Acquired) -> Grant {
    match a {
        Acquired::Now(fx) => fx.grants.into_iter().next().expect("one grant"),
        Acquired::Queued(id) => panic!("expected a grant, got queued waiter {id}"),
    }
}

fn queued(a: Acquired) -> WaiterId {
    match a {
        Acquired::Queued(id) => id,
        Acquired::Now(fx) => panic!("expected to queue, got {fx:?}"),
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
    assert!(t.cancel_wait("d.ru", "m", wb));
    let fx = t.release("d.ru", "m", "a", g.holder.token, 1).unwrap();
    assert_eq!(fx.grants[0].waiter, Some(wc));
    assert!(!t.cancel_wait("d.ru", "m", wc), "already granted: the caller must take the grant");
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
    let h = |o: &str, token, exp| HolderView { owner: o.into(), token, expires_at_ms: exp, granted_at_ms: 0 };
    let fx = t.restore(
        10,
        vec![
            ("d.ru".into(), "m".into(), 1, h("a", 7, 5000)),
            ("d.ru".into(), "old".into(), 1, h("z", 12, 900)),
        ],
        1000,
    );
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
    // A small deterministic pseudo-random walk over acquire/release/expire.
    let mut t = Table::new(CriticalSections { max_waiters_per_mutex: 100, max_mutexes_per_domain: 100, ..limits() });
    let mut seed: u64 = 42;
    let mut rnd = |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut last_token = 0;
    let mut held: Vec<(String, String, u64)> = vec![];
    for now in 0..5000u64 {
        let name = format!("m{}", rnd(3));
        let owner = format!("o{}", rnd(20));
        let fx = match rnd(3) {
            0 => match t.acquire("d.ru", &name, AcquireReq { owner, ttl_ms: 1 + rnd(50), wait: true, limit: 2 }, now) {
                Ok(Acquired::Now(fx)) => fx,
                _ => Effects::default(),
            },
            1 if !held.is_empty() => {
                let (n, o, tok) = held.swap_remove(rnd(held.len() as u64) as usize);
                t.release("d.ru", &n, &o, tok, now).unwrap_or_default()
            }
            _ => t.expire(now),
        };
        for g in fx.grants {
            if g.holder.granted_at_ms == now && g.holder.token > last_token {
                last_token = g.holder.token;
            }
            held.push((g.name, g.holder.owner, g.holder.token));
        }
        for m in t.list("d.ru") {
            assert!(m.holders.len() <= 2, "over the limit: {m:?}");
            assert!(m.waiters.is_empty() || m.holders.len() == 2, "a waiter while there is room: {m:?}");
        }
    }
    assert!(last_token > 100);
}
