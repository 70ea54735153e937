//! The scheduler's pure decisions with a fake clock (plain milliseconds): slots due run
//! once, a late slot is missed and recorded, an outage is never replayed as a burst,
//! and each overlap policy does what it says. Nothing here starts a process.

use mware_tasks::decide::{Running, GRACE_MS};
use mware_tasks::Overlap;
use mware_tasks::{decide, decide_manual, Decision, Manual, Missed, Schedule, Snapshot};

/// A time on a 10-second boundary (so `*/10` slots fall on multiples of 10 s).
const T: u64 = 1_800_000_000_000;
const S: u64 = 1000;

fn every10() -> Schedule {
    Schedule::parse("*/10 * * * * *").unwrap()
}

fn snap(now_ms: u64, last_slot_ms: u64) -> Snapshot {
    Snapshot { now_ms, last_slot_ms, running: None, queued_ms: None, overlap: Overlap::Skip }
}

fn running(id: u64) -> Option<Running> {
    Some(Running { id, started_ms: T })
}

#[test]
fn nothing_due_waits_for_the_next_slot() {
    let d = decide(&every10(), &snap(T + 3 * S, T));
    assert_eq!(d, Decision::Wait { until_ms: Some(T + 10 * S) });
    assert!(d.to_string().starts_with("waiting for the next slot at "), "{d}");
}

#[test]
fn a_due_slot_runs_once() {
    let s = every10();
    let d = decide(&s, &snap(T + 10 * S + 30, T));
    assert_eq!(d, Decision::Run { slot_ms: T + 10 * S, missed: None, queued: false });
    // Once dealt with, the same slot is not due again.
    assert_eq!(decide(&s, &snap(T + 10 * S + 40, T + 10 * S)), Decision::Wait { until_ms: Some(T + 20 * S) });
}

#[test]
fn an_outage_is_recorded_as_missed_not_replayed() {
    let s = every10();
    // Active again 62 s after the last slot dealt with: slots +10..+50 passed, +60 is 2 s late.
    let d = decide(&s, &snap(T + 62 * S, T));
    let missed = Missed { count: 5, first_ms: T + 10 * S, last_ms: T + 50 * S };
    assert_eq!(d, Decision::Run { slot_ms: T + 60 * S, missed: Some(missed), queued: false });
    let words = d.to_string();
    assert!(words.contains("5 slots from") && words.contains("were missed") && words.contains("not run late"), "{words}");

    // Active again 67 s after: the latest slot is past the grace too: nothing runs.
    let d = decide(&s, &snap(T + 67 * S, T));
    assert_eq!(d, Decision::Missed(Missed { count: 6, first_ms: T + 10 * S, last_ms: T + 60 * S }));
    // After recording them, the scheduler waits for the next slot: no burst.
    assert_eq!(decide(&s, &snap(T + 67 * S, T + 60 * S)), Decision::Wait { until_ms: Some(T + 70 * S) });
}

#[test]
fn grace_is_the_border_between_late_and_missed() {
    let s = every10();
    assert!(matches!(decide(&s, &snap(T + 10 * S + GRACE_MS, T)), Decision::Run { .. }));
    assert!(matches!(decide(&s, &snap(T + 10 * S + GRACE_MS + 1, T)), Decision::Missed(_)));
}

