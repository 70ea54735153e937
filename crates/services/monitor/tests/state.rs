//! The probe state machine without the world: flapping is suppressed by `fail_after`
//! and `recover_after`, each change carries its reason in words, and the site's state is
//! the worst of its items.

use mware_monitor::{decide, Decision, Health, Tracker};

fn ok() -> Result<String, String> {
    Ok("connected".into())
}
fn bad() -> Result<String, String> {
    Err("connection refused".into())
}

/// Feeds `results` and returns the states after each, and the changes' reasons.
fn run(t: &mut Tracker, results: &[bool], fail_after: u32, recover_after: u32) -> (Vec<Health>, Vec<String>) {
    let mut states = vec![];
    let mut changes = vec![];
    for r in results {
        let d = decide(t, &if *r { ok() } else { bad() }, fail_after, recover_after);
        states.push(d.health());
        if d.changed() {
            changes.push(d.to_string());
        }
    }
    (states, changes)
}

#[test]
fn a_new_probe_is_ok_at_its_first_success() {
    let mut t = Tracker::new(Health::Unknown);
    let d = decide(&mut t, &ok(), 3, 2);
    assert_eq!(d, Decision::Become { health: Health::Ok, reason: "ok: first check succeeded (connected)".into() });
}

#[test]
fn a_new_probe_fails_only_after_fail_after_failures() {
    let mut t = Tracker::new(Health::Unknown);
    let (states, changes) = run(&mut t, &[false, false, false], 3, 2);
    assert_eq!(states, [Health::Unknown, Health::Unknown, Health::Failing]);
    assert_eq!(changes, ["failing: 3 checks in a row failed (fail_after 3): connection refused"]);
}

#[test]
fn flapping_is_suppressed_both_ways() {
    let mut t = Tracker::new(Health::Ok);
    // Fails twice in a row at most: never reported with fail_after 3.
    let (states, changes) = run(&mut t, &[false, true, false, false, true, false, true, false, false, true], 3, 2);
    assert!(states.iter().all(|s| *s == Health::Ok), "{states:?}");
    assert!(changes.is_empty());
    let d = decide(&mut Tracker { health: Health::Ok, failures: 1, successes: 0 }, &bad(), 3, 2);
    assert_eq!(d.reason(), "ok: 2 of 3 consecutive failures needed to report it failing (connection refused)");

    // Failing, then single successes between failures: never recovers with recover_after 2.
    let mut t = Tracker::new(Health::Failing);
    let (states, changes) = run(&mut t, &[true, false, true, false, true, false], 3, 2);
    assert!(states.iter().all(|s| *s == Health::Failing), "{states:?}");
    assert!(changes.is_empty());
    // Two successes in a row recover it.
    let (states, changes) = run(&mut t, &[true, true], 3, 2);
    assert_eq!(states, [Health::Failing, Health::Ok]);
    assert_eq!(changes, ["ok again after 2 checks in a row succeeded (recover_after 2): connected"]);
}

#[test]
fn a_failing_probe_says_for_how_long_and_why() {
    let mut t = Tracker::new(Health::Ok);
    run(&mut t, &[false, false], 2, 1);
    let d = decide(&mut t, &bad(), 2, 1);
    assert_eq!(d, Decision::Stay { health: Health::Failing, reason: "failing for 3 checks in a row: connection refused".into() });
    let d = decide(&mut t, &ok(), 2, 1);
    assert_eq!(d.health(), Health::Ok);
    assert!(d.changed());
}

#[test]
fn fail_after_one_reports_at_once() {
    let mut t = Tracker::new(Health::Ok);
    let (states, _) = run(&mut t, &[false], 1, 1);
    assert_eq!(states, [Health::Failing]);
}

#[test]
fn states_are_ordered_by_how_bad_they_are() {
    assert!(Health::Failing > Health::Warning && Health::Warning > Health::Unknown && Health::Unknown > Health::Ok);
    for h in [Health::Ok, Health::Unknown, Health::Warning, Health::Failing] {
        assert_eq!(Health::parse(h.as_str()), Some(h));
    }
}
