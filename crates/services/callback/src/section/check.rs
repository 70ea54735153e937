//! The walk of the `callback` section: every problem with its path, expected and found.

use crate::party;
use mware_config::{join, quote, Check};
use serde_json::Value;
use std::collections::HashMap;

const KEYS: &[&str] =
    &["enabled", "attempts", "retry_after_s", "answer_timeout_s", "busy_retry_s", "max_open_per_domain", "keep_finished_s", "queues"];
const QUEUE_KEYS: &[&str] = &["name", "operators", "attempts", "retry_after_s", "answer_timeout_s"];
const OP_KEYS: &[&str] = &["uri", "section"];

/// `callback`.
pub(super) fn callback(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, KEYS, &[]);
    cx.bool(m, p, "enabled");
    tries(cx, m, p);
    cx.int(m, p, "busy_retry_s", 1, 3600);
    cx.int(m, p, "max_open_per_domain", 1, 10_000_000);
    cx.int(m, p, "keep_finished_s", 60, 31_536_000);
    let Some(qs) = m.get("queues") else { return };
    let qp = join(p, "queues");
    let Some(list) = cx.list(qs, &qp) else { return };
    let mut names = HashMap::new();
    for (i, q) in list.iter().enumerate() {
        queue(cx, q, &mware_config::index(&qp, i), &mut names);
    }
}

/// The attempt settings a section and a queue share.
fn tries(cx: &mut Check, m: &serde_json::Map<String, Value>, p: &str) {
    cx.int(m, p, "attempts", 1, 100);
    cx.int(m, p, "retry_after_s", 1, 86_400);
    cx.int(m, p, "answer_timeout_s", 1, 30);
}

fn queue(cx: &mut Check, v: &Value, p: &str, names: &mut HashMap<String, String>) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, QUEUE_KEYS, &["name", "operators"]);
    cx.unique_name(m, p, names, "queue");
    tries(cx, m, p);
    let Some(ops) = m.get("operators") else { return };
    let op = join(p, "operators");
    let Some(list) = cx.list(ops, &op) else { return };
    if list.is_empty() {
        cx.report(&op, "expected at least one operator, found an empty list");
    }
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, o) in list.iter().enumerate() {
        let ip = mware_config::index(&op, i);
        let Some(om) = cx.object(o, &ip) else { continue };
        cx.keys(om, &ip, OP_KEYS, &["uri", "section"]);
        if let Some(uri) = cx.str(om, &ip, "uri") {
            if let Err(e) = party::check(uri) {
                cx.report(&join(&ip, "uri"), e);
            } else if let Some(first) = seen.get(uri) {
                cx.report(
                    &join(&ip, "uri"),
                    format!("expected an operator listed once in the queue, found {} again (first at {first})", quote(uri)),
                );
            } else {
                seen.insert(uri.to_string(), join(&ip, "uri"));
            }
        }
        if let Some(s) = cx.str(om, &ip, "section") {
            if let Err(e) = party::section_name(s) {
                cx.report(&join(&ip, "section"), e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let mut cx = mware_config::Check::new(mware_config::Severity::Error);
        super::callback(&mut cx, &v, "callback");
        cx.into_problems().into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect()
    }

    #[test]
    fn a_good_section_passes_and_parses() {
        let v = json!({"attempts": 2, "queues": [{"name": "sales", "retry_after_s": 5,
            "operators": [{"uri": "sip:1001@example.test", "section": "op-1001"}, {"uri": "1002", "section": "op-1002"}]}]});
        assert!(problems(v.clone()).is_empty(), "{:?}", problems(v));
        let c: super::super::CallbackConfig = serde_json::from_value(v).unwrap();
        let pol = c.policy(Some("sales"));
        assert_eq!((pol.attempts, pol.retry_after_ms, pol.answer_timeout_s), (2, 5000, 20));
        assert_eq!(c.operator("1002").unwrap().1.section, "op-1002");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let p = problems(json!({"attempts": 0, "bogus": 1, "queues": [
            {"name": "a b", "operators": []},
            {"name": "q", "answer_timeout_s": 31, "operators": [{"uri": "sip:x@y\r\nVia: z", "section": ""}, {"uri": "1", "section": "s", "x": 1}]},
            {"name": "q", "operators": [{"uri": "1", "section": "s"}, {"uri": "1", "section": "s"}]}]}));
        let want = [
            "callback.attempts: expected an integer from 1 to 100",
            "callback.bogus: expected one of the keys",
            "callback.queues[0].name: expected a queue name",
            "callback.queues[0].operators: expected at least one operator",
            "callback.queues[1].answer_timeout_s: expected an integer from 1 to 30",
            "callback.queues[1].operators[0].uri: expected no control characters",
            "callback.queues[1].operators[0].section: expected a critical section name",
            "callback.queues[1].operators[1].x: expected one of the keys",
            "callback.queues[2].name: expected a queue name unique in the group",
            "callback.queues[2].operators[1].uri: expected an operator listed once",
        ];
        for w in want {
            assert!(p.iter().any(|x| x.starts_with(w)), "{w} not in {p:#?}");
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
    }
}
