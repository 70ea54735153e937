//! The tasks service against a real embedded coordinator (SQLite) and real processes:
//! runs recorded with exit code, duration and output tails; a run left running by an
//! activity that ended without recording it is `lost` in the next one and its slot is
//! not run again; an outage is recorded as missed, not replayed; the overlap policies;
//! a timeout; manual runs; a stale epoch refused.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn sh(script: &str) -> serde_json::Value {
    json!(["/bin/sh", "-c", script])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_are_recorded_with_exit_code_duration_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    let site = site(
        json!([{"name": "hello", "schedule": "* * * * * *", "command": sh("echo hello-from-task; echo warn >&2; exit 0"), "env": {"X": "1"}}]),
    );
    let r = start(coord.clone(), fence, site, dir.path()).await;
    let runs = wait_runs(&coord, "hello", Duration::from_secs(10), |r| count(r, "ok") >= 2).await;
    let ok: Vec<_> = runs.iter().filter(|r| r.outcome.as_str() == "ok").collect();
    for run in &ok {
        assert_eq!((run.exit_code, run.instance.as_str(), run.epoch, run.trigger.as_str()), (Some(0), "mware1", fence.epoch, "schedule"));
        assert_eq!((run.stdout_tail.as_str(), run.stderr_tail.as_str()), ("hello-from-task\n", "warn\n"));
        assert!(run.duration_ms.is_some() && run.slot_ms.is_some() && run.finished_ms >= run.started_ms);
        assert_eq!(run.reason, "exited with 0");
    }
    assert_ne!(ok[0].slot_ms, ok[1].slot_ms);
    let status = r.svc.statuses();
    assert_eq!(status[0].name, "hello");
    assert!(status[0].next_ms.is_some());
    let m = r.metrics();
    assert!(m.contains("mware_tasks_runs_total{task=\"hello\",outcome=\"ok\"}"), "{m}");
    assert!(m.contains("mware_tasks_last_success_timestamp_seconds{task=\"hello\"}"), "{m}");
    assert!(m.contains("mware_tasks_run_duration_seconds_count{task=\"hello\"}"), "{m}");
    r.stop().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("task_hello.log")).unwrap();
    assert!(log.contains("stdout: hello-from-task") && log.contains("stderr: warn") && log.contains("ok: exited with 0"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_activity_died_is_lost_and_its_slot_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let site = site(json!([{"name": "long", "schedule": "*/2 * * * * *", "command": ["sleep", "30"]}]));
    let (m1, fence1) = become_active(&coord).await;
    let r = start(coord.clone(), fence1, site.clone(), dir.path()).await;
    let before = wait_runs(&coord, "long", Duration::from_secs(10), |r| count(r, "running") == 1).await;
    let lost_slot = before.iter().find(|r| r.outcome.as_str() == "running").unwrap().slot_ms;
    // The instance dies: nothing of it records the end (its process group is killed).
    r.task.abort();
    let _ = r.task.await;
    m1.leave().await;
    let (_m2, fence2) = become_active(&coord).await;
    assert!(fence2.epoch > fence1.epoch);
    let r2 = start(coord.clone(), fence2, site, dir.path()).await;
    let runs = wait_runs(&coord, "long", Duration::from_secs(10), |r| count(r, "lost") == 1 && count(r, "running") == 1).await;
    let lost = runs.iter().find(|r| r.outcome.as_str() == "lost").unwrap();
    assert_eq!((lost.slot_ms, lost.epoch), (lost_slot, fence1.epoch));
    assert!(lost.reason.contains("mware1 (epoch") && lost.reason.contains("not run again"), "{}", lost.reason);
    let again = runs.iter().filter(|r| r.slot_ms == lost_slot && r.outcome.as_str() != "lost").count();
    assert_eq!(again, 0, "the lost slot ran again: {runs:#?}");
    let now = runs.iter().find(|r| r.outcome.as_str() == "running").unwrap();
    assert_eq!(now.epoch, fence2.epoch);
    r2.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_recorded_as_missed_and_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    // The task was last dealt with a minute ago (then no instance was active).
    let st = mware_tasks::store::TaskState { last_slot_ms: mware_coord::now_ms() - 60_000, queued_ms: None, next_id: 1 };
    mware_tasks::store::save(coord.as_ref(), &fence, "tick", &st, &[], 20, None).await.unwrap();
    let site = site(json!([{"name": "tick", "schedule": "* * * * * *", "command": ["true"]}]));
    let r = start(coord.clone(), fence, site, dir.path()).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let runs = runs(&coord, "tick").await;
    let missed: Vec<_> = runs.iter().filter(|r| r.outcome.as_str() == "missed").collect();
    assert_eq!(missed.len(), 1, "one record for the whole stretch: {runs:#?}");
    assert!(missed[0].reason.contains("slots from") && missed[0].reason.contains("were missed"), "{}", missed[0].reason);
    let ran = count(&runs, "ok") + count(&runs, "running");
    assert!((1..=4).contains(&ran), "{ran} runs in 2.5 s: the outage was replayed? {runs:#?}");
    let m = r.metrics();
    let line = m.lines().find(|l| l.starts_with("mware_tasks_runs_total{task=\"tick\",outcome=\"missed\"}")).unwrap().to_string();
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((54.0..=60.0).contains(&n), "{line}");
    r.stop().await.unwrap();
}

/// Asserts that no two runs of `runs` were in progress at once.
fn no_overlap(runs: &[mware_tasks::Run]) {
    let mut spans: Vec<(u64, u64)> = runs.iter().filter_map(|r| Some((r.started_ms?, r.finished_ms.unwrap_or(u64::MAX)))).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "two runs overlapped: {w:?}\n{runs:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_records_skipped_slots_and_never_runs_two() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    let site = site(json!([{"name": "slow", "schedule": "* * * * * *", "command": ["sleep", "2.5"], "overlap": "skip"}]));
    let r = start(coord.clone(), fence, site, dir.path()).await;
    let runs = wait_runs(&coord, "slow", Duration::from_secs(15), |r| count(r, "ok") >= 2 && count(r, "skipped") >= 2).await;
    no_overlap(&runs);
    let skipped = runs.iter().find(|r| r.outcome.as_str() == "skipped").unwrap();
    assert!(skipped.reason.contains("is still in progress (overlap skip)"), "{}", skipped.reason);
    r.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_kill_ends_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    let site = site(json!([{"name": "hog", "schedule": "*/2 * * * * *", "command": ["sleep", "30"], "overlap": "kill"}]));
    let r = start(coord.clone(), fence, site, dir.path()).await;
    let runs = wait_runs(&coord, "hog", Duration::from_secs(15), |r| count(r, "killed") >= 2).await;
    no_overlap(&runs);
    let killed = runs.iter().find(|r| r.outcome.as_str() == "killed").unwrap();
    assert!(killed.reason.starts_with("ended by the slot of") && killed.reason.contains("(overlap kill)"), "{}", killed.reason);
    assert_eq!(killed.signal, Some(15));
    r.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_queue_runs_the_waiting_slot_after() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    let site = site(json!([{"name": "q", "schedule": "*/2 * * * * *", "command": ["sleep", "2.6"], "overlap": "queue"}]));
    let r = start(coord.clone(), fence, site, dir.path()).await;
    let runs = wait_runs(&coord, "q", Duration::from_secs(20), |r| {
        r.iter().filter(|x| x.trigger == "queue" && x.outcome.as_str() == "ok").count() >= 1
    })
    .await;
    no_overlap(&runs);
    r.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_a_timeout_and_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (_m, fence) = become_active(&coord).await;
    let site = site(json!([{"name": "once", "schedule": "0 0 1 1 *", "command": ["sleep", "30"], "timeout_s": 1}]));
    let r = start(coord.clone(), fence, site, dir.path()).await;
    let (id, what) = r.svc.run_now("once").await.unwrap().unwrap();
    assert_eq!(what, "started on request");
    let refused = r.svc.run_now("once").await.unwrap().unwrap_err();
    assert!(refused.starts_with("refused: run"), "{refused}");
    let runs = wait_runs(&coord, "once", Duration::from_secs(10), |r| count(r, "timeout") == 1).await;
    let t = runs.iter().find(|x| x.id == id).unwrap();
    assert_eq!((t.trigger.as_str(), t.slot_ms), ("manual", None));
    assert!(t.reason.starts_with("timed out after 1 s; its process group was killed"), "{}", t.reason);
    assert!(t.duration_ms.unwrap() < 2500, "{t:?}");
    assert!(r.svc.run_now("nope").await.is_none());
    r.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let coord = open(dir.path()).await;
    let (m1, old) = become_active(&coord).await;
    m1.leave().await;
    let (_m2, _new) = become_active(&coord).await;
    let marker = dir.path().join("ran");
    let site = site(json!([{"name": "t", "schedule": "* * * * * *", "command": ["touch", marker.display().to_string()]}]));
    let mut registry = prometheus_client::registry::Registry::default();
    let svc = mware_tasks::TasksService::with_log_dir(&mut registry, dir.path());
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(site));
    let ctx = mware_host::ServiceContext::new("tasks", "mware1", old, coord.clone(), rx, Default::default(), Default::default());
    use mware_host::Service;
    let e = tokio::time::timeout(Duration::from_secs(10), svc.run(ctx)).await.expect("ends").unwrap_err();
    assert!(e.to_string().contains("stale"), "{e}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "a run started with a stale epoch");
}
