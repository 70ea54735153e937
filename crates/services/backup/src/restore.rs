//! Restore (`mware backup restore`): fetch an archive from the storage server over SSH
//! and unpack it as it arrives into a new folder beside the one asked for, checking the
//! CRC-32 of every file and the sha256 recorded beside the archive; only then is the
//! folder renamed to its name. A PostgreSQL archive becomes a data folder that starts
//! on its own (the WAL it needs is inside; a copy taken from a standby has its
//! `standby.signal` removed, so it starts as a master). Nothing is kept in memory.
//!
//! An unpack is bounded ([`Caps`]): it stops, naming the entry, before it writes more than
//! the free space of the target's file system, more than [`MAX_RATIO`] times the archive's
//! size (a decompression bomb), or more than the operator's `--max-size`.

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

/// Most bytes unpacked per byte of archive. Deflate itself cannot pass about 1032:1; real
/// backups (tables, WAL, configuration) stay far below 200:1.
pub const MAX_RATIO: u64 = 200;
/// Below this many unpacked bytes the ratio is not held against an archive (a small
/// archive of zeroed files is harmless).
const RATIO_FREE: u64 = 64 << 20;

/// The most an unpack may write, and why that much.
#[derive(Debug, Clone)]
pub struct Caps {
    /// Bytes.
    pub max_bytes: u64,
    /// Which bound it is, in words.
    pub why: String,
}

impl Caps {
    /// The smallest of: `max_size` (the operator's), `free` bytes of the target's file
    /// system, and [`MAX_RATIO`] × `archive` bytes (at least [`RATIO_FREE`]).
    pub fn new(archive: u64, free: Option<u64>, max_size: Option<u64>) -> Caps {
        let ratio = archive.saturating_mul(MAX_RATIO).max(RATIO_FREE);
        let mut caps = Caps { max_bytes: ratio, why: format!("{MAX_RATIO} times the archive's {archive} bytes (a decompression bomb?)") };
        if let Some(f) = free.filter(|f| *f < caps.max_bytes) {
            caps = Caps { max_bytes: f, why: "the free space of the target's file system".into() };
        }
        if let Some(m) = max_size.filter(|m| *m < caps.max_bytes) {
            caps = Caps { max_bytes: m, why: "--max-size".into() };
        }
        caps
    }
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// The folder a restore into `to` fills first.
pub fn partial_of(to: &Path) -> PathBuf {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "restore".into());
    to.with_file_name(format!(".{name}.mware-restore"))
}

fn unpack(r: impl Read, dir: &Path, caps: &Caps) -> io::Result<u64> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let mut written = 0u64;
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
        let room = caps.max_bytes - written;
        let n = io::copy(&mut data.take(room), &mut f)?;
        written += n;
        if n == room && data.read(&mut [0u8])? > 0 {
            return Err(io::Error::other(format!(
                "{}: the archive unpacks to more than {} bytes ({}); refused",
                e.name, caps.max_bytes, caps.why
            )));
        }
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
    restore_capped(spec, keys, archive, to, None, progress).await
}

/// [`restore`], writing at most `max_size` bytes (besides the bounds of [`Caps`]).
pub async fn restore_capped(
    spec: &TargetSpec,
    keys: &HostKeyPolicy,
    archive: &str,
    to: &Path,
    max_size: Option<u64>,
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
    let caps = Caps::new(total, free_space(&partial), max_size);
    let bridge = SyncIoBridge::new(stdout);
    let dir = partial.clone();
    let mut progress = progress;
    let job = tokio::task::spawn_blocking(move || -> io::Result<(u64, u64, String)> {
        let mut r = HashReader { inner: bridge, sha: Sha256::new(), bytes: 0, progress: move |n| progress(n, total) };
        let entries = unpack(&mut r, &dir, &caps)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zipper::Zipper;

    fn zeros_archive(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut z = Zipper::new(Vec::new(), 6);
        for (name, len) in entries {
            z.add_file(name, 0o100600, &mut io::repeat(0).take(*len)).unwrap();
        }
        z.finish().unwrap()
    }

    #[test]
    fn the_smallest_cap_wins_and_says_which() {
        assert_eq!(Caps::new(1 << 20, None, None).max_bytes, 200 << 20);
        assert_eq!(Caps::new(1000, None, None).max_bytes, 64 << 20);
        assert!(Caps::new(1 << 20, Some(5 << 20), None).why.contains("free space"));
        let c = Caps::new(1 << 20, Some(5 << 20), Some(1 << 20));
        assert_eq!((c.max_bytes, c.why.as_str()), (1 << 20, "--max-size"));
    }

    #[test]
    fn a_bomb_stops_at_the_cap_naming_the_entry() {
        let zip = zeros_archive(&[("ok", 1000), ("bomb", 300 << 20)]);
        let caps = Caps::new(zip.len() as u64, None, None);
        assert!(caps.why.contains("decompression bomb"), "{}", caps.why);
        let dir = tempfile::tempdir().unwrap();
        let e = unpack(&zip[..], dir.path(), &caps).unwrap_err();
        assert!(e.to_string().starts_with("bomb: the archive unpacks to more than"), "{e}");
        let written = std::fs::metadata(dir.path().join("bomb")).unwrap().len();
        assert!(written <= caps.max_bytes, "{written}");
        // The same archive within a larger cap unpacks whole; exactly at the cap too.
        let exact = Caps { max_bytes: 1000 + (300 << 20), why: "test".into() };
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unpack(&zip[..], dir.path(), &exact).unwrap(), 2);
    }
}
