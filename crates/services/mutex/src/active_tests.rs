//! Unit tests of the lease check on the hand-over path, without a coordinator: the writer's part
//! (a line record becoming durable) is played by hand.

use super::*;
use crate::section::CriticalSections;

fn active(until: std::time::Instant) -> (Arc<Active>, Arc<LeaseStats>, mpsc::UnboundedReceiver<Pending>) {
    let lease = Arc::new(LeaseStats::default());
    lease.set_active_until(Some(until));
    let metrics = Metrics::new(&mut prometheus_client::registry::Registry::default());
    let (a, rx) = Active::new(Table::new(CriticalSections::default()), metrics, lease.clone());
    (a, lease, rx)
}

fn req(owner: &str) -> AcquireReq {
    AcquireReq { owner: owner.into(), ttl_ms: 60_000, wait: true, limit: 1 }
}

/// Grants `a` on the spot (answering its durable wait by hand), then queues `b`
/// with a durable line record; returns b's pending acquire.
async fn held_by_a_with_b_in_line(
    a: &Arc<Active>,
    rx: &mut mpsc::UnboundedReceiver<Pending>,
) -> (u64, tokio::task::JoinHandle<Result<Granted, MutexError>>) {
    let a2 = a.clone();
    let first = tokio::spawn(async move { a2.acquire("d.ru", "m", req("a"), 1000).await });
    let p = rx.recv().await.expect("a's grant queued for the writer");
    p.done.expect("a waits for durability").send(Ok(())).unwrap();
    let token = first.await.unwrap().expect("a granted").token;
    let a3 = a.clone();
    let second = tokio::spawn(async move { a3.acquire("d.ru", "m", req("b"), 5000).await });
    let p = rx.recv().await.expect("b's line record queued");
    assert_eq!(p.fx.queued.len(), 1);
    a.records_durable(p.fx.queued);
    (token, second)
}

#[tokio::test]
async fn a_release_hands_over_at_once_while_the_lease_holds() {
    let (a, _lease, mut rx) = active(std::time::Instant::now() + Duration::from_secs(60));
    let (token, b) = held_by_a_with_b_in_line(&a, &mut rx).await;
    a.release("d.ru", "m", "a", token).unwrap();
    let g = tokio::time::timeout(Duration::from_secs(1), b).await.expect("answered without a write").unwrap().unwrap();
    assert_eq!(g.owner, "b");
    assert!(g.token > token);
}

#[tokio::test]
async fn past_the_step_down_deadline_nothing_is_handed_over() {
    let (a, lease, mut rx) = active(std::time::Instant::now() + Duration::from_secs(60));
    let (token, mut b) = held_by_a_with_b_in_line(&a, &mut rx).await;
    // The deadline passes without the membership loop running (a paused process).
    lease.set_active_until(Some(std::time::Instant::now()));
    let e = a.release("d.ru", "m", "a", token).unwrap_err();
    assert!(matches!(e, MutexError::NotRunning(ref r) if r.contains("lease")), "{e}");
    assert!(tokio::time::timeout(Duration::from_millis(200), &mut b).await.is_err(), "b must not be granted");
    assert_eq!(a.get("d.ru", "m").unwrap().holders[0].owner, "a", "nothing changed");
    assert!(a.sweep().is_none(), "the sweeper decides nothing either");
    b.abort();
}
