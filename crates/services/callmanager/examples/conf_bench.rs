//! Benchmark of conferences: mware's CPU per participant against the mixer's (Janus
//! AudioBridge), same run. N baresip phones are dialled into one room through a real
//! Kamailio (through `Rooms`, as the API does); then the room runs for a while. mware's
//! share is the SIP side (the INVITE, the join, the ACK, the records in the embedded
//! coordinator), a keepalive every 20 s, and who is talking: Janus forwards each
//! participant's audio to mware, 50 PCMU packets a second each, whose level mware reads.
//! Janus decodes, mixes and encodes every participant's audio 50 times a second (and
//! each participant's group once more for its forwarder). Target (issue 27): mware's CPU
//! per participant ≤ 1/10 of Janus's. mware's CPU with no conference is measured first
//! for as long, and what the conference adds is shown apart.
//!
//! `cargo run --release -p mware-callmanager --example conf_bench -- [participants] [seconds]`
//! (defaults 8, 20).

#[path = "common/mod.rs"]
mod common;

use mware_callmanager::rooms::Rooms;
use mware_testkit::baresip::Baresip;
use mware_testkit::janus::Janus;
use mware_testkit::sip::Kamailio;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";

/// CPU seconds (user + system) of a process, from `/proc/{pid}/stat`.
fn cpu_s(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after ") ".
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = *args.first().unwrap_or(&8) as usize;
    let secs = *args.get(1).unwrap_or(&20);
    let dir = tempfile::tempdir().unwrap();
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../examples/kamailio/kamailio.cfg");
    let kam = Kamailio::start(&cfg, dir.path(), &[]).unwrap();
    let janus = Janus::start(dir.path()).unwrap();
    let phones: Vec<Baresip> =
        (0..n).map(|i| Baresip::start(dir.path(), &format!("p{i}"), DOMAIN, kam.sip_port, if i == 0 { 440 } else { 0 }).unwrap()).collect();
    let active = common::active_engine(dir.path(), kam.sip_port, Box::new(|_, _| {})).await;
    let eng = active.eng.clone();
    let (me, jp) = ("self".to_string(), janus.pid().to_string());
    let rooms = Rooms::start(eng.clone(), &janus.url(), 1).await.unwrap();
    // The process's own cost with no conference (the activity, the coordinator's lease
    // and election poll, the mixer keepalive): what a conference adds is measured above it.
    let (b0, t_idle) = (cpu_s(&me), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let idle = (cpu_s(&me) - b0) / t_idle.elapsed().as_secs_f64();
    let room = rooms.create(DOMAIN.into(), "bench".into(), n.max(2) as u32, None).await.unwrap();
    let (m0, j0, t0) = (cpu_s(&me), cpu_s(&jp), Instant::now());
    for p in &phones {
        rooms.add(&room.id, format!("sip:{}@{DOMAIN}", p.user)).await.unwrap();
    }
    // Joined, and each one's talking known (its forwarder heard).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = rooms.view(&rooms.get(&room.id).unwrap());
        if v.participants.iter().filter(|m| m.talking.is_some()).count() == n {
            break;
        }
        assert!(Instant::now() < deadline, "not all joined and heard: {:?}", v.participants);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let join_s = t0.elapsed().as_secs_f64();
    let (m1, j1) = (cpu_s(&me), cpu_s(&jp));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (m2, j2) = (cpu_s(&me), cpu_s(&jp));
    let per = |x: f64| x * 1000.0 / n as f64;
    println!(
        "{n} participants joined in {join_s:.2} s: mware CPU {:.1} ms per participant to join, Janus {:.1} ms",
        per(m1 - m0),
        per(j1 - j0)
    );
    let (mw, ja) = ((m2 - m1) / secs as f64, (j2 - j1) / secs as f64);
    println!(
        "in the room for {secs} s: mware {:.2} ms CPU per participant-second, Janus {:.2} ms; mware {:.4} of Janus",
        per(mw),
        per(ja),
        if ja > 0.0 { mw / ja } else { f64::NAN }
    );
    let added = (mw - idle).max(0.0);
    println!(
        "mware with no conference: {:.2} ms CPU per second; what the conference adds: {:.3} ms per participant-second, {:.4} of Janus",
        idle * 1000.0,
        per(added),
        if ja > 0.0 { added / ja } else { f64::NAN }
    );
    let whole = (m2 - m0) / (j2 - j0).max(1e-9);
    println!(
        "join and {secs} s together: mware {:.1} ms, Janus {:.1} ms per participant: mware {whole:.3} of Janus",
        per(m2 - m0),
        per(j2 - j0)
    );
    let v = rooms.view(&rooms.get(&room.id).unwrap());
    let talking: Vec<&str> = v.participants.iter().filter(|m| m.talking == Some(true)).map(|m| m.party.as_str()).collect();
    println!("talking at the end: {talking:?} (p0 plays a tone)");
    let _ = rooms.destroy(&room.id).await;
    drop(active);
}
