//! Conference participants against the real parts: Janus 1.1 AudioBridge as the mixer
//! (`examples/janus/`), Kamailio as the proxy and three baresip phones. mware invites
//! each phone, joins it to the room as a plain RTP stream, and answers it with the
//! room's address: one phone's tone is heard by the other two, a mute stops it, and a
//! removed participant's call ends with a BYE while the others stay in. A recorded
//! conference leaves a WAV of its mix that holds the tone and lasts as long as the
//! conference had participants.

mod common;

use common::*;
use mware_callmanager::conference;
use mware_callmanager::mixer::Mixer;
use mware_callmanager::rooms::Rooms;
use mware_testkit::baresip::{self, Baresip};
use mware_testkit::janus::Janus;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// `soxi -<opt> file`, trimmed (soxi fails on a file that is not a valid audio file).
fn soxi(opt: &str, file: &str) -> String {
    let out = Command::new("soxi").arg(opt).arg(file).output().unwrap();
    assert!(out.status.success(), "soxi {opt} {file}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_conference_leaves_a_wav_of_its_mix_with_the_tone_as_long_as_it_lasted() {
    let rig = Rig::new(&[]).await;
    let janus = Janus::start(rig.dir.path()).unwrap();
    let eng = rig.engine(None).await;
    let phones: Vec<Baresip> = [("alice", 440), ("bob", 0)]
        .into_iter()
        .map(|(u, hz)| Baresip::start(rig.dir.path(), u, DOMAIN, rig.kam.sip_port, hz).unwrap())
        .collect();
    let rooms = Rooms::start(eng.clone(), &janus.url(), 1).await.unwrap();
    let dir = rig.dir.path().join("recordings"); // absent: Janus creates it
    let room = rooms.create(DOMAIN.into(), "recorded".into(), 5, Some(dir.to_str().unwrap())).await.unwrap();
    let file = room.recording.clone().expect("a recording").file;
    assert_eq!(file, format!("{}/{}.wav", dir.display(), room.id));
    let stored = eng.store.load_conferences::<mware_callmanager::rooms::Room>().await.unwrap();
    assert_eq!(stored[0].recording, room.recording, "the next active instance knows the file too");
    let started = Instant::now();
    for p in &phones {
        rooms.add(&room.id, format!("sip:{}@{DOMAIN}", p.user)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while rooms.get(&room.id).unwrap().participants.values().filter(|m| m.state == "joined").count() < 2 {
        assert!(Instant::now() < deadline, "not joined: {:?}", rooms.get(&room.id).unwrap().participants);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let first_joined = rooms.get(&room.id).unwrap().participants.values().map(|m| m.since_ms).min().unwrap();
    rooms.destroy(&room.id).await.unwrap();
    let lasted = (mware_coord::now_ms() - first_joined) as f64 / 1000.0;
    assert!(started.elapsed().as_secs_f64() >= lasted);
    // Janus closes the file (and writes its length into the header) as the room's mixer
    // thread ends, just after the destroy is answered.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = std::fs::read(&file).unwrap_or_default();
        let riff = b.get(4..8).map(|x| u32::from_le_bytes(x.try_into().unwrap())).unwrap_or(0);
        if riff > 0 && riff as usize + 8 == b.len() {
            break;
        }
        assert!(Instant::now() < deadline, "{file} not closed: {} bytes, RIFF size {riff}", b.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((soxi("-t", &file), soxi("-r", &file), soxi("-c", &file)), ("wav".into(), "8000".into(), "1".into()));
    let secs: f64 = soxi("-D", &file).parse().unwrap();
    // Janus writes while the room has someone in it: from the first join (recorded as
    // that participant's `since_ms`, just after Janus took it) to the destroy.
    assert!((secs - lasted).abs() < 0.5, "the WAV lasts {secs} s, the conference had participants for {lasted:.2} s");
    let (rate, samples) = baresip::read_wav(std::path::Path::new(&file)).unwrap();
    let mid = samples.len() / 2;
    let hz = baresip::tone_hz(rate, &samples[mid - rate as usize / 2..mid + rate as usize / 2]);
    assert!(near(hz, 440.0), "the mix holds alice's tone: {hz:?} Hz");
    for p in &phones {
        tokio::task::block_in_place(|| p.wait_log(&format!("Call with sip:mware@{DOMAIN} terminated"), Duration::from_secs(5))).unwrap();
    }
}
