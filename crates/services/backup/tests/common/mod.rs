//! Test harness: a real PostgreSQL 15 pair from the testkit, real sshd servers (one as
//! the database servers' SSH, one as the storage server, both logging in as the
//! `postgres` OS user with a password, host keys pinned), a storage folder owned by
//! `postgres`, the real embedded coordinator with an active membership, and the backup
//! runner or service on top.
#![allow(dead_code)]

use mware_backup::{BackupService, Plan};
use mware_backup::{Live, Runner};
use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_host::{Events, Service, ServiceContext};
use mware_ssh::HostKeyPolicy;
use mware_testkit::pg::{PgInstance, REPLICA_PASSWORD, REPLICA_USER};
use mware_testkit::sshd::{Sshd, SSH_PASSWORD, SSH_USER};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const GROUP: u32 = 1;

type Task = tokio::task::JoinHandle<anyhow::Result<()>>;
type Registry = prometheus_client::registry::Registry;
type SiteTx = watch::Sender<Arc<Site>>;
use mware_host::StatusHandle;

/// Every secret the tests use: none may show in a status, an error or a log.
pub fn secrets() -> Vec<&'static str> {
    vec![SSH_PASSWORD, REPLICA_PASSWORD]
}

pub fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
}

/// A folder owned by `postgres` (the storage user) in /tmp.
pub fn postgres_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").expect("temp dir");
    chown_postgres(d.path());
    d
}

pub fn chown_postgres(p: &Path) {
    let st = std::process::Command::new("chown").arg("-R").arg("postgres:postgres").arg(p).status().expect("chown");
    assert!(st.success());
}

/// The test site's known_hosts file.
pub fn known_hosts(dir: &Path) -> PathBuf {
    dir.join("known_hosts")
}

/// Starts sshd and pins its host key.
pub fn pinned_sshd(dir: &Path) -> Sshd {
    let sshd = Sshd::start().expect("sshd");
    sshd.pin_in(&known_hosts(dir)).expect("pin the sshd host key");
    sshd
}

/// A pgdb entry for servers at `pg_hosts` (all on `pg_port`), reached over `db_sshd`.
pub fn pgdb_json(key: &str, pg_hosts: &[&str], pg_port: u16, db_sshd: &Sshd) -> Value {
    json!({
        "key": key,
        "servers": pg_hosts.iter().map(|h| json!({"ssh_host": "127.0.0.1", "pg_host": h})).collect::<Vec<_>>(),
        "ssh_port": db_sshd.port, "ssh_user": SSH_USER, "ssh_pwd": SSH_PASSWORD,
        "pg_port": pg_port, "pg_replica_user": REPLICA_USER, "pg_replica_pwd": REPLICA_PASSWORD,
        "pg_basebackup_command": mware_testkit::pg::bin("pg_basebackup")
    })
}

/// `backup_controller` with the storage at `storage` (sshd port, absolute path template).
pub fn backup_json(storage_sshd: &Sshd, path: &str, pgdb: Vec<Value>, sync: Option<Value>) -> Value {
    let mut b = json!({
        "hours_interval": [0, 23], "weekdays": [1, 2, 3, 4, 5, 6, 7],
        "storage_ssh_host": "127.0.0.1", "storage_ssh_port": storage_sshd.port, "storage_ssh_user": SSH_USER,
        "storage_ssh_pwd": SSH_PASSWORD, "storage_ssh_path": path, "pgdb": pgdb
    });
    if let Some(s) = sync {
        b["sync_folder"] = s;
    }
    b
}

/// The site file (JSON) with one instance carrying `backup`.
pub fn site_json(dir: &Path, backup: Value) -> Value {
    json!({
        "site": "t",
        "coordination": {"backend": "embedded", "path": dir.join("coord.sqlite").display().to_string()},
        "ssh": {"known_hosts": known_hosts(dir).display().to_string()},
        "servers": [{"name": "srv1", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "lo", "group": GROUP, "order": 10, "backup_controller": backup}
        ]}]
    })
}

pub fn site(dir: &Path, backup: Value) -> Site {
    let v = site_json(dir, backup);
    let text = serde_json::to_string(&v).unwrap();
    match mware_config::validate(&text, &mware_backup::plugin().sections) {
        Ok(ok) => ok.site,
        Err(problems) => panic!("site invalid: {problems:?}"),
    }
}

pub fn plan_of(site: &Site) -> Plan {
    let role = site.instance("mware1").expect("instance").role;
    mware_backup::plan(&role.section::<mware_backup::BackupController>().expect("backup_controller")).expect("plan")
}

/// An active membership on the embedded coordinator.
pub struct Active {
    pub coord: Arc<dyn Coordinator>,
    pub membership: Option<Membership>,
    pub fence: Fence,
}

