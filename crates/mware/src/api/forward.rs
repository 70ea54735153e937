//! Forwarding: any instance answers a call for any group. A call that a route declares
//! to be about a group (its own, or the group owning a domain, see `policy`) is
//! served here only if this instance is the active one of that group; otherwise it
//! is proxied once to that group's active instance, or answered 503 with the reason
//! when the group has no active instance.
//!
//! A request body larger than the forwarder takes ([`MAX_BODY`]) is the client's fault,
//! not the active instance's: it is answered 413, not retryable, and the cached active
//! instance is kept. Only a failure to reach that instance drops the cache.
//!
//! The client's address goes with the call in [`CLIENT_ADDR`] (whatever a client sent in
//! that header is dropped first), so the serving instance limits the real client, not the
//! forwarder; the serving instance believes it only from the instance the call names in
//! [`FORWARDED_BY`], connecting from that instance's own address ([`client_addr`]).

use super::{AppState, LeaderCache};
use crate::metrics::ForwardLabels;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use mware_host::ApiError;
use mware_host::ClientAddr;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Header set on forwarded requests; a forwarded request is never forwarded again.
pub const FORWARDED_BY: &str = "x-mware-forwarded-by";
/// Header carrying the client's address on a forwarded request (set by the forwarder,
/// believed only from a member of the site: [`client_addr`]).
pub const CLIENT_ADDR: &str = "x-mware-client-addr";
const LEADER_CACHE: Duration = Duration::from_millis(250);
/// The largest request body forwarded (an active instance refuses more anyway).
pub const MAX_BODY: usize = 8 << 20;

/// Why a call could not be proxied.
#[derive(Debug)]
enum ProxyError {
    /// The client's body is larger than [`MAX_BODY`] (413, not retryable).
    TooLarge(Option<u64>),
    /// The client's body could not be read (400, not retryable).
    Body(String),
    /// The active instance did not answer (503, retryable; the cache is dropped).
    Upstream(String),
}

/// Where a domain's call goes.
#[derive(Debug, PartialEq)]
pub enum Target {
    /// Serve here.
    Local,
    /// Proxy to this instance at this address.
    Remote(String, String),
    /// Nobody can serve it now: status and reason.
    Refuse(u32, String),
}

/// A JSON error answer naming the group.
pub fn json_err(code: StatusCode, msg: String, group: Option<u32>) -> Response {
    ApiError::new(code, msg).retryable(code == StatusCode::SERVICE_UNAVAILABLE).detail("group", group).into_response()
}

/// Counts a forwarding outcome.
pub fn count(st: &AppState, outcome: &str) {
    st.0.metrics.forwarded.get_or_create(&ForwardLabels { outcome: outcome.into() }).inc();
}

/// Proxies `req` to `name` at `addr`, the active instance of `group`; 503 naming them when
/// it does not answer.
pub async fn proxy_to(st: &AppState, group: u32, name: &str, addr: &str, req: Request) -> Response {
    match proxy(st, req, addr).await {
        Ok(r) => {
            count(st, "proxied");
            r
        }
        Err(ProxyError::TooLarge(found)) => {
            count(st, "too_large");
            let found = found.map_or("more".to_string(), |n| format!("{n} bytes"));
            let msg = format!("request body: expected at most {MAX_BODY} bytes, found {found}");
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, msg).into_response()
        }
        Err(ProxyError::Body(e)) => {
            count(st, "bad_body");
            ApiError::bad_request(format!("request body: {e}")).into_response()
        }
        Err(ProxyError::Upstream(e)) => {
            st.0.leaders.lock().unwrap_or_else(|e| e.into_inner()).remove(&group);
            count(st, "error");
            json_err(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("group {group}: its active instance {name} at {addr} did not answer: {e}"),
                Some(group),
            )
        }
    }
}

/// Where a call for `group` goes from this instance (`forwarded`: it was forwarded here
/// already, so it is never forwarded again).
pub async fn target(st: &AppState, group: u32, forwarded: bool) -> Target {
    let site = st.0.site.borrow().clone();
    let me = site.instance(&st.0.instance);
    let my_group = me.map(|p| p.role.group);
    let active = st.0.activity.borrow().epoch().is_some();
    if my_group == Some(group) && active {
        return Target::Local;
    }
    if forwarded {
        return Target::Refuse(group, format!("group {group}: {} is not its active instance (any more); retry", st.0.instance));
    }
    match leader_addr(st, group).await {
        Ok(Some((name, addr))) if name != st.0.instance => Target::Remote(name, addr),
        Ok(Some(_)) => Target::Refuse(group, format!("group {group}: this instance is taking over or stepping down; retry")),
        Ok(None) => Target::Refuse(group, format!("group {group} has no active instance")),
        Err(e) => Target::Refuse(group, format!("group {group}: cannot tell its active instance: {e}")),
    }
}

