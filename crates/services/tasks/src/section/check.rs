//! The check of the `service_tasks` section: every problem, each with its path.

use super::schedule;
use mware_config::{index, join, quote, Check};
use serde_json::Value;
use std::collections::HashMap;

const TASK_KEYS: &[&str] = &["name", "schedule", "command", "timeout_s", "overlap", "env", "working_dir", "history"];

/// `service_tasks`: a list of tasks.
pub(super) fn service_tasks(cx: &mut Check, v: &Value, p: &str) {
    let Some(list) = cx.list(v, p) else { return };
    let mut names = HashMap::new();
    for (i, t) in list.iter().enumerate() {
        let tp = index(p, i);
        let Some(m) = cx.object(t, &tp) else { continue };
        cx.keys(m, &tp, TASK_KEYS, &["name", "schedule", "command"]);
        cx.unique_name(m, &tp, &mut names, "task");
        if let Some(s) = cx.str(m, &tp, "schedule") {
            if let Err(e) = schedule(s) {
                cx.report(
                    &join(&tp, "schedule"),
                    format!("expected a cron expression ([second] minute hour day-of-month month day-of-week), found {}: {e}", quote(s)),
                );
            }
        }
        cx.argv(m, &tp, "command");
        cx.int(m, &tp, "timeout_s", 1, 604_800);
        cx.choice(m, &tp, "overlap", &["skip", "kill", "queue"]);
        if let Some(e) = m.get("env") {
            cx.env(e, &join(&tp, "env"));
        }
        if let Some(d) = cx.nonempty_str(m, &tp, "working_dir") {
            if d.contains('\0') {
                cx.report(&join(&tp, "working_dir"), format!("expected a directory path, found {}", quote(d)));
            }
        }
        cx.int(m, &tp, "history", 1, 1000);
    }
}
