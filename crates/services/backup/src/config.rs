//! The backup plan built from the role's `backup_controller` section: the schedule and
//! one target per `pgdb` entry and for the `sync_folder`, each with its storage server
//! resolved (a `storage_ssh_*` field at the target's own level wins over the top level,
//! as the two seeds place them differently).

use crate::decide::Schedule;
use crate::section::{BackupController, BackupPgdb};
use mware_config::Secret;
use mware_config::{Check, SectionConfig, SiteInfo};
use mware_ssh::{Auth, HostKeyPolicy, Target};
use serde_json::Value;

/// Deflate level when `compress_level` is not set (zlib's default, and pgBackRest's for gz).
pub const DEFAULT_LEVEL: u32 = 6;

/// Where a target's archives go.
#[derive(Clone, PartialEq)]
pub struct Storage {
    /// SSH host.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// SSH password.
    pub pwd: Secret,
    /// `storage_ssh_path`, templates unresolved; `None`: the user's home directory.
    pub path: Option<String>,
}

impl Storage {
    /// The SSH target, checked against `keys`.
    pub fn target(&self, keys: &HostKeyPolicy) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            auth: Auth::Password(self.pwd.clone()),
            host_keys: keys.clone(),
        }
    }

    /// `user@host:port`.
    pub fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// One database server of a `pgdb` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PgServer {
    /// Where pg_basebackup runs (over SSH).
    pub ssh_host: String,
    /// Where PostgreSQL listens.
    pub pg_host: String,
}

/// A PostgreSQL instance (a pair) to archive.
#[derive(Clone, PartialEq)]
pub struct PgTarget {
    /// The servers, in the file's order.
    pub servers: Vec<PgServer>,
    /// SSH port of the servers.
    pub ssh_port: u16,
    /// SSH user.
    pub ssh_user: String,
    /// SSH password.
    pub ssh_pwd: Secret,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// Replication user.
    pub replica_user: String,
    /// Its password.
    pub replica_pwd: Secret,
    /// pg_basebackup on the servers.
    pub basebackup: String,
    /// The configuration folder, when it is not the data folder.
    pub config_folder: Option<String>,
}

/// How the `:SYNC` folder is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// `rsync` over SSH into a folder `sync/`.
    Rsync,
    /// One archive `sync.zip`.
    Zip,
}

/// The `:SYNC` folder copy.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncTarget {
    /// Local folder.
    pub path: String,
    /// rsync or zip.
    pub mode: SendMode,
    /// rsync-style exclude patterns.
    pub excluded: Vec<String>,
}

/// What a target copies.
#[derive(Clone, PartialEq)]
pub enum What {
    /// A PostgreSQL instance.
    Pg(PgTarget),
    /// The `:SYNC` folder.
    Sync(SyncTarget),
}

/// One backup target.
#[derive(Clone, PartialEq)]
pub struct TargetSpec {
    /// `db1`... or the pgdb `key`; `sync` for the folder.
    pub key: String,
    /// What it copies.
    pub what: What,
    /// Where to.
    pub storage: Storage,
}

impl TargetSpec {
    /// The file (or, for rsync, folder) name in the storage folder.
    pub fn file_name(&self) -> String {
        match &self.what {
            What::Sync(s) if s.mode == SendMode::Rsync => "sync".into(),
            _ => format!("{}.zip", self.key),
        }
    }
    /// `pg` or `sync`.
    pub fn kind(&self) -> &'static str {
        match self.what {
            What::Pg(_) => "pg",
            What::Sync(_) => "sync",
        }
    }
}

/// Everything a run needs.
#[derive(Clone, PartialEq)]
pub struct Plan {
    /// When runs start.
    pub schedule: Schedule,
    /// What to copy, in order (the pgdb entries, then the :SYNC folder).
    pub targets: Vec<TargetSpec>,
    /// Deflate level.
    pub level: u32,
}

/// Builds the plan; the problems (fields the validator leaves optional but a run needs)
/// come back in words with their paths relative to `backup_controller`.
pub fn plan(b: &BackupController) -> std::result::Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    let schedule = Schedule {
        from: b.hours_interval.first().copied().unwrap_or(0) as u32,
        to: b.hours_interval.get(1).copied().unwrap_or(23) as u32,
        weekdays: if b.weekdays.is_empty() { (1..=7).collect() } else { b.weekdays.iter().map(|d| *d as u32).collect() },
    };
    let top = Level {
        host: &b.storage_ssh_host,
        port: b.storage_ssh_port,
        user: &b.storage_ssh_user,
        pwd: &b.storage_ssh_pwd,
        path: &b.storage_ssh_path,
    };
    let mut targets = Vec::new();
    for (i, d) in b.pgdb.iter().enumerate() {
        let at = format!("pgdb[{i}]");
        let key = d.key.clone().unwrap_or_else(|| format!("db{}", i + 1));
        let own = Level {
            host: &d.storage_ssh_host,
            port: d.storage_ssh_port,
            user: &d.storage_ssh_user,
            pwd: &d.storage_ssh_pwd,
            path: &d.storage_ssh_path,
        };
        let storage = storage(&own, &top, &at, &mut problems);
        if let (Some(pg), Some(storage)) = (pg_target(d, &at, &mut problems), storage) {
            targets.push(TargetSpec { key, what: What::Pg(pg), storage });
        }
    }
    if let Some(s) = &b.sync_folder {
        let own = Level {
            host: &s.storage_ssh_host,
            port: s.storage_ssh_port,
            user: &s.storage_ssh_user,
            pwd: &s.storage_ssh_pwd,
            path: &s.storage_ssh_path,
        };
        let storage = storage(&own, &top, "sync_folder", &mut problems);
        let mode = if s.send_mode.as_deref() == Some("zip") { SendMode::Zip } else { SendMode::Rsync };
        if let Some(storage) = storage {
            let what = What::Sync(SyncTarget { path: s.path().to_string(), mode, excluded: s.excluded_paths.clone() });
            targets.push(TargetSpec { key: "sync".into(), what, storage });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plan { schedule, targets, level: b.compress_level.map(u32::from).unwrap_or(DEFAULT_LEVEL).clamp(1, 9) })
}