async fn leader_addr(st: &AppState, group: u32) -> Result<Option<(String, String)>, mware_coord::CoordError> {
    if let Some((at, v)) = st.0.leaders.lock().unwrap_or_else(|e| e.into_inner()).get(&group) {
        if at.elapsed() < LEADER_CACHE {
            return Ok(v.clone());
        }
    }
    st.0.metrics.leader_lookups.inc();
    let views = st.0.coord.cluster().await?;
    let site = st.0.site.borrow().clone();
    let mut cache = st.0.leaders.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let mut found = None;
    for v in &views {
        let addr = v.leader.as_ref().and_then(|l| {
            let from_site = site.instance(&l.instance).and_then(|p| p.api_addr());
            let from_member = v.members.iter().find(|m| m.info.instance == l.instance).map(|m| m.info.address.clone());
            from_site.or(from_member).map(|a| (l.instance.clone(), a))
        });
        if v.group == group {
            found = addr.clone();
        }
        remember(&mut cache, v.group, now, addr);
    }
    remember(&mut cache, group, now, found.clone());
    Ok(found)
}

/// Caches a group's active instance for [`LEADER_CACHE`]; a group seen without one is
/// not cached: that is a failover in progress (about 0.1 s when a process died), and the
/// next call must find the new active instance at once rather than a stale "none".
fn remember(cache: &mut HashMap<u32, LeaderCache>, group: u32, now: Instant, addr: Option<(String, String)>) {
    match addr {
        Some(a) => {
            cache.insert(group, (now, Some(a)));
        }
        None => {
            cache.remove(&group);
        }
    }
}

fn hop_by_hop(h: &HeaderName) -> bool {
    matches!(
        h.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te" | "trailer" | "host" | "content-length"
    )
}

/// The address of the client of `req`: the [`CLIENT_ADDR`] header when the call was
/// forwarded by an instance of `site` (named in [`FORWARDED_BY`]) whose own address is
/// the TCP peer's, else the TCP peer's address (`None` when the server gave none). A
/// client cannot move its own limits by sending these headers: from any other address
/// they are ignored.
pub fn client_addr(site: &mware_config::Site, headers: &axum::http::HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
    let peer = peer?;
    let forwarder = headers.get(FORWARDED_BY).and_then(|v| v.to_str().ok());
    let claimed = headers.get(CLIENT_ADDR).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<IpAddr>().ok());
    let (Some(forwarder), Some(claimed)) = (forwarder, claimed) else { return Some(peer) };
    let member_addr = site.instance(forwarder).and_then(|p| p.server.ifaces.get(&p.role.iface)).and_then(|a| a.parse::<IpAddr>().ok());
    let from_member = member_addr.is_some_and(|a| canonical_ip(a) == canonical_ip(peer));
    Some(if from_member { claimed } else { peer })
}

/// An IPv4 address seen as IPv4-mapped IPv6 compares as the IPv4 one.
fn canonical_ip(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        v4 => v4,
    }
}

/// The whole body, at most [`MAX_BODY`] bytes: a declared length beyond it is refused
/// before a byte is read.
async fn read_body(headers: &axum::http::HeaderMap, body: Body) -> Result<axum::body::Bytes, ProxyError> {
    use futures::StreamExt;
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ProxyError::TooLarge(declared));
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ProxyError::Body(e.to_string()))?;
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ProxyError::TooLarge(None));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.into())
}

async fn proxy(st: &AppState, req: Request, addr: &str) -> Result<Response, ProxyError> {
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("http://{addr}{pq}");
    let body = read_body(&parts.headers, body).await?;
    let up = |e: String| ProxyError::Upstream(e);
    let mut rb = st.0.http.request(parts.method.clone(), &url);
    for (k, v) in parts.headers.iter().filter(|(k, _)| !hop_by_hop(k) && k.as_str() != CLIENT_ADDR && k.as_str() != FORWARDED_BY) {
        rb = rb.header(k, v);
    }
    if let Some(ClientAddr(a)) = parts.extensions.get::<ClientAddr>() {
        rb = rb.header(CLIENT_ADDR, a.to_string());
    }
    let resp = rb.header(FORWARDED_BY, st.0.instance.as_str()).body(body).send().await.map_err(|e| up(e.to_string()))?;
    let mut out = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers().iter().filter(|(k, _)| !hop_by_hop(k)) {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await.map_err(|e| up(e.to_string()))?;
    out.body(Body::from(bytes)).map_err(|e| up(e.to_string()))
}
