//! The `:SYNC` folder copy. `rsync` mode: the real rsync over OpenSSH into a temporary
//! folder beside the last copy (unchanged files hard-linked from it with `--link-dest`),
//! put in place only when rsync succeeded. The password reaches ssh through an askpass
//! helper that reads it from the environment of that one child (never a command line),
//! and ssh checks the host key against the site's known_hosts file. `zip` mode: one zip
//! streamed like the PostgreSQL archives. Both leave out `excluded_paths` (rsync's glob
//! meaning, see [`crate::glob`]).

use crate::config::{Storage, SyncTarget};
use crate::error::{BackupError, Result};
use crate::glob::{excluded, Pattern};
use crate::upload::{zip_to_storage, Sent, ZipOut};
use mware_ssh::{sh_quote, HostKeyPolicy, Session};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The askpass helper: prints the password it finds in its environment.
const ASKPASS: &str = "#!/bin/sh\nprintf '%s\\n' \"$MWARE_ASKPASS_PASSWORD\"\n";

/// What rsync reported.
#[derive(Debug, Clone, Default)]
pub struct RsyncStats {
    /// Bytes of the files in the copy.
    pub total: u64,
    /// Bytes sent over the wire.
    pub sent: u64,
}

fn stat(out: &str, label: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|r| r.trim_start_matches(':').split_whitespace().next().map(|n| n.replace(',', "")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The ssh command rsync runs (`-e`): host key checked against `known_hosts`, password
/// only, no local keys, no user config.
pub fn ssh_command(port: u16, known_hosts: &Path) -> String {
    format!(
        "ssh -F /dev/null -p {port} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
         -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1 \
         -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o LogLevel=ERROR",
        sh_quote(&known_hosts.display().to_string())
    )
}

/// rsyncs the folder into `dir/tmp` on the storage server (hard links from `dir/sync`).
pub async fn rsync(s: &SyncTarget, storage: &Storage, keys: &HostKeyPolicy, dir: &str, tmp: &str) -> Result<RsyncStats> {
    let what = format!("rsync of {} to {}", s.path, storage.label());
    let helper_dir = tempfile::Builder::new().prefix("mware-askpass-").tempdir().map_err(|e| BackupError::io(&what, e))?;
    let helper = helper_dir.path().join("askpass");
    std::fs::write(&helper, ASKPASS)
        .and_then(|_| std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| BackupError::io(&what, e))?;
    let known = std::path::absolute(&keys.known_hosts).unwrap_or_else(|_| keys.known_hosts.clone());
    let mut cmd = tokio::process::Command::new("rsync");
    cmd.args(["-a", "--delete", "--protect-args", "--stats", "--link-dest=../sync"]);
    for p in &s.excluded {
        cmd.arg(format!("--exclude={p}"));
    }
    cmd.arg("-e").arg(ssh_command(storage.port, &known));
    cmd.arg(format!("{}/", s.path.trim_end_matches('/')));
    cmd.arg(format!("{}@{}:{}/", storage.user, storage.host, crate::storage::join(dir, tmp)));
    cmd.env("SSH_ASKPASS", &helper)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "mware:0")
        .env("MWARE_ASKPASS_PASSWORD", storage.pwd.expose());
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| BackupError::io(format!("{what}: starting rsync"), e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.trim().lines().collect();
        let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
        return Err(BackupError::Remote { what, found: format!("{}: {tail}", out.status) });
    }
    Ok(RsyncStats { total: stat(&stdout, "Total file size"), sent: stat(&stdout, "Total bytes sent") })
}

/// Zips the folder into `tmp` (a path in `dir`) on `storage`.
pub async fn zip(s: &SyncTarget, storage: &Session, dir: &str, tmp: &str, level: u32, progress: Arc<AtomicU64>) -> Result<Sent> {
    let root = PathBuf::from(&s.path);
    if !root.is_dir() {
        return Err(BackupError::Config(format!("sync_folder.path: expected a folder at {}, found none", s.path)));
    }
    let patterns: Vec<Pattern> = s.excluded.iter().map(|p| Pattern::new(p)).collect();
    zip_to_storage(storage, dir, tmp, level, progress, move |z| walk(z, &root, "", &patterns)).await
}

/// Adds the folder `base/rel` to the zip, depth first, in name order, without what the
/// patterns exclude. Symbolic links are left out.
fn walk(z: &mut ZipOut, base: &Path, rel: &str, patterns: &[Pattern]) -> io::Result<()> {
    let mut items: Vec<_> = std::fs::read_dir(base.join(rel))?.collect::<io::Result<Vec<_>>>()?;
    items.sort_by_key(|e| e.file_name());
    for e in items {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let ft = e.file_type()?;
        if excluded(patterns, &child, ft.is_dir()) {
            continue;
        }
        let meta = e.metadata()?;
        let mode = meta.permissions().mode() & 0o7777;
        z.set_mtime(std::os::unix::fs::MetadataExt::mtime(&meta));
        if ft.is_dir() {
            z.add_dir(&child, mode)?;
            walk(z, base, &child, patterns)?;
        } else if ft.is_file() {
            let mut f = std::fs::File::open(e.path())?;
            z.add_file(&child, mode, &mut f)?;
        }
    }
    Ok(())
}
