//! The site log's store: JSON fields and level of a line, rotation within its bound and
//! queries across the files, lowered bounds applied to an open store, a follower reading
//! forward from its cursor, raw batches turned into records when read (JSON fields,
//! level, invalid UTF-8, `\r\n`), a batch cut short by a crash removed at the next
//! open, a file of the earlier format (JSON lines) rotated away and still read.

use mware_microservices::logstore::{Batch, Counters, LogLine, LogStore, Query, Stream};
use mware_microservices::LogConfig;
use regex::Regex;
use std::io::Write;

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

async fn written(store: &LogStore, n: u64) {
    while store.counters.written.get() < n {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn raw(process: &str, ts_ms: u64, lines: &[u8]) -> Batch {
    Batch {
        ts_ms,
        seq: 0,
        process: process.into(),
        instance: "i1".into(),
        stream: Stream::Stderr,
        count: lines.iter().filter(|b| **b == b'\n').count() as u32,
        lines: lines.to_vec().into(),
    }
}

#[tokio::test]
async fn raw_batches_become_records_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), &LogConfig::default(), Counters::default()).unwrap();
    store.push_batch(raw("a", 1_000, b"plain text\r\n{\"level\":\"ERROR\",\"k\":1}\n\xff\xfe bad bytes\n")).await;
    store.push_batch(raw("b", 2_000, b"from b\n")).await;
    written(&store, 4).await;
    let all = store.query(&Query { limit: 100, ..Default::default() });
    let texts: Vec<&str> = all.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(texts, ["plain text", r#"{"level":"ERROR","k":1}"#, "\u{fffd}\u{fffd} bad bytes", "from b"]);
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert!(all[..3].iter().all(|l| l.ts_ms == 1_000 && l.process == "a" && l.stream == "stderr" && l.instance == "i1"));
    assert_eq!((all[1].level.as_deref(), all[1].fields.as_ref().unwrap()["k"].as_u64()), (Some("error"), Some(1)));
    let errors = store.query(&Query { level: Some("error".into()), limit: 100, ..Default::default() });
    assert_eq!(errors.len(), 1);
    let q = |q: Query| store.query(&Query { limit: 100, ..q }).iter().map(|l| l.seq).collect::<Vec<_>>();
    assert_eq!(q(Query { process: Some("b".into()), ..Default::default() }), [4]);
    assert_eq!(q(Query { since_ms: Some(1_500), ..Default::default() }), [4]);
    assert_eq!(q(Query { until_ms: Some(1_500), q: Some(Regex::new("bad").unwrap()), ..Default::default() }), [3]);
    assert_eq!(q(Query { after_seq: Some(2), ..Default::default() }), [3, 4]);
}

#[tokio::test]
async fn a_batch_cut_short_by_a_crash_is_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), &LogConfig::default(), Counters::default()).unwrap();
    for i in 0..50 {
        store.push(LogLine::new("i1", "p", "stdout", format!("line {i}"))).await;
    }
    written(&store, 50).await;
    drop(store);
    // A crash in the middle of a write: a header and part of its lines.
    let path = dir.path().join("site.log");
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut torn = raw("p", 1, b"never finished\n");
    torn.seq = 51;
    let mut bytes = torn.header();
    bytes.extend_from_slice(b"never");
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&bytes).unwrap();
    let store = LogStore::open(dir.path(), &LogConfig::default(), Counters::default()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn batch is cut off");
    store.push(LogLine::new("i1", "p", "stdout", "after the crash".into())).await;
    written(&store, 1).await;
    let all = store.query(&Query { limit: 100, ..Default::default() });
    assert_eq!(all.len(), 51);
    assert_eq!((all[50].seq, all[50].line.as_str()), (51, "after the crash"));
}

#[tokio::test]
async fn a_file_of_the_earlier_format_is_rotated_away_and_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let old = [
        r#"{"seq":1,"ts_ms":5,"instance":"i1","process":"p","stream":"stdout","line":"old one"}"#,
        r#"{"seq":2,"ts_ms":6,"instance":"i1","process":"p","stream":"stdout","line":"{\"level\":\"warn\"}","fields":{"level":"warn"},"level":"warn"}"#,
    ];
    std::fs::write(dir.path().join("site.log"), old.join("\n") + "\n").unwrap();
    let store = LogStore::open(dir.path(), &LogConfig::default(), Counters::default()).unwrap();
    store.push(LogLine::new("i1", "p", "stdout", "new one".into())).await;
    written(&store, 1).await;
    assert!(std::fs::read_to_string(dir.path().join("site.log.1")).unwrap().starts_with('{'), "the old file kept as site.log.1");
    let all = store.query(&Query { limit: 100, ..Default::default() });
    assert_eq!(
        all.iter().map(|l| (l.seq, l.line.as_str())).collect::<Vec<_>>(),
        [(1, "old one"), (2, r#"{"level":"warn"}"#), (3, "new one")]
    );
    assert_eq!(store.query(&Query { level: Some("warn".into()), limit: 10, ..Default::default() }).len(), 1);
}
