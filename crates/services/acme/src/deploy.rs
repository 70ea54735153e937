//! Deploying a certificate to a target over the shared SSH client (host keys pinned in
//! the site's `ssh.known_hosts`; a server presenting another key is refused during the
//! key exchange and gets nothing): each file is streamed on the remote command's stdin
//! (the key never on a command line) into a temporary file in the target folder, given
//! its mode and owner, then renamed over the old one (atomic: a reader sees the old file
//! or the new one); the certificate is read back (its serial and expiry must be the ones
//! written); then the reload command runs. Every remote argument is quoted.

use crate::section::{mode, Target};
use crate::store::Issued;
use mware_ssh::{command_line, sh_quote, Auth, HostKeyPolicy, Session};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Time limit of one deploy (connect, two files, read back, reload).
pub const LIMIT: Duration = Duration::from_secs(60);

/// What a successful deploy found on the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    /// Serial of the certificate read back.
    pub serial: String,
    /// Its expiry, ms.
    pub not_after_ms: u64,
}

/// The SSH destination of `t`.
pub fn ssh_target(t: &Target, keys: &HostKeyPolicy) -> mware_ssh::Target {
    mware_ssh::Target {
        host: t.host.clone(),
        port: t.port,
        user: t.user.clone(),
        auth: match (&t.password, &t.key_file) {
            (Some(p), _) => Auth::Password(p.clone()),
            (None, Some(k)) => Auth::KeyFile(k.clone()),
            (None, None) => Auth::Password(Default::default()),
        },
        host_keys: keys.clone(),
    }
}

/// The remote line that writes stdin into `dir/name` atomically with `mode` and `owner`.
pub fn write_line(dir: &str, name: &str, mode_text: &str, owner: Option<&str>) -> String {
    let path = format!("{}/{name}", dir.trim_end_matches('/'));
    let tmp = format!("{}/.mware-{name}.tmp", dir.trim_end_matches('/'));
    let m = mode(mode_text).map(|m| format!("{m:04o}")).unwrap_or_else(|_| "0600".into());
    let mut line = format!("umask 077 && cat > {t} && chmod {m} {t}", t = sh_quote(&tmp));
    if let Some(o) = owner {
        line.push_str(&format!(" && chown {} {}", sh_quote(o), sh_quote(&tmp)));
    }
    line.push_str(&format!(" && mv -f {} {} || {{ rm -f {}; exit 1; }}", sh_quote(&tmp), sh_quote(&path), sh_quote(&tmp)));
    line
}

/// Deploys `cert` to `t`; `Err` says what failed, in words (nothing is written when the
/// host key is refused).
pub async fn deploy(t: &Target, keys: &HostKeyPolicy, cert: &Issued) -> Result<Deployed, String> {
    tokio::time::timeout(LIMIT, deploy_unlimited(t, keys, cert))
        .await
        .unwrap_or_else(|_| Err(format!("not done within {} s", LIMIT.as_secs())))
}

async fn deploy_unlimited(t: &Target, keys: &HostKeyPolicy, cert: &Issued) -> Result<Deployed, String> {
    let s = ssh_target(t, keys).connect().await.map_err(|e| e.to_string())?;
    let r = steps(&s, t, cert).await;
    s.close().await;
    r
}

async fn steps(s: &Session, t: &Target, cert: &Issued) -> Result<Deployed, String> {
    write(s, &write_line(&t.dir, &t.key_file_name, &t.key_mode, t.owner.as_deref()), cert.key_pem.as_bytes(), "the key file").await?;
    write(s, &write_line(&t.dir, &t.cert_file, &t.cert_mode, t.owner.as_deref()), cert.chain_pem.as_bytes(), "the certificate file")
        .await?;
    let path = format!("{}/{}", t.dir.trim_end_matches('/'), t.cert_file);
    let out = s.run(&command_line(&["cat", &path]), None, Duration::from_secs(20)).await.map_err(|e| e.to_string())?;
    if out.code != 0 {
        return Err(format!("reading {path} back: {}", out.detail()));
    }
    let info = crate::keys::info(&out.stdout).map_err(|e| format!("reading {path} back: {e}"))?;
    if info.serial != cert.serial {
        return Err(format!("reading {path} back: expected serial {}, found {}", cert.serial, info.serial));
    }
    if !t.reload.is_empty() {
        let out = s.run(&command_line(&t.reload), None, Duration::from_secs(30)).await.map_err(|e| e.to_string())?;
        if out.code != 0 {
            return Err(format!("the reload command {} failed (exit {}): {}", command_line(&t.reload), out.code, out.detail()));
        }
    }
    Ok(Deployed { serial: info.serial, not_after_ms: info.not_after_ms })
}

async fn write(s: &Session, line: &str, data: &[u8], what: &str) -> Result<(), String> {
    let mut ex = s.exec(line).await.map_err(|e| e.to_string())?;
    ex.stdin.write_all(data).await.map_err(|e| format!("writing {what}: {e}"))?;
    ex.stdin.shutdown().await.map_err(|e| format!("writing {what}: {e}"))?;
    drop(ex.stdout);
    let exit = ex.exit.wait().await.map_err(|e| e.to_string())?;
    if !exit.success() {
        return Err(format!("writing {what}: {}", exit.describe()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_line_quotes_every_path_and_owner() {
        let l = write_line("/etc/ssl/my certs", "web.pem", "640", Some("www-data:ssl-cert"));
        assert_eq!(
            l,
            "umask 077 && cat > '/etc/ssl/my certs/.mware-web.pem.tmp' && chmod 0640 '/etc/ssl/my certs/.mware-web.pem.tmp' \
             && chown www-data:ssl-cert '/etc/ssl/my certs/.mware-web.pem.tmp' && mv -f '/etc/ssl/my certs/.mware-web.pem.tmp' \
             '/etc/ssl/my certs/web.pem' || { rm -f '/etc/ssl/my certs/.mware-web.pem.tmp'; exit 1; }"
        );
    }
}
