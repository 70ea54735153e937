//! End-to-end benchmark client of devicemanager: `--clients` concurrent callers, each
//! submitting a job (`POST /api/devicemanager/v1/jobs`) and waiting for its stored
//! result (`GET .../jobs/{id}?wait_ms=`), for `--seconds`. Prints jobs/s and the
//! round-trip p50/p99 (API call to stored result). Used by `bench/devices.sh`.
//!
//! `cargo run --release -p mware-devices --example bench -- --api http://127.0.0.1:8271 --target 127.0.0.1:9 --clients 64 --seconds 20`

use std::time::{Duration, Instant};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() {
    let api = arg("--api", "http://127.0.0.1:8271");
    let target = arg("--target", "127.0.0.1:9");
    let satellite = arg("--satellite", "");
    let clients: usize = arg("--clients", "64").parse().expect("--clients");
    let seconds: u64 = arg("--seconds", "20").parse().expect("--seconds");
    // Job calls take devicemanager's own token (devicemanager.token_env), not the API token.
    let token = std::env::var("MWARE_DM_TOKEN").unwrap_or_default();
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().expect("client");
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = vec![];
    for _ in 0..clients {
        let (http, api, target, token, satellite) = (http.clone(), api.clone(), target.clone(), token.clone(), satellite.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            let mut failed = 0u64;
            let mut body = serde_json::json!({"kind": "tcp.check", "target": target, "timeout_ms": 30000});
            if !satellite.is_empty() {
                body["satellite"] = serde_json::json!(satellite);
            }
            while Instant::now() < end {
                let t0 = Instant::now();
                let r = http.post(format!("{api}/api/devicemanager/v1/jobs")).bearer_auth(&token).json(&body).send().await;
                let Ok(r) = r else {
                    failed += 1;
                    continue;
                };
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let Some(id) = v["id"].as_str() else {
                    failed += 1;
                    continue;
                };
                loop {
                    let j: serde_json::Value =
                        match http.get(format!("{api}/api/devicemanager/v1/jobs/{id}?wait_ms=10000")).bearer_auth(&token).send().await {
                            Ok(r) => r.json().await.unwrap_or_default(),
                            Err(_) => serde_json::Value::Null,
                        };
                    match j["state"].as_str() {
                        Some("done") => {
                            lat.push(t0.elapsed());
                            break;
                        }
                        Some("failed") | Some("expired") => {
                            failed += 1;
                            break;
                        }
                        _ => {}
                    }
                }
            }
            (lat, failed)
        }));
    }
    let start = Instant::now();
    let mut all = vec![];
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.expect("client task");
        all.extend(l);
        failed += f;
    }
    let took = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
    };
    println!(
        "mware: {} jobs in {:.1} s = {:.0} jobs/s, round trip p50 {:.1} ms p99 {:.1} ms, failed {}",
        all.len(),
        took,
        all.len() as f64 / took,
        pct(0.50),
        pct(0.99),
        failed
    );
}
