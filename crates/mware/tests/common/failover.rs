//! Failover rounds shared by the fast-failover tests and the failover benchmark: every
//! instance's `/api/v1/status` polled every 10 ms (concurrently, on kept-alive
//! connections) with a check at every poll that never two report active.

use super::{Daemon, Trio};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How often every instance is asked.
pub const POLL: Duration = Duration::from_millis(10);

/// Polls the status of daemons.
pub struct Poller {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Default for Poller {
    fn default() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
        Poller { rt, http }
    }
}

impl Poller {
    /// Every daemon's status at once (`Null` for one that does not answer).
    pub fn statuses(&self, ds: &[Daemon]) -> Vec<Value> {
        let calls = ds.iter().map(|d| {
            let req = self.http.get(format!("{}/api/v1/status", d.api));
            async move {
                match req.send().await {
                    Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                }
            }
        });
        self.rt.block_on(futures::future::join_all(calls))
    }

    /// Indexes of the daemons reporting active; panics when two do at one poll.
    pub fn active(&self, ds: &[Daemon]) -> Vec<usize> {
        let st = self.statuses(ds);
        let a: Vec<usize> = (0..ds.len()).filter(|&i| st[i]["state"] == "active").collect();
        assert!(a.len() <= 1, "two active at once: {a:?}");
        a
    }

    /// Polls every [`POLL`] until every daemon is settled (one active; the others passive;
    /// every companion ready), checking never two active; panics after `limit`.
    pub fn settle(&self, ds: &[Daemon], limit: Duration) -> usize {
        let t0 = Instant::now();
        loop {
            let st = self.statuses(ds);
            let active: Vec<usize> = (0..ds.len()).filter(|&i| st[i]["state"] == "active").collect();
            assert!(active.len() <= 1, "two active at once: {active:?}");
            let ready = st.iter().all(|s| s["companion"]["ready"] == true && (s["state"] == "active" || s["state"] == "passive"));
            if active.len() == 1 && ready {
                return active[0];
            }
            assert!(t0.elapsed() < limit, "not settled within {limit:?}: {st:?}");
            std::thread::sleep(POLL);
        }
    }

    /// Polls every [`POLL`] from `t0` (a kill) until a daemon reports active; its index and
    /// how long it took. Panics after 20 s, or when two are active at one poll.
    pub fn next_active(&self, ds: &[Daemon], t0: Instant) -> (usize, Duration) {
        loop {
            if let Some(&i) = self.active(ds).first() {
                return (i, t0.elapsed());
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "no failover in 20 s");
            std::thread::sleep(POLL);
        }
    }

    /// Kills -9 the active daemon `rounds` times; returns, per round, the milliseconds from
    /// the kill to another daemon reporting active. The killed one is started again after
    /// each round.
    pub fn kill9_rounds(&self, trio: &Trio, ds: &mut [Daemon], rounds: usize) -> Vec<f64> {
        let mut times = vec![];
        for round in 0..rounds {
            let victim = self.settle(ds, Duration::from_secs(30));
            let t0 = Instant::now();
            ds[victim].child.kill9();
            let (next, took) = self.next_active(ds, t0);
            let ms = took.as_secs_f64() * 1000.0;
            assert_ne!(next, victim);
            eprintln!("round {round}: kill -9 of {} -> {} active in {ms:.0} ms", trio.name(victim), trio.name(next));
            times.push(ms);
            ds[victim] = trio.start(victim);
        }
        times
    }
}

/// The `p` quantile (0..=1) of `v` (nearest rank on the sorted values).
pub fn quantile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}
