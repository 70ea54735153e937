//! The site log's store: JSON fields and level of a line, rotation within its bound and
//! queries across the files, lowered bounds applied to an open store, a follower reading
//! forward from its cursor.

use mware_microservices::logstore::{Counters, LogLine, LogStore, Query};
use mware_microservices::LogConfig;
use regex::Regex;

#[test]
fn json_lines_get_fields_and_level() {
    let l = LogLine::new("i1", "p", "stdout", r#"{"level":"WARN","msg":"disk","n":3}"#.into());
    assert_eq!(l.level.as_deref(), Some("warn"));
    assert_eq!(l.fields.as_ref().unwrap()["n"], 3);
    let t = LogLine::new("i1", "p", "stderr", "plain {text".into());
    assert!(t.fields.is_none() && t.level.is_none());
}

#[tokio::test]
async fn lowered_bounds_apply_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), &LogConfig { file_mb: 8, files: 4 }, Counters::default()).unwrap();
    store.set_limits(&LogConfig { file_mb: 1, files: 1 });
    for i in 0..40_000 {
        store.push(LogLine::new("i1", "p", "stdout", format!("line {i:06} {}", "x".repeat(60)))).await;
    }
    while store.counters.written.get() < 40_000 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let total: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total <= 2 * 1024 * 1024, "{total} bytes kept");
    assert!(dir.path().join("site.log.1").exists() && !dir.path().join("site.log.2").exists());
}

#[tokio::test]
async fn rotates_within_its_bound_and_queries_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), &LogConfig { file_mb: 1, files: 2 }, Counters::default()).unwrap();
    for i in 0..30_000 {
        store.push(LogLine::new("i1", if i % 2 == 0 { "even" } else { "odd" }, "stdout", format!("line {i:06} {}", "x".repeat(60)))).await;
    }
    while store.counters.written.get() < 30_000 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let total: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total <= 3 * 1024 * 1024, "{total} bytes kept");
    assert!(!dir.path().join("site.log.3").exists());
    let q = Query { process: Some("odd".into()), q: Some(Regex::new("line 029").unwrap()), limit: 5, ..Default::default() };
    let got = store.query(&q);
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|l| l.process == "odd" && l.line.starts_with("line 029")));
    assert_eq!(got.last().unwrap().line[..11], *"line 029999");
    assert_eq!(got.last().unwrap().seq, 30_000);
}

#[tokio::test]
async fn a_follower_reads_forward_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), &LogConfig::default(), Counters::default()).unwrap();
    for i in 0..100 {
        store.push(LogLine::new("i1", "p", "stdout", format!("line {i}"))).await;
    }
    while store.counters.written.get() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let page = |after: u64| store.query(&Query { after_seq: Some(after), limit: 30, first: true, ..Default::default() });
    let (a, b) = (page(10), page(40));
    assert_eq!((a.first().unwrap().seq, a.last().unwrap().seq, a.len()), (11, 40, 30));
    assert_eq!((b.first().unwrap().seq, b.last().unwrap().seq), (41, 70), "the next page starts where the first ended");
    let last = store.query(&Query { after_seq: Some(10), limit: 30, ..Default::default() });
    assert_eq!(last.first().unwrap().seq, 71, "without `first`, the last 30");
}
