//! The load: clients driven flat out or paced, their latencies, CPU used.

use std::time::{Duration, Instant};

/// Resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Ops done and their latencies.
pub struct Sample {
    pub ops: usize,
    pub secs: f64,
    pub lat_us: Vec<u64>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub fn pct(&mut self, p: f64) -> f64 {
        self.lat_us.sort_unstable();
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }
}

/// Runs `clients` loops of `op` for `dur`; each op returns its latency to record.
///
/// `rate`: `None` runs each client flat out (closed loop). `Some(r)` paces the clients
/// to `r` ops/s in all, each client starting its ops on a fixed schedule; an op that
/// starts late (the one before took longer than the interval) counts the delay in
/// its latency, so a stall shows in the percentiles instead of hiding behind fewer ops.
pub async fn drive<F, Fut>(clients: usize, dur: Duration, rate: Option<f64>, op: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Duration>> + Send,
{
    let start = Instant::now();
    let end = start + dur;
    let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut lat = vec![];
                let mut due = interval.map(|iv| start + iv.mul_f64(i as f64 / clients as f64));
                while Instant::now() < end {
                    let late = match due {
                        Some(at) => {
                            tokio::time::sleep_until(at.into()).await;
                            // tokio's timer fires on the next millisecond tick: that much
                            // lateness is the bench's, not the system's under test.
                            Instant::now().saturating_duration_since(at).saturating_sub(TIMER_TICK)
                        }
                        None => Duration::ZERO,
                    };
                    lat.push((late + op(i).await.expect("operation")).as_micros() as u64);
                    due = due.zip(interval).map(|(at, iv)| at + iv);
                }
                lat
            })
        })
        .collect();
    let mut lat_us = vec![];
    for t in tasks {
        lat_us.extend(t.await.unwrap());
    }
    Sample { ops: lat_us.len(), secs: start.elapsed().as_secs_f64(), lat_us }
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
pub fn cpu_secs(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let f: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU used during a case: (this process, etcd), seconds.
pub struct Cpu(pub f64, pub f64);

impl Cpu {
    pub fn per_op_us(&self, ops: usize) -> String {
        format!("{:.0} µs + etcd {:.0} µs", self.0 * 1e6 / ops.max(1) as f64, self.1 * 1e6 / ops.max(1) as f64)
    }
}
