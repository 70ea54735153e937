//! `http.request`: one plain HTTP request to the target.
//!
//! Parameters: `method` (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS; default GET),
//! `path` (default `/`), `headers` (object of strings; secret: may carry credentials),
//! `body` (string), `expect_status` (the job fails on another status), `max_body_bytes`
//! (default 65536, at most 1048576). Result: `{"status", "headers", "body", "truncated",
//! "elapsed_ms"}`; redirects are not followed. The request goes to the address the job's
//! rules judged, with the target's name in the Host header (unless `headers` sets one).

use super::{ms, Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::{found, Problems, Target};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// The `http.request` kind.
pub struct HttpRequest;

#[async_trait]
impl Kind for HttpRequest {
    fn name(&self) -> &'static str {
        "http.request"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["headers"]
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &["method", "path", "headers", "body", "expect_status", "max_body_bytes"]);
        if let Some(m) = p.opt_str(params, "method") {
            if !METHODS.contains(&m) {
                p.report("params.method", format!("expected one of {}, found {m:?}", METHODS.join(", ")));
            }
        }
        if let Some(path) = p.opt_str(params, "path") {
            if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                p.report(
                    "params.path",
                    format!("expected a path starting with '/' without spaces, found {}", found(&Value::String(path.into()))),
                );
            }
        }
        if let Some(h) = params.get("headers").filter(|v| !v.is_null()) {
            match h.as_object() {
                Some(m) => {
                    for (k, v) in m {
                        let name_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                        if !name_ok {
                            p.report(&format!("params.headers[{k:?}]"), "expected an HTTP header name (token characters), found another");
                        }
                        if v.as_str().is_none_or(|s| s.chars().any(|c| c == '\r' || c == '\n')) {
                            p.report(
                                &format!("params.headers[{k:?}]"),
                                "expected a string value on one line (not shown: headers may carry credentials)",
                            );
                        }
                    }
                }
                None => p.report("params.headers", format!("expected an object of header names to strings, found {}", found(h))),
            }
        }
        if let Some(b) = params.get("body").filter(|v| !v.is_null()) {
            if !b.is_string() {
                p.report("params.body", format!("expected a string, found {}", found(b)));
            }
        }
        p.opt_int(params, "expect_status", 100, 599);
        p.opt_int(params, "max_body_bytes", 0, 1_048_576);
    }

    async fn run(&self, dest: &Dest, params: &Map<String, Value>, env: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let method = params.get("method").and_then(Value::as_str).unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| Failure::new("params.method: not a method"))?;
        let path = params.get("path").and_then(Value::as_str).unwrap_or("/");
        // To the judged address, never the name again; the name goes in the Host header.
        let addr = *dest.addrs.first().ok_or_else(|| Failure::new(format!("cannot resolve {target}: no address")))?;
        let url = format!("http://{addr}{path}");
        let mut req = env.http.request(method, &url).timeout(limit);
        let own_host = params.get("headers").and_then(Value::as_object).is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("host")));
        if !own_host {
            req = req.header(reqwest::header::HOST, target.to_string());
        }
        if let Some(h) = params.get("headers").and_then(Value::as_object) {
            for (k, v) in h {
                req = req.header(k.as_str(), v.as_str().unwrap_or_default());
            }
        }
        if let Some(b) = params.get("body").and_then(Value::as_str) {
            req = req.body(b.to_string());
        }
        let max = params.get("max_body_bytes").and_then(Value::as_u64).unwrap_or(65_536) as usize;
        let start = Instant::now();
        let mut resp = req.send().await.map_err(|e| Failure::new(describe(&e, target, limit)))?;
        let status = resp.status().as_u16();
        let headers: Map<String, Value> = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
            .collect();
        let mut body = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = resp.chunk().await.map_err(|e| Failure::new(describe(&e, target, limit)))? {
            let room = max.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let result = json!({
            "status": status,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
            "truncated": truncated,
            "elapsed_ms": ms(start.elapsed()),
        });
        match params.get("expect_status").and_then(Value::as_u64) {
            Some(want) if want != u64::from(status) => Err(Failure { error: format!("expected status {want}, found {status}"), result }),
            _ => Ok(result),
        }
    }
}

fn describe(e: &reqwest::Error, target: &Target, limit: Duration) -> String {
    if e.is_timeout() {
        format!("no answer from {target} within {} ms", limit.as_millis())
    } else if e.is_connect() {
        format!("cannot connect to {target}")
    } else {
        // reqwest's message names the URL (host and path only: no credentials in it).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    }
}