impl Active {
    pub async fn join(dir: &Path) -> Active {
        let c =
            Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Coordination::default() };
        let coord: Arc<dyn Coordinator> =
            Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.expect("coordinator"));
        let info = MemberInfo {
            instance: "mware1".into(),
            group: GROUP,
            order: 10,
            address: "127.0.0.1:0".into(),
            version: "test".into(),
            since_ms: mware_coord::now_ms(),
        };
        let mut m = coord.join(info).await.expect("join");
        let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("active in time").expect("activity");
        Active { coord, membership: Some(m), fence: Fence { group: GROUP, epoch } }
    }

    pub fn runner(&self, site: &Site) -> Runner {
        let mut reg = prometheus_client::registry::Registry::default();
        Runner {
            coord: self.coord.clone(),
            fence: self.fence,
            instance: "mware1".into(),
            keys: HostKeyPolicy::from(&site.ssh),
            live: Live::default(),
            metrics: mware_backup_metrics(&mut reg),
            events: Events::detached(),
        }
    }

    /// Runs the service with `site` until the returned token is cancelled.
    pub fn service(&self, site: Site) -> (BackupService, CancellationToken, SiteTx, Task, Registry) {
        let (svc, cancel, tx, task, reg, _) = self.service_ctx(site);
        (svc, cancel, tx, task, reg)
    }

    /// [`Active::service`], with the service's status handle and event channel too.
    pub fn service_ctx(&self, site: Site) -> (BackupService, CancellationToken, SiteTx, Task, Registry, (StatusHandle, Events)) {
        let mut reg = Registry::default();
        let svc = BackupService::new(&mut reg);
        let (tx, rx) = watch::channel(Arc::new(site));
        let cancel = CancellationToken::new();
        let lease = self.membership.as_ref().unwrap().lease.clone();
        let ctx = ServiceContext::new("backup", "mware1", self.fence, self.coord.clone(), rx, cancel.clone(), lease);
        let handles = (ctx.status.clone(), ctx.events.clone());
        let s2 = svc.clone();
        let task = tokio::spawn(async move { s2.run(ctx).await });
        (svc, cancel, tx, task, reg, handles)
    }

    pub async fn leave(mut self) {
        if let Some(m) = self.membership.take() {
            m.leave().await;
        }
    }
}

fn mware_backup_metrics(reg: &mut prometheus_client::registry::Registry) -> mware_backup::Metrics {
    mware_backup::Metrics::new(reg)
}

/// Files under `dir`, relative, sorted (folders end with `/`).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, rel: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(format!("{}/", r.display()));
                walk(base, &r, out);
            } else {
                out.push(r.display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, Path::new(""), &mut v);
    v.sort();
    v
}

/// Runs `f` off the async workers.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Waits until `f` holds, up to `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Log lines of the test binary, kept for assertions (no secret may be in them).
pub static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;
impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_writer(|| LogWriter).with_ansi(false).with_env_filter("info").try_init();
}

pub fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// `sha256sum` of a file.
pub fn sha256(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(p).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_string()
}

/// A table `t` with `rows` rows of `bytes_per_row` pseudo-random text on `pg`.
pub fn fill(pg: &PgInstance, rows: u64, bytes_per_row: u32) {
    pg.psql(&format!(
        "CREATE TABLE t AS SELECT g AS id, (SELECT string_agg(md5(g::text || ':' || i::text), '') FROM generate_series(1, {}) i) AS v FROM generate_series(1, {rows}) g",
        bytes_per_row.div_ceil(32)
    ))
    .expect("fill");
}

/// The seed gives one `pg_port` for both servers of a pair: the testkit's standby (its own
/// port on 127.0.0.1) is moved to `addr`:`port` (e.g. 127.0.0.2 and the primary's port),
/// with pg_hba lines for the loopback range. Call after the standby has what it needs
/// (the testkit's `psql` on it uses its old port).
pub fn move_standby(standby: &PgInstance, addr: &str, port: u16) {
    standby.stop().expect("stop standby");
    let mut conf = std::fs::OpenOptions::new().append(true).open(standby.data.join("postgresql.conf")).unwrap();
    std::io::Write::write_all(&mut conf, format!("\nlisten_addresses = '{addr}'\nport = {port}\n").as_bytes()).unwrap();
    let mut hba = std::fs::OpenOptions::new().append(true).open(standby.data.join("pg_hba.conf")).unwrap();
    std::io::Write::write_all(
        &mut hba,
        b"host replication replica 127.0.0.0/8 scram-sha-256\nhost all replica 127.0.0.0/8 scram-sha-256\n",
    )
    .unwrap();
    standby.start().expect("start standby");
}

/// `(pg_is_in_recovery, wal receiver status)` of the server at `addr:port`, as postgres.
pub fn role_at(addr: &str, port: u16) -> String {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(mware_testkit::pg::bin("psql"))
        .args(["-h", addr, "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-At", "-c"])
        .arg("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)")
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
