//! Benchmark (ignored; run by hand): callback orders completed per second against SIPp
//! phones, and mware's CPU per order, against its peer measured in the same run on the
//! same site: the same number of third-party calls placed directly through the Calls API
//! (operator first, then customer). The ratio says what the callback layer (orders,
//! fenced writes, critical sections, polling the call) costs on top of the call itself.
//!
//! `cargo test --release -p mware --test callback_bench -- --ignored --nocapture`
//! (`CALLBACK_BENCH_N`, default 200 orders).

mod common;

use common::callback::*;
use common::calls::*;
use mware_testkit::sip::Phone;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

const OPS: usize = 8;

/// utime + stime of `pid`, in clock ticks (100 per second).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

#[test]
#[ignore]
fn callback_orders_per_second_against_direct_calls() {
    let n: usize = std::env::var("CALLBACK_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let operators: Vec<_> = (0..OPS).map(|i| json!({"uri": format!("{}", 1100 + i), "section": format!("op-{}", 1100 + i)})).collect();
    let s = callback_site(json!({"busy_retry_s": 1, "max_open_per_domain": 100000,
        "queues": [{"name": "bench", "attempts": 1, "answer_timeout_s": 10, "operators": operators}]}));
    let d = &s.ds[0];
    let pid = d.child.pid();
    let _ops: Vec<Phone> = (0..OPS)
        .map(|i| {
            Phone::start_untraced(&scenario("uas_answer.xml"), s.dir.path(), &format!("{}", 1100 + i), DOMAIN, s.kam.sip_port, &[]).unwrap()
        })
        .collect();
    // The customer answers at once and hangs up at once.
    let _customer = Phone::start_untraced(&scenario("uas_hangup.xml"), s.dir.path(), "2001", DOMAIN, s.kam.sip_port, &[]).unwrap();

    // Peer: n direct calls, at most OPS at once (one per operator, as the orders are).
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    let mut next = 0;
    let mut live: Vec<(usize, String)> = vec![];
    while next < n || !live.is_empty() {
        let busy: Vec<usize> = live.iter().map(|x| x.0).collect();
        while next < n && live.len() < OPS {
            let op = (0..OPS).find(|o| !busy.contains(o) && !live.iter().any(|x| x.0 == *o)).unwrap();
            let body = json!({"domain": DOMAIN, "from": format!("{}", 1100 + op), "to": "2001"});
            let (code, v, _) = request(Method::POST, &format!("{}/api/callmanager/v1/calls", d.api), Some(TOKEN), Some(&body));
            assert_eq!(code, 201, "{v}");
            live.push((op, v["id"].as_str().unwrap().to_string()));
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
        live.retain(|(_, id)| {
            let (_, v, _) = request(Method::GET, &format!("{}/api/callmanager/v1/calls/{id}", d.api), Some(TOKEN), None);
            v["state"] != "ended"
        });
    }
    let (direct_s, direct_cpu) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);

    // Callback orders: all n taken at once; the service rings each operator as it frees.
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    let mut ids = vec![];
    for _ in 0..n {
        let (code, o) = cb(d, Method::POST, "/orders", Some(&json!({"domain": DOMAIN, "number": "2001", "queue": "bench"})));
        assert_eq!(code, 201, "{o}");
        ids.push(o["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (_, l) = cb(d, Method::GET, &format!("/orders?domain={DOMAIN}&state=completed"), None);
        let (_, f) = cb(d, Method::GET, &format!("/orders?domain={DOMAIN}&state=failed"), None);
        let done = l["total"].as_u64().unwrap_or(0) + f["total"].as_u64().unwrap_or(0);
        if done as usize >= n {
            assert_eq!(f["total"], 0, "{f:#}");
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {n} orders done");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (cb_s, cb_cpu) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid) - c0);
    let per = |ticks: u64| ticks as f64 * 10.0 / n as f64;
    println!(
        "callback bench, n={n}, {OPS} operators, load {}:\n  direct calls: {:.1} calls/s, mware CPU {:.2} ms per call\n  callback orders: {:.1} orders/s, mware CPU {:.2} ms per order\n  ratio orders/s to calls/s: {:.2}x; CPU per order / per call: {:.2}x",
        load(),
        n as f64 / direct_s,
        per(direct_cpu),
        n as f64 / cb_s,
        per(cb_cpu),
        direct_s / cb_s,
        per(cb_cpu) / per(direct_cpu).max(0.001)
    );
}
