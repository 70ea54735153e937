//! A new active instance reconciles what a former one recorded (intent in the fenced KV)
//! with what it observes, instead of acting twice:
//! - `stale_promote_intent_with_a_live_master_promotes_nothing`: the former instance recorded
//!   "promote db2" and died before acting while db1 still runs: db1 stays the only master.
//! - `interrupted_rebuild_is_finished`: the former instance died mid-rebuild (config stashed,
//!   data folder moved, nothing started): the next instance finishes it, config kept.

mod common;
use common::*;
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Settings};
use mware_pgctl::store::{self, Intent, Persisted};
use mware_testkit::pg::PgInstance;
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

/// Writes `p` as a former active instance `mware0` would have, then leaves.
async fn former_instance_records(dir: &std::path::Path, p: Persisted) {
    let c = mware_config::Coordination { path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    let coord: Arc<dyn Coordinator> = Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.unwrap());
    let info =
        MemberInfo { instance: "mware0".into(), group: GROUP, order: 5, address: "127.0.0.1:0".into(), version: "t".into(), since_ms: 0 };
    let mut m = coord.join(info).await.unwrap();
    let epoch = tokio::time::timeout(LONG, m.wait_active()).await.unwrap().unwrap();
    let mut p = p;
    if let Some(i) = p.intent.as_mut() {
        i.epoch = epoch;
    }
    store::save(coord.as_ref(), &Fence { group: GROUP, epoch }, "main", &p, None).await.unwrap();
    m.leave().await;
}

fn name(pg: &PgInstance) -> String {
    format!("127.0.0.1:{}", pg.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_promote_intent_with_a_live_master_promotes_nothing() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let db1 = blocking(|| PgInstance::new_primary("db1")).unwrap();
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).unwrap();
    let intent = Intent { action: "promote".into(), target: name(&db2), epoch: 0, at_ms: 0 };
    former_instance_records(dir.path(), Persisted { last_master: Some(name(&db2)), intent: Some(intent) }).await;

    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 2);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    let st = ctl.wait_status(LONG, "db1 recorded and healthy", |g| g.reason.starts_with("healthy")).await;
    assert_eq!(st.last_master, Some(name(&db1)));
    tokio::time::sleep(Duration::from_secs(4)).await; // longer than promote_after
    assert!(!db1.in_recovery().unwrap(), "db1 still master");
    assert!(db2.in_recovery().unwrap(), "db2 not promoted");
    let p = store::load(ctl.coord.as_ref(), GROUP, "main").await.unwrap();
    assert_eq!(p.intent, None, "stale intent cleared");
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_rebuild_is_finished() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sshd = pinned_sshd(dir.path());
    let db1 = blocking(|| PgInstance::new_primary("db1")).unwrap();
    let db2 = blocking(|| PgInstance::new_standby("db2", &db1)).unwrap();
    // What the rebuild script had done when the former instance died: db2 stopped, its
    // config stashed, the marker set, its data folder moved away.
    blocking(|| db2.stop()).unwrap();
    let stash = db2.backups.join("mware-conf-data");
    std::fs::create_dir_all(&stash).unwrap();
    for f in ["postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"] {
        std::fs::copy(db2.data.join(f), stash.join(f)).unwrap();
    }
    std::fs::write(db2.backups.join(".mware-rebuild-data"), "").unwrap();
    std::fs::rename(&db2.data, db2.backups.join("data-interrupted")).unwrap();
    std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&db2.backups).status().unwrap();
    let intent = Intent { action: "rebuild".into(), target: name(&db2), epoch: 0, at_ms: 0 };
    former_instance_records(dir.path(), Persisted { last_master: Some(name(&db1)), intent: Some(intent) }).await;

    let g = group_json(server_json(&db1, &sshd), server_json(&db2, &sshd), 2);
    let ctl = Controller::start(dir.path(), "mware1", site(dir.path(), vec![g])).await;
    wait_until(LONG, "db2 rebuilt and streaming", || {
        db2.in_recovery().unwrap_or(false)
            && db1.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").map(|c| c != "0").unwrap_or(false)
    })
    .await;
    assert_eq!(db2.psql("SHOW cluster_name").unwrap(), "db2", "db2's own config restored from the stash");
    assert!(!db1.in_recovery().unwrap(), "db1 untouched");
    assert!(db2.backup_entries().contains(&"data-interrupted".to_string()), "earlier backup kept");
    ctl.wait_status(LONG, "intent cleared", |g| g.reason.starts_with("healthy")).await;
    let p = store::load(ctl.coord.as_ref(), GROUP, "main").await.unwrap();
    assert_eq!(p.intent, None);
    ctl.stop().await;
}
