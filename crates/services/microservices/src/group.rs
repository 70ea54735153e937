//! The site's log across the group: a query asks every member chosen (this instance
//! from its own store, the others through their own `GET /api/v1/logs?scope=instance`,
//! each within [`PEER_TIMEOUT`]), then merges the answers by time. A member that does not
//! answer in time, or answers with an error, is named in [`Gathered::missing`] with the
//! reason, never skipped in silence.

use crate::logstore::{LogLine, LogStore, Query};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest wait for one member's answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// One member of the group to ask.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Its instance name.
    pub instance: String,
    /// Its API (`http://ADDR:PORT`), or `None` when its iface has no address.
    pub api: Option<String>,
}

/// A member that gave no answer, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    /// Its instance name.
    pub instance: String,
    /// What went wrong (no address, timed out, refused, an error status).
    pub error: String,
}

/// What the members answered, merged.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The matching lines, oldest first (the last `limit` across the members).
    pub lines: Vec<LogLine>,
    /// Lines lost to the store (full disk), summed over the members that answered.
    pub lost: u64,
    /// The members that did not answer.
    pub missing: Vec<Missing>,
}

/// What to ask one member: its own query (cursor and all), and the query string that
/// says it to a peer.
pub struct Ask {
    /// The member.
    pub member: Member,
    /// The query for its store (when it is this instance).
    pub query: Query,
    /// The same query as URL parameters (for a peer), without `scope` and `format`.
    pub params: Vec<(String, String)>,
}

/// Asks every member of `asks` at once (`me` from `store`), merges by time and keeps
/// the last `limit` lines (the first, with `first`: a follower gets the rest next time).
pub async fn gather(me: &str, store: Option<LogStore>, asks: Vec<Ask>, limit: usize, first: bool) -> Gathered {
    let client = reqwest::Client::builder().connect_timeout(PEER_TIMEOUT).timeout(PEER_TIMEOUT).build();
    let tasks = asks.into_iter().map(|a| {
        let (store, client) = (store.clone(), client.as_ref().ok().cloned());
        let me = a.member.instance == me;
        async move {
            let name = a.member.instance.clone();
            let r = if me { local(store, a.query).await } else { remote(client, &a).await };
            (name, r)
        }
    });
    let answers = futures_join(tasks).await;
    let mut g = Gathered::default();
    for (instance, r) in answers {
        match r {
            Ok((lines, lost)) => {
                g.lines.extend(lines);
                g.lost += lost;
            }
            Err(error) => g.missing.push(Missing { instance, error }),
        }
    }
    g.lines.sort_by(|a, b| (a.ts_ms, &a.instance, a.seq).cmp(&(b.ts_ms, &b.instance, b.seq)));
    if first {
        g.lines.truncate(limit.max(1));
    } else {
        let cut = g.lines.len().saturating_sub(limit.max(1));
        g.lines.drain(..cut);
    }
    g
}

/// Runs the futures at once and returns their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

async fn local(store: Option<LogStore>, q: Query) -> Result<(Vec<LogLine>, u64), String> {
    let store = store.ok_or_else(|| "the site log is not kept on this instance".to_string())?;
    let lost = store.counters.lost.get();
    tokio::task::spawn_blocking(move || store.query(&q)).await.map(|l| (l, lost)).map_err(|e| format!("the log query failed: {e}"))
}

async fn remote(client: Option<reqwest::Client>, a: &Ask) -> Result<(Vec<LogLine>, u64), String> {
    let client = client.ok_or_else(|| "no HTTP client".to_string())?;
    let api = a.member.api.as_deref().ok_or_else(|| "its iface has no address".to_string())?;
    let url = format!("{api}{}", crate::paths::LOGS);
    let mut params = a.params.clone();
    params.push(("scope".into(), "instance".into()));
    params.push(("format".into(), "json".into()));
    let resp = client.get(&url).query(&params).send().await.map_err(|e| describe(&e))?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| format!("{status}: expected a JSON answer: {}", describe(&e)))?;
    if !status.is_success() {
        return Err(format!("{status}: {}", v["error"].as_str().unwrap_or("no error message")));
    }
    let lines = serde_json::from_value::<Vec<LogLine>>(v["lines"].clone()).map_err(|e| format!("lines: expected log lines, found {e}"))?;
    Ok((lines, v["lost"].as_u64().unwrap_or(0)))
}

/// An HTTP failure in words (timeout or connection refused first).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {} ms", PEER_TIMEOUT.as_millis())
    } else if e.is_connect() {
        "cannot connect (down or unreachable)".to_string()
    } else {
        let mut s = e.to_string();
        s.truncate(200);
        s
    }
}

/// The members of `instance`'s group, in failover order.
pub fn members(site: &mware_config::Site, instance: &str) -> Vec<Member> {
    let Some(me) = site.instance(instance) else {
        return vec![Member { instance: instance.to_string(), api: None }];
    };
    site.group_members(me.role.group)
        .into_iter()
        .map(|p| Member { instance: p.role.name.clone(), api: p.api_addr().map(|a| format!("http://{a}")) })
        .collect()
}

/// A per-member cursor `m10:123,m20:7` (or a bare `123`: the asked instance's) parsed.
pub fn cursor(me: &str, v: &str) -> Result<BTreeMap<String, u64>, String> {
    if let Ok(n) = v.parse::<u64>() {
        return Ok(BTreeMap::from([(me.to_string(), n)]));
    }
    let mut out = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (name, seq) = part.split_once(':').ok_or_else(|| format!("{part:?} is not INSTANCE:SEQ"))?;
        let seq = seq.parse::<u64>().map_err(|_| format!("{part:?}: the seq is not an integer"))?;
        out.insert(name.to_string(), seq);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_bare_and_per_instance() {
        assert_eq!(cursor("m10", "5").unwrap(), BTreeMap::from([("m10".to_string(), 5)]));
        assert_eq!(cursor("m10", "m20:7,m30:0").unwrap(), BTreeMap::from([("m20".to_string(), 7), ("m30".to_string(), 0)]));
        assert!(cursor("m10", "m20=7").unwrap_err().contains("INSTANCE:SEQ"));
        assert!(cursor("m10", "m20:x").unwrap_err().contains("not an integer"));
    }

    #[tokio::test]
    async fn a_member_that_does_not_answer_is_named_with_the_reason() {
        // A port nothing listens on (bound, then dropped).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let asks = vec![
            Ask {
                member: Member { instance: "gone".into(), api: Some(format!("http://127.0.0.1:{port}")) },
                query: Query::default(),
                params: vec![],
            },
            Ask { member: Member { instance: "noaddr".into(), api: None }, query: Query::default(), params: vec![] },
        ];
        let g = gather("me", None, asks, 10, false).await;
        assert!(g.lines.is_empty());
        let got: Vec<(&str, &str)> = g.missing.iter().map(|m| (m.instance.as_str(), m.error.as_str())).collect();
        assert_eq!(got, vec![("gone", "cannot connect (down or unreachable)"), ("noaddr", "its iface has no address")]);
    }
}
