//! Unit tests of the pure election rules.

use super::*;

fn cand(i: &str, order: i64, since_ms: u64) -> Candidate {
    Candidate { instance: i.into(), order, since_ms }
}

fn snap(me: &str, order: i64) -> ElectionSnapshot {
    ElectionSnapshot {
        me: me.into(),
        my_order: order,
        now_ms: 1_000_000,
        active: None,
        lease_age_ms: Some(100),
        ttl_ms: 3000,
        margin_ms: 1000,
        rank_wait_ms: 300,
        failback_after_ms: None,
        view: Some(View { leader: None, members: vec![cand("m1", 10, 0), cand("m2", 20, 0), cand("m3", 30, 0)], switchover: None }),
        free_for_ms: Some(0),
        handing_over_ms: None,
    }
}

fn leader(i: &str, epoch: Epoch, mine: bool) -> Option<SeenLeader> {
    Some(SeenLeader { instance: i.into(), epoch, mine })
}

#[test]
fn active_steps_down_before_lease_can_lapse() {
    let mut s = snap("m1", 10);
    s.active = Some(7);
    s.view.as_mut().unwrap().leader = leader("m1", 7, true);
    s.lease_age_ms = Some(1999);
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
    s.lease_age_ms = Some(2000);
    let d = decide(&s);
    assert!(matches!(d, ElectionDecision::StepDown { .. }));
    assert_eq!(d.to_string(), "could not renew lease for 2000 ms; stepping down before it can expire");
    // Even when the coordinator does not answer at all.
    s.view = None;
    assert!(matches!(decide(&s), ElectionDecision::StepDown { .. }));
}

#[test]
fn active_without_answer_stays_while_lease_is_fresh() {
    let mut s = snap("m1", 10);
    s.active = Some(7);
    s.view = None;
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
}

#[test]
fn active_steps_down_when_key_is_someone_elses() {
    let mut s = snap("m1", 10);
    s.active = Some(7);
    s.view.as_mut().unwrap().leader = leader("m2", 9, false);
    let d = decide(&s);
    assert!(matches!(d, ElectionDecision::StepDown { .. }), "{d}");
    assert!(d.to_string().contains("held by m2 (epoch 9)"));
}

#[test]
fn free_key_is_taken_in_order() {
    let s = snap("m1", 10);
    assert!(matches!(decide(&s), ElectionDecision::Campaign { .. }));
    let mut s = snap("m3", 30);
    s.free_for_ms = Some(599);
    let d = decide(&s);
    assert!(matches!(d, ElectionDecision::Stay { .. }), "{d}");
    assert!(d.to_string().contains("rank 2"), "{d}");
    s.free_for_ms = Some(600);
    assert!(matches!(decide(&s), ElectionDecision::Campaign { .. }));
}

#[test]
fn dead_members_do_not_count_in_rank() {
    let mut s = snap("m3", 30);
    s.view.as_mut().unwrap().members.retain(|c| c.instance != "m1");
    s.free_for_ms = Some(300);
    assert!(matches!(decide(&s), ElectionDecision::Campaign { .. }));
}

#[test]
fn passive_without_confirmed_lease_does_not_campaign() {
    let mut s = snap("m1", 10);
    s.lease_age_ms = None;
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
    s.lease_age_ms = Some(2500);
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
}

#[test]
fn passive_holding_the_key_resumes() {
    let mut s = snap("m1", 10);
    s.view.as_mut().unwrap().leader = leader("m1", 4, true);
    assert_eq!(decide(&s), ElectionDecision::Resume { epoch: 4, reason: decide(&s).to_string() });
    // Same name but another process's lease: wait for it to expire.
    s.view.as_mut().unwrap().leader = leader("m1", 4, false);
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
}

