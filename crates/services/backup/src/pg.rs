//! PostgreSQL archives: pick the server to copy (a standby that streams, else the
//! master), run `pg_basebackup -D - -F tar -X fetch` on it over SSH (the replica
//! password on its stdin), and turn its tar stream into zip entries on the fly, after
//! the files of `pg_config_folder` (under `pg_config/`) when one is set. The result is
//! a data folder with the WAL it needs: it starts on its own. The probe connects through
//! `mware-pg` (TLS when the server offers it).

use crate::config::{PgServer, PgTarget};
use crate::error::{BackupError, Result};
use crate::upload::{zip_to_storage, Sent, ZipOut};
use mware_ssh::{command_line, sh_quote, Auth, Exec, HostKeyPolicy, Session, Target};
use std::io::{self, BufReader, Read};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::SyncIoBridge;

/// Limit for one probe of a server.
const PROBE: Duration = Duration::from_secs(10);
/// Largest configuration folder taken (it is read into memory first).
const MAX_CONFIG: u64 = 16 << 20;

/// What a probe saw of one server.
#[derive(Debug, Clone)]
pub struct Seen {
    /// In recovery (a standby).
    pub standby: bool,
    /// Its WAL receiver streams.
    pub streaming: bool,
}

async fn probe(t: &PgTarget, s: &PgServer) -> std::result::Result<Seen, String> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&s.pg_host)
        .port(t.pg_port)
        .user(&t.replica_user)
        .password(t.replica_pwd.expose())
        .dbname("postgres")
        .application_name("mware-backup")
        .connect_timeout(PROBE);
    let work = async {
        // The pgdb entry has no TLS settings: libpq's default, TLS when the server offers it.
        let (client, conn) = mware_pg::connect_config(cfg, mware_pg::SslMode::Prefer, None, "backup").await.map_err(|e| match e {
            mware_pg::ConnectError::Db(e) => describe(&e),
            mware_pg::ConnectError::Setup(e) => e.to_string(),
        })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let row = client
            .query_one("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver LIMIT 1)", &[])
            .await
            .map_err(|e| describe(&e))?;
        let status: Option<String> = row.get(1);
        Ok(Seen { standby: row.get(0), streaming: status.as_deref() == Some("streaming") })
    };
    tokio::time::timeout(PROBE, work).await.unwrap_or_else(|_| Err(format!("no answer within {} s", PROBE.as_secs())))
}

/// A PostgreSQL error in words, with the server's own message (never the password).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s = format!("{s}: {x}");
                src = x.source();
            }
            s
        }
    }
}