#[test]
fn a_fake_clock_walk_runs_each_slot_once_and_replays_nothing() {
    // Drive the scheduler over 10 minutes in steps of 700 ms with an outage from
    // +100 s to +250 s; apply each decision as the runner would.
    let s = every10();
    let mut last = T;
    let mut ran = vec![];
    let mut missed = 0;
    let mut now = T;
    while now < T + 600 * S {
        now += 700;
        if (T + 100 * S..T + 250 * S).contains(&now) {
            continue; // no active instance
        }
        loop {
            match decide(&s, &snap(now, last)) {
                Decision::Wait { .. } => break,
                Decision::Run { slot_ms, missed: m, .. } => {
                    ran.push(slot_ms);
                    missed += m.map_or(0, |m| m.count);
                    last = slot_ms;
                }
                Decision::Missed(m) => {
                    missed += m.count;
                    last = m.last_ms;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let mut unique = ran.clone();
    unique.dedup();
    assert_eq!(unique.len(), ran.len(), "a slot ran twice: {ran:?}");
    // 60 slots in 10 minutes; the outage swallows +100..+240 (15 slots) but +250 runs
    // within the grace when the instance is back at +250.x.
    assert_eq!(ran.len() + missed as usize, 60, "ran {} missed {missed}", ran.len());
    assert!((14..=15).contains(&missed), "missed {missed}");
    assert!(ran.iter().all(|r| !(T + 101 * S..T + 250 * S).contains(r)), "ran a slot of the outage: {ran:?}");
}

#[test]
fn overlap_policies_while_a_run_is_in_progress() {
    let s = every10();
    let at = |overlap, queued_ms| Snapshot { now_ms: T + 10 * S + 5, last_slot_ms: T, running: running(7), queued_ms, overlap };
    let d = decide(&s, &at(Overlap::Skip, None));
    assert_eq!(d, Decision::Skip { slot_ms: T + 10 * S, running: 7, missed: None, queue_full: false });
    assert!(d.to_string().contains("run 7 is still in progress (overlap skip)"), "{d}");
    let d = decide(&s, &at(Overlap::Kill, None));
    assert_eq!(d, Decision::KillAndRun { slot_ms: T + 10 * S, running: 7, missed: None });
    assert!(d.to_string().starts_with("ending run 7"), "{d}");
    let d = decide(&s, &at(Overlap::Queue, None));
    assert_eq!(d, Decision::Queue { slot_ms: T + 10 * S, running: 7, missed: None });
    // One slot waits at most: the next one is skipped.
    let d = decide(&s, &at(Overlap::Queue, Some(T)));
    assert_eq!(d, Decision::Skip { slot_ms: T + 10 * S, running: 7, missed: None, queue_full: true });
    assert!(d.to_string().contains("a slot already waits"), "{d}");
}

#[test]
fn a_queued_slot_runs_when_nothing_runs() {
    let s = every10();
    let snap =
        Snapshot { now_ms: T + 14 * S, last_slot_ms: T + 10 * S, running: None, queued_ms: Some(T + 10 * S), overlap: Overlap::Queue };
    let d = decide(&s, &snap);
    assert_eq!(d, Decision::Run { slot_ms: T + 10 * S, missed: None, queued: true });
    assert!(d.to_string().contains("queued slot"), "{d}");
}

#[test]
fn five_field_schedules_and_schedules_that_end() {
    let hourly = Schedule::parse("0 * * * *").unwrap();
    let next = hourly.next_after(T).unwrap();
    assert!(next > T && next - T <= 3600 * S && next.is_multiple_of(60 * S));
    // 29 February 2100 does not exist: the schedule names no time, so it waits forever.
    let never = Schedule::parse("0 0 0 29 2 * 2100").or_else(|_| Schedule::parse("0 0 30 2 *")).unwrap();
    let d = decide(&never, &snap(T, T));
    assert_eq!(d, Decision::Wait { until_ms: None });
    assert!(d.to_string().contains("nothing more will run"), "{d}");
}

#[test]
fn manual_runs_follow_the_overlap_policy() {
    let r = running(3);
    assert_eq!(decide_manual(None, false, Overlap::Skip), Manual::Start);
    assert_eq!(decide_manual(r, false, Overlap::Skip), Manual::Refuse { running: 3 });
    assert_eq!(decide_manual(r, false, Overlap::Kill), Manual::KillAndStart { running: 3 });
    assert_eq!(decide_manual(r, false, Overlap::Queue), Manual::Queue { running: 3 });
    assert_eq!(decide_manual(r, true, Overlap::Queue), Manual::Refuse { running: 3 });
    assert!(Manual::Refuse { running: 3 }.to_string().starts_with("refused"));
}