struct Level<'a> {
    host: &'a Option<String>,
    port: Option<u16>,
    user: &'a Option<String>,
    pwd: &'a Option<Secret>,
    path: &'a Option<String>,
}

fn storage(own: &Level, top: &Level, at: &str, problems: &mut Vec<String>) -> Option<Storage> {
    let host = own.host.clone().or_else(|| top.host.clone());
    let user = own.user.clone().or_else(|| top.user.clone());
    let pwd = own.pwd.clone().or_else(|| top.pwd.clone());
    let mut missing = Vec::new();
    if host.is_none() {
        missing.push("storage_ssh_host");
    }
    if user.is_none() {
        missing.push("storage_ssh_user");
    }
    if pwd.is_none() {
        missing.push("storage_ssh_pwd");
    }
    if !missing.is_empty() {
        problems.push(format!("{at}: expected {} here or at the top of backup_controller, found none", missing.join(", ")));
        return None;
    }
    Some(Storage {
        host: host?,
        port: own.port.or(top.port).unwrap_or(22),
        user: user?,
        pwd: pwd?,
        path: own.path.clone().or_else(|| top.path.clone()),
    })
}

fn pg_target(d: &BackupPgdb, at: &str, problems: &mut Vec<String>) -> Option<PgTarget> {
    let servers: Vec<PgServer> = d
        .servers
        .iter()
        .filter_map(|s| {
            let ssh = s.ssh_host.clone().or_else(|| s.pg_host.clone())?;
            Some(PgServer { pg_host: s.pg_host.clone().unwrap_or_else(|| ssh.clone()), ssh_host: ssh })
        })
        .collect();
    let before = problems.len();
    if servers.is_empty() {
        problems.push(format!("{at}.servers: expected at least one server, found none"));
    }
    if d.pg_replica_user.is_none() {
        problems.push(format!("{at}.pg_replica_user: expected the replication user pg_basebackup logs in as, found none"));
    }
    if d.ssh_pwd.is_none() {
        problems.push(format!("{at}.ssh_pwd: expected the SSH password of the database servers, found none"));
    }
    if problems.len() > before {
        return None;
    }
    Some(PgTarget {
        servers,
        ssh_port: d.ssh_port.unwrap_or(22),
        ssh_user: d.ssh_user.clone().unwrap_or_else(|| "postgres".into()),
        ssh_pwd: d.ssh_pwd.clone()?,
        pg_port: d.pg_port.unwrap_or(5432),
        replica_user: d.pg_replica_user.clone()?,
        replica_pwd: d.pg_replica_pwd.clone().unwrap_or_else(|| Secret::new(String::new())),
        basebackup: d.pg_basebackup_command.clone().unwrap_or_else(|| "pg_basebackup".into()),
        config_folder: d.pg_config_folder.clone(),
    })
}

impl SectionConfig for BackupController {
    const KEY: &'static str = "backup_controller";
    /// The walk, then the plan a run would build: what a run needs is an error here too,
    /// so a file that validates never fails at run time for its backup section.
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        let before = cx.count();
        crate::section::walk(cx, v, at);
        if cx.count() > before {
            return;
        }
        let Ok(b) = serde_json::from_value::<BackupController>(v.clone()) else { return };
        if let Err(problems) = plan(&b) {
            for p in problems {
                match p.split_once(": ") {
                    Some((rel, msg)) => cx.report(&mware_config::join(at, rel), msg),
                    None => cx.report(at, p),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_sync_folder_without_a_path_copies_the_platform_folder() {
        // The seed's `sync_folder` (storage at the top, as in its role example).
        let b: BackupController = serde_json::from_value(serde_json::json!({
            "storage_ssh_host": "storage.local", "storage_ssh_user": "user414", "storage_ssh_pwd": "pwd414",
            "sync_folder": {"send_mode": "rsync", "excluded_paths": ["**/common/fax/*", "**/some_temp_files/*"]}
        }))
        .unwrap();
        let plan = plan(&b).unwrap_or_else(|p| panic!("{p:?}"));
        let [TargetSpec { key, what: What::Sync(s), .. }] = plan.targets.as_slice() else { panic!("one sync target expected") };
        assert_eq!((key.as_str(), s.path.as_str(), s.mode), ("sync", crate::section::DEFAULT_SYNC_PATH, SendMode::Rsync));
        assert_eq!(s.excluded, ["**/common/fax/*", "**/some_temp_files/*"]);
    }
}
