//! Files and folders mware keeps are its own: they hold secrets (the pushed site file in
//! the embedded coordinator's SQLite and its WAL, device job parameters such as SNMP
//! communities, SIP credentials in the realtime cache, task output). Every daemon sets
//! the umask with [`restrict_umask`] at start, so what it creates is 0600 (files) and
//! 0700 (folders); a file or folder that is already there is checked where it is opened
//! ([`private_file`], [`private_sqlite`], [`private_dir`], [`open_append`]): a mode that lets the group or
//! others in is tightened to the owner's bits, with a warning naming the path and both
//! modes. What to do is decided by [`decide`], without touching the disk.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The bits no one but the owner may have.
const OTHERS: u32 = 0o077;

/// Folders never changed even when a state file is put straight in them: the system's
/// shared ones (a sticky folder such as `/tmp` is left alone too).
const SHARED_DIRS: &[&str] =
    &["/", "/etc", "/home", "/opt", "/run", "/srv", "/tmp", "/usr", "/usr/local", "/var", "/var/lib", "/var/log", "/var/tmp"];

/// Sets the process umask to 0077: every file created from now on is at most 0600 and
/// every folder 0700. Call it first thing in a daemon.
pub fn restrict_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(OTHERS as nix::libc::mode_t));
}

/// What to do with an existing path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Already private.
    Keep,
    /// Set this mode (the owner's bits of the old one).
    Tighten(u32),
    /// Wider than private, but a shared system folder: left as it is, with a warning.
    LeaveShared,
}

/// The decision for a path of `mode` (permission bits); `shared` for a system folder or a
/// sticky one.
pub fn decide(mode: u32, shared: bool) -> Action {
    let mode = mode & 0o7777;
    if mode & OTHERS == 0 {
        Action::Keep
    } else if shared {
        Action::LeaveShared
    } else {
        Action::Tighten(mode & 0o700)
    }
}

/// Tightens an existing file or folder (nothing when it does not exist).
fn check(path: &Path, is_dir: bool) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // A symlink's own mode means nothing; its target is checked where it is opened.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    let shared = is_dir && (mode & 0o1000 != 0 || is_shared(path));
    match decide(mode, shared) {
        Action::Keep => Ok(()),
        Action::LeaveShared => {
            tracing::warn!(path = %path.display(), mode = %format!("{mode:04o}"), "a state file is kept in a shared system folder: its folder is left as it is; give mware a folder of its own");
            Ok(())
        }
        Action::Tighten(new) => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(new))?;
            tracing::warn!(
                path = %path.display(),
                old_mode = %format!("{mode:04o}"),
                new_mode = %format!("{new:04o}"),
                "{} was readable by others than its owner: tightened",
                if is_dir { "a folder mware keeps its state in" } else { "a file mware keeps" }
            );
            Ok(())
        }
    }
}

fn is_shared(path: &Path) -> bool {
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    SHARED_DIRS.iter().any(|d| full == Path::new(d))
}

/// An existing file made private (0600 or narrower); a missing one is fine.
pub fn private_file(path: &Path) -> io::Result<()> {
    check(path, false)
}

/// A SQLite database and the files SQLite keeps beside it (`-wal`, `-shm`, `-journal`),
/// made private where they exist.
pub fn private_sqlite(path: &Path) -> io::Result<()> {
    check(path, false)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        check(Path::new(&p), false)?;
    }
    Ok(())
}

/// Creates `dir` (and missing parents) 0700, or makes an existing one private.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    check(dir, true)
}

/// [`private_dir`] for the folder holding `file` (none for a bare file name).
pub fn private_parent(file: &Path) -> io::Result<()> {
    match file.parent() {
        Some(d) => private_dir(d),
        None => Ok(()),
    }
}

/// Opens `path` for appending (a log), creating it 0600 and its folder 0700, or making
/// existing ones private.
pub fn open_append(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    private_parent(path)?;
    private_file(path)?;
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(0o600, false), Action::Keep);
        assert_eq!(decide(0o400, false), Action::Keep);
        assert_eq!(decide(0o644, false), Action::Tighten(0o600));
        assert_eq!(decide(0o755, false), Action::Tighten(0o700));
        assert_eq!(decide(0o100666, false), Action::Tighten(0o600), "file type bits are ignored");
        assert_eq!(decide(0o1777, true), Action::LeaveShared);
    }

    #[test]
    fn wide_files_and_folders_are_tightened_missing_ones_are_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("coord.sqlite");
        for p in [db.clone(), dir.join("coord.sqlite-wal")] {
            std::fs::write(&p, b"x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        private_parent(&db).unwrap();
        private_sqlite(&db).unwrap();
        assert_eq!((mode(&dir), mode(&db), mode(&dir.join("coord.sqlite-wal"))), (0o700, 0o600, 0o600));
        assert!(!dir.join("coord.sqlite-shm").exists(), "a missing companion is not created");
        let fresh = tmp.path().join("a/b");
        private_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        private_file(&tmp.path().join("none")).unwrap();
        let log = tmp.path().join("logs/task_x.log");
        open_append(&log).unwrap();
        assert_eq!((mode(&log), mode(&tmp.path().join("logs"))), (0o600, 0o700));
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_append(&log).unwrap();
        assert_eq!(mode(&log), 0o600, "an existing wide log is tightened at open");
    }
}
