//! `mware logs [-f]`: reads the site's log of the group through any member's API. The
//! first answer lists the group's members; with `-f` the tool polls with a per-member
//! cursor (`after=m10:123,m20:7`, members without one from the moment it started; each
//! poll reads forward, the first lines after the cursor, so none is skipped), and
//! when the member it asks stops answering (killed, stepped down, restarted) it moves to
//! the next member that answers, so it keeps following across a failover. Members that
//! do not answer a query are named on stderr (once per change).

use mware_client::api;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Pause between polls with `-f` (none after a full page).
const POLL: Duration = Duration::from_millis(500);
/// Lines asked for per poll with `-f` (the first ones after the cursor).
const FOLLOW_PAGE: usize = 10_000;

/// What to read.
pub(crate) struct Follow {
    /// The API asked first.
    pub api: String,
    /// The query (without `after`, `since`, `limit`), starting with `?format=json`.
    pub base: String,
    /// `since` of the first query (ms or RFC 3339), if any.
    pub since: Option<String>,
    /// The last N lines of the first query.
    pub limit: u32,
    /// Keep polling.
    pub follow: bool,
}

/// The members' APIs to try, the one that answered last first.
struct Apis {
    list: Vec<String>,
    at: usize,
}

impl Apis {
    /// GETs `url` from the current API, else from the next ones in turn.
    async fn get(&mut self, url: &str) -> anyhow::Result<Value> {
        let mut last = None;
        for i in 0..self.list.len() {
            let k = (self.at + i) % self.list.len();
            match api::get(&self.list[k], url).await {
                Ok(v) => {
                    if k != self.at {
                        eprintln!("(now reading through {})", self.list[k]);
                    }
                    self.at = k;
                    return Ok(v);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no API to ask")))
    }

    /// Adds the members' APIs the answer lists (after the ones known).
    fn learn(&mut self, v: &Value) {
        for m in v["members"].as_array().into_iter().flatten() {
            if let Some(a) = m["api"].as_str() {
                if !self.list.iter().any(|x| x.trim_end_matches('/') == a) {
                    self.list.push(a.to_string());
                }
            }
        }
    }
}

/// Reads (and with `follow`, keeps reading) the log; `print` shows each line.
pub(crate) async fn run(f: Follow, print: impl Fn(&Value)) -> anyhow::Result<()> {
    let mut apis = Apis { list: vec![f.api.clone()], at: 0 };
    let started = mware_config::now_ms();
    let mut first = format!("{}&limit={}", f.base, f.limit);
    if let Some(s) = &f.since {
        first.push_str(&format!("&since={}", mware_client::encode(s)));
    }
    let mut cursor: BTreeMap<String, u64> = BTreeMap::new();
    let mut missing_shown = String::new();
    let mut url = first;
    loop {
        let mut got = 0;
        match apis.get(&url).await {
            Ok(v) => {
                apis.learn(&v);
                got = v["lines"].as_array().map_or(0, Vec::len);
                for l in v["lines"].as_array().into_iter().flatten() {
                    if let (Some(i), Some(s)) = (l["instance"].as_str(), l["seq"].as_u64()) {
                        let c = cursor.entry(i.to_string()).or_default();
                        *c = (*c).max(s);
                    }
                    print(l);
                }
                let missing = missing_text(&v);
                if missing != missing_shown {
                    if !missing.is_empty() {
                        eprintln!("(not answering: {missing})");
                    }
                    missing_shown = missing;
                }
            }
            Err(e) if !f.follow => return Err(e),
            Err(e) => eprintln!("(no member answers: {e:#}; retrying)"),
        }
        if !f.follow {
            return Ok(());
        }
        // A full page: more is waiting, ask again at once.
        if got < FOLLOW_PAGE {
            tokio::time::sleep(POLL).await;
        }
        let after: Vec<String> = cursor.iter().map(|(i, s)| format!("{i}:{s}")).collect();
        url = format!("{}&limit={FOLLOW_PAGE}&since={started}", f.base);
        if !after.is_empty() {
            url.push_str(&format!("&after={}", mware_client::encode(&after.join(","))));
        }
    }
}

/// The members named missing in an answer, in words.
fn missing_text(v: &Value) -> String {
    let parts: Vec<String> = v["missing"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| format!("{} ({})", m["instance"].as_str().unwrap_or("?"), m["error"].as_str().unwrap_or("?")))
        .collect();
    parts.join(", ")
}
