//! The registrar adapter (Kamailio's JSON-RPC `ul.rm` / `ul.add`, the one place that
//! knows Kamailio): the group contact. mware advertises `sip:mware-g<group>@<proxy>` as
//! its Contact; the active instance binds that AoR to its own address in the registrar,
//! replacing the previous instance's binding, so requests the phones send inside a
//! dialog (a BYE, a re-INVITE) reach whichever instance is active through the proxy.

use crate::error::CallError;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// The group contact's user part.
pub fn user(group: u32) -> String {
    format!("mware-g{group}")
}

/// The Contact mware advertises: the group's AoR at the proxy.
pub fn contact(group: u32, proxy: SocketAddr) -> String {
    format!("sip:{}@{proxy}", user(group))
}

/// The AoR as the registrar keys it (`use_domain`: user@host, the host without port).
pub fn aor(group: u32, proxy: SocketAddr) -> String {
    format!("{}@{}", user(group), proxy.ip())
}

/// Binds `aor` to `target` alone (permanent: the next active instance replaces it).
pub async fn bind(rpc_url: &str, aor: &str, target: &str) -> Result<(), CallError> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| CallError::Sip(e.to_string()))?;
    // ul.rm fails when nothing is bound yet: that is fine.
    let _ = call(&http, rpc_url, "ul.rm", json!(["location", aor])).await;
    call(&http, rpc_url, "ul.add", json!(["location", aor, target, 0, 1.0, "", 0, 0, 0])).await.map(|_| ())
}

async fn call(http: &reqwest::Client, url: &str, method: &str, params: Value) -> Result<Value, CallError> {
    let body = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let r = http.post(url).json(&body).send().await.map_err(|e| CallError::Sip(format!("registrar {url}: {e}")))?;
    let v: Value = r.json().await.map_err(|e| CallError::Sip(format!("registrar {url}: {e}")))?;
    match v.get("error") {
        Some(e) => Err(CallError::Sip(format!("registrar {method}: {e}"))),
        None => Ok(v["result"].clone()),
    }
}
