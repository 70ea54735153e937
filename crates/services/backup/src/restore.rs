//! Restore (`mware backup restore`): fetch an archive from the storage server over SSH
//! and unpack it as it arrives into a new folder beside the one asked for, checking the
//! CRC-32 of every file and the sha256 recorded beside the archive; only then is the
//! folder renamed to its name. A PostgreSQL archive becomes a data folder that starts
//! on its own (the WAL it needs is inside; a copy taken from a standby has its
//! `standby.signal` removed, so it starts as a master). Nothing is kept in memory.

use crate::config::{TargetSpec, What};
use crate::error::{BackupError, Result};
use crate::unzip;
use mware_ssh::{Exec, HostKeyPolicy};
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tokio_util::io::SyncIoBridge;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Entries unpacked.
    pub entries: u64,
    /// Archive bytes read.
    pub bytes: u64,
    /// The archive's sha256.
    pub sha256: String,
    /// Whether a recorded sha256 was there to compare with.
    pub checked: bool,
    /// Files removed after unpacking (signal files).
    pub removed: Vec<String>,
}

struct HashReader<R: Read, F: FnMut(u64)> {
    inner: R,
    sha: Sha256,
    bytes: u64,
    progress: F,
}

impl<R: Read, F: FnMut(u64)> Read for HashReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        (self.progress)(self.bytes);
        Ok(n)
    }
}

/// The folder a restore into `to` fills first.
pub fn partial_of(to: &Path) -> PathBuf {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "restore".into());
    to.with_file_name(format!(".{name}.mware-restore"))
}

fn unpack(r: impl Read, dir: &Path) -> io::Result<u64> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    unzip::read_all(&mut br, |e, data| {
        let path = dir.join(&e.name);
        if e.dir {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&path)?;
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        }
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        io::copy(data, &mut f)?;
        f.flush()
    })
}

/// Fetches `archive` (a path on `spec`'s storage server, as `mware backup list` shows
/// it) and unpacks it into `to`, which must not exist yet. `progress(read, total)` is
/// called as bytes arrive.
pub async fn restore(
    spec: &TargetSpec,
    keys: &HostKeyPolicy,
    archive: &str,
    to: &Path,
    progress: impl FnMut(u64, u64) + Send + 'static,
) -> Result<Restored> {
    if to.exists() {
        return Err(BackupError::Config(format!("--to: expected a folder that does not exist yet, found {}", to.display())));
    }
    let partial = partial_of(to);
    let what = format!("restoring {archive} from {}", spec.storage.label());
    let s = spec.storage.target(keys).connect().await.map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?;
    let (total, recorded) = crate::storage::describe(&s, archive).await?;
    let Exec { stdin, stdout, exit } = crate::storage::fetch(&s, archive).await?;
    drop(stdin);
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::DirBuilder::new().mode(0o700).create(&partial).map_err(|e| BackupError::io(format!("creating {}", partial.display()), e))?;
    let bridge = SyncIoBridge::new(stdout);
    let dir = partial.clone();
    let mut progress = progress;
    let job = tokio::task::spawn_blocking(move || -> io::Result<(u64, u64, String)> {
        let mut r = HashReader { inner: bridge, sha: Sha256::new(), bytes: 0, progress: move |n| progress(n, total) };
        let entries = unpack(&mut r, &dir)?;
        io::copy(&mut r, &mut io::sink())?;
        Ok((entries, r.bytes, crate::upload::hex(&r.sha.finalize())))
    });
    let unpacked = job.await.map_err(|e| BackupError::io(&what, e))?;
    let ended = exit.wait().await.map_err(|e| BackupError::Ssh { what: what.clone(), source: e })?;
    s.close().await;
    let fail = |e: BackupError| {
        let _ = std::fs::remove_dir_all(&partial);
        e
    };
    if !ended.success() {
        return Err(fail(BackupError::Remote { what, found: ended.describe() }));
    }
    let (entries, bytes, sha256) = unpacked.map_err(|e| fail(BackupError::io(&what, e)))?;
    if let Some(r) = &recorded {
        if *r != sha256 {
            return Err(fail(BackupError::Checksum {
                file: archive.into(),
                server: spec.storage.label(),
                expected: r.clone(),
                found: sha256,
            }));
        }
    }
    let mut removed = Vec::new();
    if matches!(spec.what, What::Pg(_)) {
        for f in ["standby.signal", "recovery.signal", "postmaster.pid"] {
            if std::fs::remove_file(partial.join(f)).is_ok() {
                removed.push(f.to_string());
            }
        }
    }
    std::fs::rename(&partial, to).map_err(|e| fail(BackupError::io(format!("renaming {} to {}", partial.display(), to.display()), e)))?;
    Ok(Restored { entries, bytes, sha256, checked: recorded.is_some(), removed })
}