#[test]
fn switchover_hands_over_after_margin() {
    let mut s = snap("m1", 10);
    s.active = Some(5);
    let v = s.view.as_mut().unwrap();
    v.leader = leader("m1", 5, true);
    v.switchover = Some(SwitchoverRequest { to: Some("m3".into()), from: "m1".into(), at_ms: 0 });
    let d = decide(&s);
    assert_eq!(d, ElectionDecision::BeginHandover { to: "m3".into(), reason: d.to_string() });
    // Now passive, handing over.
    s.active = None;
    s.handing_over_ms = Some(500);
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
    s.handing_over_ms = Some(1000);
    assert!(matches!(decide(&s), ElectionDecision::Release { epoch: 5, .. }));
}

#[test]
fn switchover_target_goes_first_and_old_leader_last() {
    let req = SwitchoverRequest { to: Some("m3".into()), from: "m1".into(), at_ms: 0 };
    let mut s = snap("m3", 30);
    s.view.as_mut().unwrap().switchover = Some(req.clone());
    assert!(matches!(decide(&s), ElectionDecision::Campaign { .. }));
    let mut s = snap("m2", 20);
    s.view.as_mut().unwrap().switchover = Some(req.clone());
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
    let mut s = snap("m1", 10);
    s.view.as_mut().unwrap().switchover = Some(req);
    s.free_for_ms = Some(300);
    let d = decide(&s);
    assert!(d.to_string().contains("rank 2"), "{d}");
}

#[test]
fn switchover_to_next_in_order() {
    let live = vec![cand("m1", 10, 0), cand("m2", 20, 0), cand("m3", 30, 0)];
    let r = |from: &str| SwitchoverRequest { to: None, from: from.into(), at_ms: 0 };
    assert_eq!(switchover_target(&r("m1"), &live).as_deref(), Some("m2"));
    assert_eq!(switchover_target(&r("m3"), &live).as_deref(), Some("m1"));
    let bad = SwitchoverRequest { to: Some("m9".into()), from: "m1".into(), at_ms: 0 };
    assert_eq!(switchover_target(&bad, &live), None);
}

#[test]
fn switchover_request_is_validated() {
    let mut v = View { leader: None, members: vec![cand("m1", 10, 0), cand("m2", 20, 0)], switchover: None };
    assert!(switchover_request(1, &v, None, 0).is_err());
    v.leader = leader("m1", 3, false);
    assert!(switchover_request(1, &v, Some("m1".into()), 0).is_err());
    assert!(switchover_request(1, &v, Some("zz".into()), 0).is_err());
    assert_eq!(switchover_request(1, &v, None, 0).unwrap().from, "m1");
}

#[test]
fn failback_to_lower_order_after_delay() {
    let mut s = snap("m2", 20);
    s.active = Some(5);
    s.failback_after_ms = Some(60_000);
    let v = s.view.as_mut().unwrap();
    v.leader = leader("m2", 5, true);
    v.members[0].since_ms = s.now_ms - 59_000;
    assert!(matches!(decide(&s), ElectionDecision::Stay { .. }));
    s.view.as_mut().unwrap().members[0].since_ms = 1_000_000 - 60_000;
    let d = decide(&s);
    assert!(matches!(&d, ElectionDecision::BeginHandover { to, .. } if to == "m1"), "{d}");
}

#[test]
fn takeover_reasons_in_words() {
    let prev = PreviousLeader { instance: "mware1".into(), order: Some(10), epoch: 3 };
    let v = View { leader: None, members: vec![cand("mware2", 20, 0)], switchover: None };
    assert_eq!(
        takeover_reason("mware2", Some(&prev), &v),
        "took over from mware1 (order 10): its lease ended (its process died, or it could not renew in time)"
    );
    let mut v2 = v.clone();
    v2.members.push(cand("mware1", 10, 0));
    assert_eq!(takeover_reason("mware2", Some(&prev), &v2), "took over from mware1 (order 10): it released the leader key");
    v2.switchover = Some(SwitchoverRequest { to: Some("mware2".into()), from: "mware1".into(), at_ms: 0 });
    assert_eq!(takeover_reason("mware2", Some(&prev), &v2), "took over from mware1 (order 10): switchover requested");
}
