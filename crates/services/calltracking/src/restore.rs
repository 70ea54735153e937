//! The live calls read back from the core when an activity starts (after a failover the
//! next instance serves the same calls: from the core, not from memory). Kamailio's
//! dialog module lists them (`dlg.list`) with the variables the reference config sets
//! (`id`, `f`, `t`, `d`); a core without the dialog module has none to give.

use crate::calls::{Dialog, Kind};
use crate::tracker::Tracker;
use mware_sip::Registrar;

/// Reads the core's dialogs into `tracker`; a failure is logged (events rebuild them).
pub async fn from_core(tracker: &Tracker, registrar: &Registrar) {
    match registrar.call_raw("dlg.list", serde_json::json!([])).await {
        Ok(v) => {
            let dialogs = parse(&v);
            tracing::info!(calls = dialogs.len(), "live calls read back from the core");
            tracker.restore(dialogs);
        }
        Err(e) => tracing::info!(error = %e, "no live calls from the core (dlg.list)"),
    }
}

/// The dialogs of a `dlg.list` answer that carry the reference config's variables.
pub fn parse(v: &serde_json::Value) -> Vec<Dialog> {
    let list = match v {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    list.iter()
        .filter_map(|d| {
            let var = |k: &str| -> Option<String> { d["variables"].as_array()?.iter().find_map(|x| x[k].as_str().map(String::from)) };
            let state = d["state"].as_u64()?;
            // Kamailio: 1 unconfirmed, 2 early (ringing), 3 confirmed (answered, no ACK
            // yet), 4 confirmed, 5 deleted.
            let kind = match state {
                1 | 2 => Kind::Ringing,
                3 | 4 => Kind::Answered,
                _ => return None,
            };
            let start_s = d["start_ts"].as_u64().filter(|s| *s > 0);
            let init_s = d["init_ts"].as_u64().unwrap_or(0);
            Some(Dialog {
                id: var("id")?,
                domain: var("d")?.to_ascii_lowercase(),
                from: var("f")?,
                to: var("t")?,
                state: kind,
                since_ms: init_s * 1000,
                answered_ms: start_s.filter(|_| kind == Kind::Answered).map(|s| s * 1000),
                rang: vec![],
                answered_by: None,
                queue: var("q").filter(|q| !q.is_empty()),
            })
        })
        .collect()
}
