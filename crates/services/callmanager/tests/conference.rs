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
        parts.push(conference::dial(&eng.ua, &mixer, 4242, DOMAIN, &to, None).await.unwrap());
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

/// Who is talking, with more participants than Janus has groups (5): six baresip phones,
/// one of them playing a tone. Everyone joins the last group; mware spreads them over
/// the empty ones and swaps members of the loud shared group with quiet single ones
/// until the talker is alone: then it shows `talking: true` for it and `false` for the
/// five others. Muted, the talker is silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_talker_among_six_participants_is_found_and_a_mute_silences_it() {
    let rig = Rig::new(&[]).await;
    let janus = Janus::start(rig.dir.path()).unwrap();
    let eng = rig.engine(None).await;
    let phones: Vec<Baresip> = (0..6)
        .map(|i| Baresip::start(rig.dir.path(), &format!("u{i}"), DOMAIN, rig.kam.sip_port, if i == 4 { 440 } else { 0 }).unwrap())
        .collect();
    let rooms = Rooms::start(eng.clone(), &janus.url(), 1).await.unwrap();
    let room = rooms.create(DOMAIN.into(), "talk".into(), 6, None).await.unwrap();
    let mut talker = String::new();
    for (i, p) in phones.iter().enumerate() {
        let m = rooms.add(&room.id, format!("sip:{}@{DOMAIN}", p.user)).await.unwrap();
        if i == 4 {
            talker = m.pid.clone();
        }
    }
    let voices = || {
        let v = rooms.view(&rooms.get(&room.id).unwrap());
        v.participants.iter().map(|m| (m.pid.clone(), m.state.clone(), m.talking)).collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = voices();
        let found = v.len() == 6 && v.iter().all(|(pid, state, t)| state == "joined" && *t == Some(*pid == talker));
        if found {
            break;
        }
        assert!(Instant::now() < deadline, "the talker {talker} was not found: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = rooms.view(&rooms.get(&room.id).unwrap()).participants.iter().find(|m| m.pid == talker).and_then(|m| m.talking_since_ms);
    assert!(since.is_some_and(|s| s <= mware_coord::now_ms()));
    rooms.mute(&room.id, &talker, true).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while voices().iter().any(|(_, _, t)| *t != Some(false)) {
        assert!(Instant::now() < deadline, "muted, the talker still talks: {:?}", voices());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rooms.destroy(&room.id).await.unwrap();
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
    // thread ends, just after the destroy is answered: the header matches the file, which
    // no longer grows (it is written every 20 ms while open).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let b = std::fs::read(&file).unwrap_or_default();
        let riff = b.get(4..8).map(|x| u32::from_le_bytes(x.try_into().unwrap())).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let still = std::fs::metadata(&file).map(|m| m.len() as usize == b.len()).unwrap_or(false);
        if riff > 0 && riff as usize + 8 == b.len() && still {
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

/// A Janus API request; its answer.
async fn janus(http: &reqwest::Client, url: &str, body: serde_json::Value) -> serde_json::Value {
    http.post(url).json(&body).send().await.unwrap().json().await.unwrap()
}

/// Why conferences show no `talking`: Janus 1.1's AudioBridge reads the RFC 6464 audio
/// level only from WebRTC participants; for a plain RTP participant (every phone mware
/// joins) its relay thread never parses the header extension, even with
/// `rtp.audiolevel_ext` at the join and `audiolevel_event` on the room. A raw RTP
/// stream of loud PCMU with level -10 dBov in extension 1 for 3 s is never "talking",
/// and no event says so. When this fails, Janus learned it: mware can then negotiate the
/// extension with the phones and read the `talking` events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_1_1_does_not_report_talking_for_plain_rtp_participants() {
    let dir = tempfile::tempdir().unwrap();
    let j = Janus::start(dir.path()).unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let tx = || format!("{:x}", rand::random::<u64>());
    let url = j.url();
    let session = janus(&http, &url, serde_json::json!({"janus": "create", "transaction": tx()})).await["data"]["id"].as_u64().unwrap();
    let s_url = format!("{url}/{session}");
    let attach = serde_json::json!({"janus": "attach", "plugin": "janus.plugin.audiobridge", "transaction": tx()});
    let control = janus(&http, &s_url, attach.clone()).await["data"]["id"].as_u64().unwrap();
    let create = serde_json::json!({"request": "create", "room": 7, "allow_rtp_participants": true, "sampling_rate": 8000,
        "audiolevel_event": true, "audio_active_packets": 10, "audio_level_average": 40});
    let v = janus(&http, &format!("{s_url}/{control}"), serde_json::json!({"janus": "message", "transaction": tx(), "body": create})).await;
    assert_eq!(v["plugindata"]["data"]["audiobridge"], "created", "{v}");
    let handle = janus(&http, &s_url, attach).await["data"]["id"].as_u64().unwrap();
    let phone = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = phone.local_addr().unwrap().port();
    let join = serde_json::json!({"request": "join", "room": 7, "codec": "pcmu",
        "rtp": {"ip": "127.0.0.1", "port": port, "payload_type": 0, "audiolevel_ext": 1}});
    janus(&http, &format!("{s_url}/{handle}"), serde_json::json!({"janus": "message", "transaction": tx(), "body": join})).await;
    let joined: serde_json::Value = http.get(format!("{s_url}?maxev=5")).send().await.unwrap().json().await.unwrap();
    let rtp = joined.as_array().and_then(|a| a.iter().find_map(|e| e["plugindata"]["data"]["rtp"].as_object().cloned())).unwrap();
    let to = format!("{}:{}", rtp["ip"].as_str().unwrap(), rtp["port"]);
    // 150 packets (3 s) of 20 ms: RTP with a one-byte header extension (RFC 8285),
    // id 1: voice activity + level 10 (-10 dBov, loud); the payload a loud square wave.
    for seq in 0u16..150 {
        let mut p = vec![0x90, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&0x1234u32.to_be_bytes());
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0x80 | 10, 0, 0]);
        p.extend((0..160).map(|i| if (i / 10) % 2 == 0 { 0x80u8 } else { 0x00 }));
        phone.send_to(&p, &to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let list = serde_json::json!({"request": "listparticipants", "room": 7});
    let v = janus(&http, &format!("{s_url}/{control}"), serde_json::json!({"janus": "message", "transaction": tx(), "body": list})).await;
    let p = &v["plugindata"]["data"]["participants"][0];
    assert_eq!(p["setup"], true, "Janus got the RTP: {v}");
    assert_eq!(p["talking"], false, "the extension id was taken (the field is shown) but never read: {v}");
    // No `talking` event either (the long poll answers at once when it has one).
    let ev = http.get(format!("{s_url}?maxev=5")).timeout(Duration::from_secs(2)).send().await;
    if let Ok(r) = ev {
        let body = r.text().await.unwrap_or_default();
        assert!(!body.contains("talking"), "{body}");
    }
}
