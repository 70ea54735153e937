//! Conference participants against the real parts: Janus 1.1 AudioBridge as the mixer
//! (`examples/janus/`), Kamailio as the proxy and three baresip phones. mware invites
//! each phone, joins it to the room as a plain RTP stream, and answers it with the
//! room's address: one phone's tone is heard by the other two, a mute stops it, and a
//! removed participant's call ends with a BYE while the others stay in.

mod common;

use common::*;
use mware_callmanager::conference;
use mware_callmanager::mixer::Mixer;
use mware_testkit::baresip::Baresip;
use mware_testkit::janus::Janus;
use std::time::Duration;

fn near(hz: Option<f64>, want: f64) -> bool {
    hz.is_some_and(|h| (h - want).abs() < 30.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_phones_in_a_janus_room_hear_each_other_mute_and_removal_work() {
    let rig = Rig::new(&[]).await;
    let janus = Janus::start(rig.dir.path()).unwrap();
    let eng = rig.engine(None).await;
    let phones: Vec<Baresip> = [("alice", 440), ("bob", 0), ("carol", 0)]
        .into_iter()
        .map(|(u, hz)| Baresip::start(rig.dir.path(), u, DOMAIN, rig.kam.sip_port, hz).unwrap())
        .collect();
    let mixer = Mixer::connect(&janus.url()).await.unwrap();
    mixer.create_room(4242, "test").await.unwrap();
    let mut parts = vec![];
    for p in &phones {
        let to = format!("sip:{}@{DOMAIN}", p.user);
        parts.push(conference::dial(&eng.ua, &mixer, 4242, DOMAIN, &to).await.unwrap());
    }
    assert_eq!(mixer.participants(4242).await.unwrap().len(), 3);
    for p in &phones {
        tokio::task::block_in_place(|| p.wait_log("Call established", Duration::from_secs(5))).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Bob and Carol hear Alice's 440 Hz through the room.
    for p in &phones[1..] {
        assert!(near(p.heard_hz_last(), 440.0), "{} hears {:?} Hz", p.user, p.heard_hz_last());
    }
    // Muted, Alice is heard by nobody.
    mixer.mute(4242, parts[0].joined.id, true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for p in &phones[1..] {
        assert_eq!(p.heard_hz_last(), None, "{} hears nothing while alice is muted", p.user);
    }
    let listed = mixer.participants(4242).await.unwrap();
    assert!(listed.iter().any(|p| p["id"] == parts[0].joined.id && p["muted"] == true), "{listed:?}");
    mixer.mute(4242, parts[0].joined.id, false).await.unwrap();
    // Carol is removed: her call ends, the others go on.
    let mut carol = parts.pop().unwrap();
    conference::remove(&eng.ua, &mixer, 4242, &mut carol).await.unwrap();
    // (Janus sends plain RTP participants no RTCP, so baresip has no media summary here.)
    let ended = format!("Call with sip:mware@{DOMAIN} terminated");
    tokio::task::block_in_place(|| phones[2].wait_log(&ended, Duration::from_secs(5))).unwrap();
    assert_eq!(mixer.participants(4242).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(near(phones[1].heard_hz_last(), 440.0), "bob hears alice again: {:?}", phones[1].heard_hz_last());
    mixer.destroy(4242).await.unwrap();
    for mut p in parts {
        let _ = eng.ua.bye(&mut p.dialog, "test over").await;
    }
}
