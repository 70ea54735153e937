//! Benchmark of voice notifications: numbers called per second through a real Kamailio
//! to a SIPp UAS phone that answers at once, each call playing a short spoken message
//! (espeak-ng, PCMU RTP from mware) and hung up by mware at its end; and the time from
//! the phone's 200 OK reaching mware to the first RTP packet leaving (p50, p99). The
//! peer, in the same run: SIPp's own UAC calling the same phone through the same
//! Kamailio with the same concurrency and holding each call as long as the message.
//!
//! `cargo run --release -p mware-callmanager --example notify_bench -- [numbers] [concurrency]`
//! (defaults 500, 50). Results and the command go to `BENCHMARKS.md`.

#[path = "common/mod.rs"]
mod common;
use common::pct;

use mware_callmanager::notify::runner::{render, Notices};
use mware_callmanager::notify::{Message, Notice, Number, Window};
use mware_callmanager::Metrics;
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.test";
const TEXT: &str = "Alert.";

/// SIPp's UAC calling `bob` through Kamailio, each call held `hold_ms`: (calls/s, failed).
fn ceiling(kam: &Kamailio, dir: &std::path::Path, calls: u32, concurrency: u32, hold_ms: u64) -> (f64, String) {
    let t0 = Instant::now();
    let out = std::process::Command::new("/usr/bin/sipp")
        .arg(format!("127.0.0.1:{}", kam.sip_port))
        .arg("-sf")
        .arg(mware_testkit::sip::scenario("uac.xml"))
        .args(["-s", "bob", "-key", "domain", DOMAIN, "-d"])
        .arg(hold_ms.to_string())
        .args(["-i", "127.0.0.1", "-p"])
        .arg(free_sip_port().to_string())
        .args(["-r", "100000", "-l"])
        .arg(concurrency.to_string())
        .arg("-m")
        .arg(calls.to_string())
        .args(["-timeout", "300", "-nostdin"])
        .current_dir(dir)
        .output()
        .expect("sipp");
    let secs = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let failed = text.lines().find(|l| l.trim_start().starts_with("Failed call")).and_then(|l| l.split('|').nth(2)).unwrap_or("?").trim();
    (f64::from(calls) / secs, failed.to_string())
}

fn notice(i: u32) -> Notice {
    Notice {
        id: format!("1-n{i:012x}"),
        domain: DOMAIN.into(),
        message: Message::Text(TEXT.into()),
        message_ms: 0,
        caller_id: None,
        attempts: 1,
        retry_after_s: 1,
        answer_timeout_s: 30,
        window: Window::default(),
        confirm_digit: None,
        created_ms: mware_coord::now_ms(),
        state: "running".into(),
        instance: "b".into(),
        numbers: vec![Number { to: format!("sip:bob@{DOMAIN}"), state: "pending".into(), next_ms: 0, attempts: vec![] }],
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let numbers = *args.first().unwrap_or(&500);
    let concurrency = *args.get(1).unwrap_or(&50);
    let dir = tempfile::tempdir().unwrap();
    let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../examples/kamailio/kamailio.cfg");
    let kam = Kamailio::start(&cfg, dir.path(), &[]).unwrap();
    let sipp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uas_answer.xml");
    let _bob = Phone::start_untraced(&sipp, dir.path(), "bob", DOMAIN, kam.sip_port, &["-d", "0"]).unwrap();
    let ulaw = render(&Message::Text(TEXT.into())).await.expect("espeak-ng and sox");
    let msg_ms = ulaw.len() as u64 * 1000 / 8000;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("message {TEXT:?}: {msg_ms} ms; load {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));

    let (cps, failed) = ceiling(&kam, dir.path(), numbers, concurrency, msg_ms);
    println!("sipp-direct: {numbers} calls held {msg_ms} ms, {concurrency} at once: {cps:.1} calls/s, {failed} failed");

    let active = common::active_engine(dir.path(), kam.sip_port, Box::new(|_, _| {})).await;
    let eng = active.eng.clone();
    let ns = Notices::start(eng, Metrics::new(&mut prometheus_client::registry::Registry::default())).await.unwrap();

    let t0 = Instant::now();
    let (mut next, mut live, mut done) = (0u32, vec![], vec![]);
    while (done.len() as u32) < numbers {
        while next < numbers && live.len() < concurrency as usize {
            let mut n = notice(next);
            n.message_ms = msg_ms;
            ns.create(n.clone(), ulaw.clone()).await.unwrap();
            live.push(n.id);
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        live.retain(|id| match ns.get(id) {
            Ok(n) if n.state != "running" => {
                done.push(n);
                false
            }
            _ => true,
        });
    }
    let secs = t0.elapsed().as_secs_f64();
    let rate = f64::from(numbers) / secs;
    let played = done.iter().filter(|n| n.numbers[0].state == "played").count();
    let mut lat: Vec<f64> = done.iter().filter_map(|n| n.numbers[0].attempts.first()?.answer_to_audio_ms).map(|x| x as f64).collect();
    let (p50, p99, max) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99), lat.last().copied().unwrap_or(f64::NAN));
    println!(
        "mware notifications: {numbers} numbers, {concurrency} at once: {rate:.1} numbers/s ({:.2} of sipp-direct), {played} played, \
         200 OK -> first RTP p50 {p50:.0} ms p99 {p99:.0} ms max {max:.0} ms",
        rate / cps
    );
    drop(active);
}
