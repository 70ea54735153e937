//! Forwarding to the provisioning upstreams, in order, with failover.
//!
//! Reads fail over on any failure (transport error, timeout, 5xx). Writes fail
//! over only when nothing can have been written (connection refused, or 503
//! from a stopped provisioning service); after a timeout or another 5xx the
//! write is answered `-1` rather than risk applying it twice.
//!
//! The caller's `Authorization` header goes to the upstream; a caller without one gets
//! the upstream URL's own `user:password@`, if it has one. Health, metrics and reasons
//! name an upstream by its URL without userinfo.

use super::UpstreamUrl;
use crate::metrics::RtcacheMetrics;
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Client, Method, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the upstreams answered.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx, with the body.
    Ok(Bytes),
    /// 4xx: a real refusal, with status and body.
    Refused(StatusCode, Bytes),
    /// Every upstream failed; the last reason.
    Failed(String),
}

/// Health of one upstream, shown in `/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Health {
    /// Base URL.
    pub url: String,
    /// Last success, ms since the Unix epoch.
    pub last_ok_ms: Option<u64>,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
}

/// The upstream set.
#[derive(Clone)]
pub struct Upstreams {
    client: Client,
    bases: Arc<Vec<UpstreamUrl>>,
    health: Arc<Mutex<Vec<Health>>>,
    metrics: RtcacheMetrics,
}

enum Try {
    Done(Outcome),
    NextSafe(String),
    NextUnsafe(String),
}

impl Upstreams {
    /// Builds the client; `timeout_ms` bounds each attempt.
    pub fn new(bases: Vec<UpstreamUrl>, timeout_ms: u64, metrics: RtcacheMetrics) -> Self {
        let client = Client::builder()
            .timeout(std::time::Duration::from_millis(timeout_ms))
            .connect_timeout(std::time::Duration::from_millis(timeout_ms))
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client builds");
        let health = bases.iter().map(|u| Health { url: u.base.clone(), ..Default::default() }).collect();
        Upstreams { client, bases: Arc::new(bases), health: Arc::new(Mutex::new(health)), metrics }
    }

    /// Current health of each upstream.
    pub fn health(&self) -> Vec<Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note(&self, i: usize, err: Option<&str>) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match err {
            None => {
                h[i].last_ok_ms = Some(mware_coord::now_ms());
                h[i].consecutive_failures = 0;
            }
            Some(e) => {
                h[i].last_error = Some(e.to_string());
                h[i].consecutive_failures += 1;
            }
        }
    }

    async fn try_one(&self, i: usize, method: &Method, path_query: &str, body: &Bytes, auth: Option<&HeaderValue>) -> Try {
        let up = &self.bases[i];
        let base = &up.base;
        let started = Instant::now();
        let mut req = self
            .client
            .request(method.clone(), format!("{base}{path_query}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
        let own = up.auth.as_ref().and_then(|a| HeaderValue::from_str(a.expose()).ok()).map(|mut h| {
            h.set_sensitive(true);
            h
        });
        if let Some(a) = auth.cloned().or(own) {
            req = req.header(AUTHORIZATION, a);
        }
        let res = req.send().await;
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "other"
                };
                self.metrics.upstream_error(base, kind);
                let why = format!("{base}: {kind} error");
                self.note(i, Some(&why));
                return if kind == "connect" { Try::NextSafe(why) } else { Try::NextUnsafe(why) };
            }
        };
        let status = res.status();
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let kind = if e.is_timeout() { "timeout" } else { "other" };
                self.metrics.upstream_error(base, kind);
                let why = format!("{base}: {kind} error reading the body");
                self.note(i, Some(&why));
                return Try::NextUnsafe(why);
            }
        };
        self.metrics.upstream_latency(base, started.elapsed().as_secs_f64());
        if status.is_server_error() {
            self.metrics.upstream_error(base, "status_5xx");
            let why = format!("{base}: answered {status}");
            self.note(i, Some(&why));
            return if status == StatusCode::SERVICE_UNAVAILABLE { Try::NextSafe(why) } else { Try::NextUnsafe(why) };
        }
        self.note(i, None);
        if status.is_success() {
            Try::Done(Outcome::Ok(bytes))
        } else {
            Try::Done(Outcome::Refused(status, bytes))
        }
    }

    /// Sends the request to each upstream in turn until one answers, with the caller's
    /// `auth` header (or the upstream's own).
    pub async fn forward(&self, write: bool, method: &Method, path_query: &str, body: &Bytes, auth: Option<&HeaderValue>) -> Outcome {
        let mut last = "no upstream configured".to_string();
        for i in 0..self.bases.len() {
            match self.try_one(i, method, path_query, body, auth).await {
                Try::Done(o) => return o,
                Try::NextSafe(why) => last = why,
                Try::NextUnsafe(why) => {
                    if write {
                        return Outcome::Failed(format!("{why}; not retried elsewhere: the write may have been applied"));
                    }
                    last = why;
                }
            }
        }
        Outcome::Failed(last)
    }
}
