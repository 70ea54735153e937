//! The storage server's side, over SSH: upload a stream under a temporary name, check
//! its sha256 there and rename it into place (the previous copy stays until then), put a
//! finished rsync folder in place, remove leftovers, list archives, fetch one. Every
//! value in a command line is shell-quoted.

use crate::error::{BackupError, Result};
use mware_ssh::{command_line, sh_quote, Exec, Session};
use std::time::Duration;

/// Limit for the short commands (mkdir, sha256sum of a big file, mv, rm, find).
const SHORT: Duration = Duration::from_secs(600);

/// `dir/name`, with `.` meaning the storage user's home folder.
pub fn join(dir: &str, name: &str) -> String {
    if dir == "." || dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

/// The temporary name of `name` during run `run_id`.
pub fn temp_name(name: &str, run_id: &str) -> String {
    format!(".{name}.mware-tmp-{run_id}")
}

async fn run(s: &Session, what: &str, cmd: &str) -> Result<String> {
    let out = s.run(cmd, None, SHORT).await.map_err(|e| BackupError::Ssh { what: what.into(), source: e })?;
    if out.code != 0 {
        return Err(BackupError::Remote {
            what: format!("{what} on {}", s.label()),
            found: format!("exit code {}: {}", out.code, out.detail()),
        });
    }
    Ok(out.stdout)
}

/// Starts `mkdir -p dir && cat > tmp`: write the archive to the returned stdin.
pub async fn begin_upload(s: &Session, dir: &str, tmp: &str) -> Result<Exec> {
    let cmd = format!("{} && {} > {}", command_line(&["mkdir", "-p", "--", dir]), "cat", sh_quote(tmp));
    s.exec(&cmd).await.map_err(|e| BackupError::Ssh { what: "starting the upload".into(), source: e })
}

/// Computes the sha256 of `tmp` on the storage server; when it is `sha`, flushes it to
/// disk and renames it to `final_path` (with `final_path.sha256` beside it); else removes
/// it and fails.
pub async fn commit(s: &Session, tmp: &str, final_path: &str, sha: &str) -> Result<()> {
    let out = run(s, "sha256sum of the upload", &command_line(&["sha256sum", "--", tmp])).await?;
    let found = out.split_whitespace().next().unwrap_or("").to_string();
    if found != sha {
        let _ = remove(s, tmp).await;
        return Err(BackupError::Checksum { file: tmp.into(), server: s.label().into(), expected: sha.into(), found });
    }
    let name = final_path.rsplit('/').next().unwrap_or(final_path);
    let sum_tmp = format!("{tmp}.sha256");
    let cmd = format!(
        "sync -- {t} && mv -f -- {t} {f} && printf '%s  %s\\n' {h} {n} > {st} && mv -f -- {st} {fs}",
        t = sh_quote(tmp),
        f = sh_quote(final_path),
        h = sh_quote(sha),
        n = sh_quote(name),
        st = sh_quote(&sum_tmp),
        fs = sh_quote(&format!("{final_path}.sha256")),
    );
    run(s, "putting the archive in place", &cmd).await?;
    Ok(())
}

/// Puts a finished rsync folder `tmp` in place of `final_path` (the old copy is moved
/// aside first and removed after).
pub async fn commit_dir(s: &Session, tmp: &str, final_path: &str, run_id: &str) -> Result<()> {
    let old = format!("{final_path}.mware-old-{run_id}");
    let cmd = format!(
        "rm -rf -- {o} && if [ -e {f} ]; then mv -- {f} {o}; fi && mv -- {t} {f} && rm -rf -- {o}",
        o = sh_quote(&old),
        f = sh_quote(final_path),
        t = sh_quote(tmp)
    );
    run(s, "putting the rsync copy in place", &cmd).await?;
    Ok(())
}

/// `rm -rf -- path` (and its `.sha256` leftover).
pub async fn remove(s: &Session, path: &str) -> Result<()> {
    run(s, "removing a leftover", &command_line(&["rm", "-rf", "--", path, &format!("{path}.sha256")])).await?;
    Ok(())
}

/// `mkdir -p -- dir`.
pub async fn mkdir(s: &Session, dir: &str) -> Result<()> {
    run(s, "creating the storage folder", &command_line(&["mkdir", "-p", "--", dir])).await?;
    Ok(())
}

/// One archive (or rsync folder) on the storage server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    /// Path as given to `restore --archive` (relative to the storage user's home, or absolute).
    pub path: String,
    /// `file` or `dir`.
    pub kind: String,
    /// Size in bytes (a folder: of its entry).
    pub size: u64,
    /// Last change, seconds since the Unix epoch.
    pub mtime: u64,
}

/// Archives under `dir` (to `depth` levels) whose names are `name` (zip archives and rsync
/// folders; leftovers and checksums left out).
pub async fn list(s: &Session, dir: &str, depth: u32, names: &[String]) -> Result<Vec<Listed>> {
    let cmd = format!("if [ -d {d} ]; then find {d} -mindepth 1 -maxdepth {depth} -printf '%y %s %T@ %p\\n'; fi", d = sh_quote(dir));
    let out = run(s, "listing archives", &cmd).await?;
    let mut v: Vec<Listed> = out
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            let (kind, size, mtime, path) = (it.next()?, it.next()?, it.next()?, it.next()?);
            let base = path.rsplit('/').next()?;
            if !names.iter().any(|n| n == base) {
                return None;
            }
            let path = path.strip_prefix("./").unwrap_or(path).to_string();
            Some(Listed {
                path,
                kind: if kind == "d" { "dir".into() } else { "file".into() },
                size: size.parse().ok()?,
                mtime: mtime.split('.').next()?.parse().ok()?,
            })
        })
        .collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(v)
}

/// Size of `path` and the sha256 recorded beside it (if any).
pub async fn describe(s: &Session, path: &str) -> Result<(u64, Option<String>)> {
    let cmd =
        format!("stat -c %s -- {p} && (cat -- {ps} 2>/dev/null || true)", p = sh_quote(path), ps = sh_quote(&format!("{path}.sha256")));
    let out = run(s, &format!("looking at {path}"), &cmd).await?;
    let mut lines = out.lines();
    let size = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| BackupError::Config(format!("{path}: expected a file size, found none")))?;
    let sha = lines.next().and_then(|l| l.split_whitespace().next()).map(str::to_string);
    Ok((size, sha))
}

/// Starts `cat -- path`: read the archive from its stdout.
pub async fn fetch(s: &Session, path: &str) -> Result<Exec> {
    s.exec(&command_line(&["cat", "--", path])).await.map_err(|e| BackupError::Ssh { what: format!("reading {path}"), source: e })
}