/// The server to copy and why: a streaming standby first, else a master.
pub async fn choose(key: &str, t: &PgTarget) -> Result<(PgServer, String)> {
    let seen = probe_all(t).await;
    let name = |s: &PgServer| format!("{}:{}", s.pg_host, t.pg_port);
    if let Some((s, _)) = seen.iter().find(|(_, r)| matches!(r, Ok(x) if x.standby && x.streaming)) {
        return Ok((s.clone(), format!("standby {} (streaming)", name(s))));
    }
    if let Some((s, _)) = seen.iter().find(|(_, r)| matches!(r, Ok(x) if !x.standby)) {
        let why = if seen.len() > 1 { "master (no standby streams)" } else { "master" };
        return Ok((s.clone(), format!("{why} {}", name(s))));
    }
    let reasons = seen
        .iter()
        .map(|(s, r)| match r {
            Ok(_) => format!("{}: a standby that does not stream", name(s)),
            Err(e) => format!("{}: {e}", name(s)),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(BackupError::NoSource { target: key.into(), user: t.replica_user.clone(), reasons })
}

/// Probes every server at once.
async fn probe_all(t: &PgTarget) -> Vec<(PgServer, std::result::Result<Seen, String>)> {
    let seen = futures::future::join_all(t.servers.iter().map(|s| probe(t, s))).await;
    t.servers.iter().cloned().zip(seen).collect()
}

fn script(t: &PgTarget, s: &PgServer) -> String {
    let port = t.pg_port.to_string();
    let vars: String = [("PGB", t.basebackup.as_str()), ("H", s.pg_host.as_str()), ("P", port.as_str()), ("U", t.replica_user.as_str())]
        .iter()
        .map(|(k, v)| format!("{k}={}\n", sh_quote(v)))
        .collect();
    format!(
        "set -eu\nIFS= read -r PGPASSWORD || true\nexport PGPASSWORD\n{vars}\
         command -v \"$PGB\" >/dev/null 2>&1 || {{ echo \"pg_basebackup command not found: $PGB\" >&2; exit 20; }}\n\
         exec \"$PGB\" -h \"$H\" -p \"$P\" -U \"$U\" -D - -F tar -X fetch -c fast -w -l mware-backup\n"
    )
}

/// Reads the configuration folder as a tar (small: read whole, at most [`MAX_CONFIG`]).
async fn config_tar(db: &Session, dir: &str) -> Result<Vec<u8>> {
    let what = format!("reading pg_config_folder {dir} on {}", db.label());
    let Exec { stdin, stdout, exit } = db
        .exec(&command_line(&["tar", "-C", dir, "-cf", "-", "."]))
        .await
        .map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?;
    drop(stdin);
    let mut buf = Vec::new();
    stdout.take(MAX_CONFIG + 1).read_to_end(&mut buf).await.map_err(|e| BackupError::io(&what, e))?;
    let ended = exit.wait().await.map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?;
    if !ended.success() {
        return Err(BackupError::Remote { what, found: ended.describe() });
    }
    if buf.len() as u64 > MAX_CONFIG {
        return Err(BackupError::Config(format!("{what}: expected at most {MAX_CONFIG} bytes, found more")));
    }
    Ok(buf)
}

/// Adds every entry of the tar in `r` to the zip, under `prefix`.
fn tar_into_zip(r: impl Read, z: &mut ZipOut, prefix: &str) -> io::Result<()> {
    let mut ar = tar::Archive::new(r);
    for e in ar.entries()? {
        let mut e = e?;
        let path = format!("{prefix}{}", e.path()?.to_string_lossy());
        let mode = e.header().mode().unwrap_or(0o600) & 0o7777;
        if let Ok(t) = e.header().mtime() {
            z.set_mtime(t as i64);
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                if !path.trim_matches(['.', '/']).is_empty() {
                    z.add_dir(&path, mode)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                z.add_file(&path, mode, &mut e)?;
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: expected files and folders, found a tar entry of type {other:?} (a tablespace link?)"),
                ));
            }
        }
    }
    Ok(())
}

/// Archives target `key` into `tmp` (a path in `dir`) on `storage`; returns what was sent and the
/// source server in words.
#[allow(clippy::too_many_arguments)]
pub async fn archive(
    key: &str,
    t: &PgTarget,
    keys: &HostKeyPolicy,
    storage: &Session,
    dir: &str,
    tmp: &str,
    level: u32,
    progress: Arc<AtomicU64>,
) -> Result<(Sent, String)> {
    let (src, source) = choose(key, t).await?;
    let target = Target {
        host: src.ssh_host.clone(),
        port: t.ssh_port,
        user: t.ssh_user.clone(),
        auth: Auth::Password(t.ssh_pwd.clone()),
        host_keys: keys.clone(),
    };
    let db = target.connect().await.map_err(|e| BackupError::Ssh { what: format!("target {key}: database server"), source: e })?;
    let config = match &t.config_folder {
        Some(d) => Some(config_tar(&db, d).await?),
        None => None,
    };
    let what = format!("pg_basebackup on {} ({source})", db.label());
    let Exec { mut stdin, stdout, exit } =
        db.exec(&command_line(&["sh", "-c", &script(t, &src)])).await.map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?;
    let line = format!("{}\n", t.replica_pwd.expose());
    stdin.write_all(line.as_bytes()).await.map_err(|e| BackupError::io(&what, e))?;
    stdin.shutdown().await.map_err(|e| BackupError::io(&what, e))?;
    let reader = SyncIoBridge::new(stdout);
    let sent = zip_to_storage(storage, dir, tmp, level, progress, move |z| {
        if let Some(c) = config {
            tar_into_zip(&c[..], z, "pg_config/")?;
        }
        tar_into_zip(BufReader::with_capacity(256 * 1024, reader), z, "")
    })
    .await;
    // pg_basebackup's own failure is the root cause when it has one.
    let ended = match &sent {
        Ok(_) => Some(exit.wait().await.map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?),
        Err(_) => tokio::time::timeout(Duration::from_secs(3), exit.wait()).await.ok().and_then(|r| r.ok()),
    };
    db.close().await;
    match ended {
        Some(x) if !x.success() => Err(BackupError::Remote { what, found: x.describe() }),
        _ => sent.map(|s| (s, source)),
    }
}
