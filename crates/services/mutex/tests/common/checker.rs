//! A safety checker for the critical sections API, reusable across processes and
//! failovers: N clients acquire, hold and release the same mutex through HTTP for a
//! while, each logging `[grant seen, release sent, token]`; [`check`] then asserts that
//! no more than `limit` holds ever overlap and that tokens grow in grant order.
//!
//! The logged interval is inside the real one (the grant was made before its answer
//! arrived; the release is sent after the interval's end), so an overlap found here
//! is a real one. Clients retry over every base URL on 503 or a broken connection,
//! with a stable owner so a retried acquire gets back a grant that was already made.
//! Needs `reqwest`, `tokio` and `serde_json`.
//!
//! Reuse from another crate's test (e.g. the cross-process failover test with three
//! daemons):
//!
//! ```text
//! #[path = "../../crates/services/mutex/tests/common/checker.rs"]
//! mod checker;
//! let rep = checker::run(checker::Config { bases: vec![url1, url2, url3], .. }).await;
//! checker::check(&rep.holds, 1).unwrap();
//! ```
#![allow(dead_code)]

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// API bases (`http://127.0.0.1:8271`), tried in turn on 503 or connection errors.
    pub bases: Vec<String>,
    /// Domain.
    pub domain: String,
    /// Mutex name.
    pub name: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Holders at once (1: a mutex).
    pub limit: u32,
    /// How long clients keep going.
    pub duration: Duration,
    /// How long each grant is held.
    pub hold: Duration,
    /// `ttl_ms` asked for (keep it far above `hold`).
    pub ttl_ms: u64,
    /// `wait_ms` asked for.
    pub wait_ms: u64,
    /// Bearer token sent with every call (the daemon requires one for mutating calls).
    pub token: Option<String>,
}

/// One hold as a client saw it; times in µs since the run started.
#[derive(Debug, Clone)]
pub struct Hold {
    /// Client index.
    pub client: usize,
    /// Fencing token.
    pub token: u64,
    /// When the grant answer arrived.
    pub granted_us: u64,
    /// When the release was first sent.
    pub released_us: u64,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Every hold.
    pub holds: Vec<Hold>,
    /// Answers 409 (wait ran out).
    pub busy: u64,
    /// 503s and connection errors (retried).
    pub unavailable: u64,
    /// Other unexpected answers: `status body`.
    pub unexpected: Vec<String>,
    /// Releases answered 409: the grant was gone before its holder released it (lost).
    pub lost_releases: u64,
}

enum Answer {
    Ok(Value),
    Status(u16, Value),
    Down,
}

async fn call(http: &reqwest::Client, url: &str, body: &Value, token: Option<&str>) -> Answer {
    let mut rb = http.post(url).json(body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    match rb.send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let v = r.json().await.unwrap_or(Value::Null);
            if s == 200 {
                Answer::Ok(v)
            } else if s == 503 {
                Answer::Down
            } else {
                Answer::Status(s, v)
            }
        }
        Err(_) => Answer::Down,
    }
}

async fn client(cfg: Config, i: usize, start: Instant) -> Report {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(cfg.wait_ms + 10_000)).build().unwrap();
    let owner = format!("checker-{i}");
    let path = |base: &str, op: &str| format!("{base}/api/v1/domains/{}/mutexes/{}/{op}", cfg.domain, cfg.name);
    let us = || start.elapsed().as_micros() as u64;
    let mut rep = Report::default();
    let mut b = i % cfg.bases.len();
    let deadline = start + cfg.duration;
    while Instant::now() < deadline {
        let body = json!({"owner": owner, "ttl_ms": cfg.ttl_ms, "wait_ms": cfg.wait_ms, "limit": cfg.limit});
        let token = match call(&http, &path(&cfg.bases[b], "acquire"), &body, cfg.token.as_deref()).await {
            Answer::Ok(v) => v["token"].as_u64().expect("token"),
            Answer::Status(409, _) => {
                rep.busy += 1;
                continue;
            }
            Answer::Status(s, v) => {
                rep.unexpected.push(format!("acquire: {s} {v}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Answer::Down => {
                rep.unavailable += 1;
                b = (b + 1) % cfg.bases.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let granted_us = us();
        if !cfg.hold.is_zero() {
            tokio::time::sleep(cfg.hold).await;
        }
        let released_us = us();
        rep.holds.push(Hold { client: i, token, granted_us, released_us });
        // Release until it is done or the grant is known to be gone.
        let rel_deadline = Instant::now() + Duration::from_millis(cfg.ttl_ms + 5000);
        loop {
            match call(&http, &path(&cfg.bases[b], "release"), &json!({"owner": owner, "token": token}), cfg.token.as_deref()).await {
                Answer::Ok(_) => break,
                Answer::Status(409, _) => {
                    rep.lost_releases += 1;
                    break;
                }
                Answer::Status(s, v) => {
                    rep.unexpected.push(format!("release: {s} {v}"));
                    break;
                }
                Answer::Down => {
                    rep.unavailable += 1;
                    b = (b + 1) % cfg.bases.len();
                    if Instant::now() > rel_deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    rep
}

/// Runs the clients until `cfg.duration` has passed (plus the last holds).
pub async fn run(cfg: Config) -> Report {
    let start = Instant::now();
    let tasks: Vec<_> = (0..cfg.clients).map(|i| tokio::spawn(client(cfg.clone(), i, start))).collect();
    let mut all = Report::default();
    for t in tasks {
        let r = t.await.expect("client task");
        all.holds.extend(r.holds);
        all.busy += r.busy;
        all.unavailable += r.unavailable;
        all.unexpected.extend(r.unexpected);
        all.lost_releases += r.lost_releases;
    }
    all
}

/// Checks the holds: at most `limit` at once, tokens unique and (for a mutex) growing in
/// grant order.
pub fn check(holds: &[Hold], limit: u32) -> Result<(), String> {
    // Overlap: sweep over interval ends (an end at the same instant as a start is not an overlap).
    let mut ev: Vec<(u64, i32, usize)> = vec![];
    for (k, h) in holds.iter().enumerate() {
        ev.push((h.granted_us, 1, k));
        ev.push((h.released_us, -1, k));
    }
    ev.sort_by_key(|&(t, d, _)| (t, d));
    let mut open = 0i32;
    for (t, d, k) in ev {
        open += d;
        if open > limit as i32 {
            return Err(format!("{open} holds at once at {t} µs (limit {limit}); one of them: {:?}", holds[k]));
        }
    }
    // Tokens: unique, and a hold that ended before another began has the smaller token.
    let mut by_token: Vec<&Hold> = holds.iter().collect();
    by_token.sort_by_key(|h| h.token);
    for w in by_token.windows(2) {
        if w[0].token == w[1].token {
            return Err(format!("token {} granted twice: {:?} and {:?}", w[0].token, w[0], w[1]));
        }
    }
    if limit > 1 {
        // With several holders at once a grant answer can arrive after another holder
        // (granted later) has already finished, so grant order is not observable here.
        return Ok(());
    }
    let mut min_later_release = u64::MAX;
    for h in by_token.iter().rev() {
        if min_later_release < h.granted_us {
            return Err(format!("token {} was granted after a hold with a larger token had ended", h.token));
        }
        min_later_release = min_later_release.min(h.released_us);
    }
    Ok(())
}
