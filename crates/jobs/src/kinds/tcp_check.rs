//! `tcp.check`: opens a TCP connection to the target and reports how long it took.
//! Parameters: none. Result: `{"connect_ms": 0.42, "peer": "192.0.2.1:22"}`.

use super::{ms, Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::Problems;
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The `tcp.check` kind.
pub struct TcpCheck;

#[async_trait]
impl Kind for TcpCheck {
    fn name(&self) -> &'static str {
        "tcp.check"
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &[]);
    }

    async fn run(&self, dest: &Dest, _: &Map<String, Value>, _: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let start = Instant::now();
        let conn = tokio::time::timeout(limit, tokio::net::TcpStream::connect(&dest.addrs[..])).await;
        match conn {
            Ok(Ok(s)) => {
                let took = start.elapsed();
                let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| target.to_string());
                Ok(json!({"connect_ms": ms(took), "peer": peer}))
            }
            Ok(Err(e)) => Err(Failure::new(format!("cannot connect to {target}: {e}"))),
            Err(_) => Err(Failure::new(format!("no connection to {target} within {} ms", limit.as_millis()))),
        }
    }
}
