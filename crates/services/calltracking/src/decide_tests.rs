//! Tests of [`super::decide`].

use super::*;

fn stored(user: &str, contact: &str, source: Source, removing: bool) -> Stored {
    Stored { domain: "d.test".into(), user: user.into(), contact: contact.into(), source, removing, since_ms: 1 }
}

fn wanted(user: &str, contact: &str) -> Wanted {
    Wanted { domain: "d.test".into(), user: user.into(), contact: contact.into() }
}

fn bound(list: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (a, c) in list {
        m.entry(a.to_string()).or_default().push(c.to_string());
    }
    m
}

#[test]
fn a_new_site_account_is_stored_then_bound() {
    let b = bound(&[]);
    let a = decide(&Snapshot { site: &[wanted("gw", "sip:gw@1.1.1.1")], stored: &[], bound: &b, now_ms: 5 });
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(matches!(&a[0], Action::Store(s, _) if s.since_ms == 5 && s.source == Source::Site));
    assert_eq!(a[1], Action::Add { aor: "gw@d.test".into(), contact: "sip:gw@1.1.1.1".into(), lost: false });
    assert!(a[1].to_string().contains("new static registration"), "{}", a[1]);
}

#[test]
fn a_contact_the_registrar_lost_is_bound_again_and_a_bound_one_left_alone() {
    let s = [stored("gw", "sip:gw@1.1.1.1", Source::Site, false), stored("api", "sip:api@2.2.2.2", Source::Api, false)];
    let b = bound(&[("api@d.test", "sip:api@2.2.2.2")]);
    let a = decide(&Snapshot { site: &[wanted("gw", "sip:gw@1.1.1.1")], stored: &s, bound: &b, now_ms: 5 });
    assert_eq!(a, vec![Action::Add { aor: "gw@d.test".into(), contact: "sip:gw@1.1.1.1".into(), lost: true }]);
    assert!(a[0].to_string().contains("had lost it"), "{}", a[0]);
}

#[test]
fn deleted_and_dropped_accounts_leave_the_registrar_then_the_store() {
    let s = [stored("api", "sip:api@2.2.2.2", Source::Api, true), stored("old", "sip:old@3.3.3.3", Source::Site, false)];
    let b = bound(&[("api@d.test", "sip:api@2.2.2.2")]);
    let a = decide(&Snapshot { site: &[], stored: &s, bound: &b, now_ms: 5 });
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(matches!(&a[0], Action::Remove { why, .. } if why.contains("deleted through the API")));
    assert_eq!(a[1], Action::Forget("calltracking/static/d.test/api".into()));
    assert_eq!(a[2], Action::Forget("calltracking/static/d.test/old".into()), "not bound: only forgotten");
}

#[test]
fn a_changed_contact_replaces_the_old_one() {
    let s = [stored("gw", "sip:gw@1.1.1.1", Source::Site, false)];
    let b = bound(&[("gw@d.test", "sip:gw@1.1.1.1")]);
    let a = decide(&Snapshot { site: &[wanted("gw", "sip:gw@9.9.9.9")], stored: &s, bound: &b, now_ms: 5 });
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(matches!(&a[0], Action::Remove { contact, .. } if contact == "sip:gw@1.1.1.1"));
    assert!(matches!(&a[1], Action::Store(s, _) if s.contact == "sip:gw@9.9.9.9"));
    assert!(matches!(&a[2], Action::Add { lost: false, .. }));
}
