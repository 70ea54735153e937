//! SIP OPTIONS checks of the static contacts: every `options.interval_ms` each contact
//! gets an OPTIONS (32 at once); any final answer means reachable. The result,
//! since when it holds and the last answer are kept per account for status and the API;
//! a change is logged and announced as a monitoring item (`calltracking/static <aor>`).

use crate::handle::Inner;
use crate::section::CallTracking;
use crate::store::Stored;
use mware_host::{EventKind, Events};
use std::time::Duration;

/// Checks every live entry once, concurrently; records and announces changes.
pub async fn check_all(inner: &Inner, cfg: &CallTracking, entries: &[Stored], events: &Events) {
    let timeout = Duration::from_millis(cfg.options.timeout_ms.into());
    let live: Vec<Stored> = entries.iter().filter(|e| !e.removing).cloned().collect();
    let mut results = Vec::with_capacity(live.len());
    for chunk in live.chunks(32) {
        let mut set = tokio::task::JoinSet::new();
        for e in chunk.iter().cloned() {
            set.spawn(async move {
                let r = match mware_sip::addr::contact_target(&e.contact) {
                    Ok(target) => mware_sip::options::ping(target, &e.contact, timeout)
                        .await
                        .map(|a| format!("{} {} in {} ms", a.code, a.reason, a.rtt_ms))
                        .map_err(|e| e.to_string()),
                    Err(msg) => Err(msg),
                };
                (e, r)
            });
        }
        results.extend(set.join_all().await);
    }
    let now = mware_config::now_ms();
    for (e, r) in results {
        let reachable = r.is_ok();
        let answer = r.unwrap_or_else(|e| e);
        if inner.record_probe(&e.key(), reachable, answer.clone(), now) {
            let aor = e.aor();
            let (state, reason) = if reachable {
                ("ok", format!("{aor} at {} answers OPTIONS: {answer}", e.contact))
            } else {
                ("warning", format!("{aor} at {} is unreachable: {answer}", e.contact))
            };
            tracing::info!(aor, contact = %e.contact, reachable, answer, "static contact");
            events.publish(EventKind::Item { source: "calltracking".into(), item: format!("static {aor}"), state: state.into(), reason });
        }
    }
    let up = inner.probes().values().filter(|p| p.reachable == Some(true)).count();
    inner.metrics.reachable.set(up as i64);
}
