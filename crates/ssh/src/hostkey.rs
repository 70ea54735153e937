//! Host key pinning against an OpenSSH known_hosts file.
//!
//! The file is read with russh's known_hosts helpers, so it takes what OpenSSH writes:
//! `host key-type base64 [comment]`, `[host]:port ...` for ports other than 22, several
//! names separated by commas, hashed names (`|1|...`), `#` comments; `ssh-keyscan`
//! output can be appended as is. Wildcard patterns and `@cert-authority` / `@revoked`
//! markers are not understood: such lines pin nothing.
//!
//! A host is judged by every key pinned for it: the presented key must be one of them
//! (whatever its type); a host with pinned keys that presents another one is refused,
//! also when its type differs (no downgrade to an unpinned key type). Only a host with
//! no entry at all is "unknown".

use crate::error::{Result, SshError};
use mware_config::SshSettings;
use russh::keys::{known_hosts, Algorithm, HashAlg, PublicKey};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Serialises check-then-learn and pin on known_hosts files in this process, so
/// concurrent first connections to one host write its line once.
static FILE_LOCK: Mutex<()> = Mutex::new(());

/// A server's public host key, as presented in the key exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey(pub(crate) PublicKey);

impl HostKey {
    /// Key type as OpenSSH names it, e.g. `ssh-ed25519`.
    pub fn key_type(&self) -> String {
        self.0.algorithm().as_str().to_string()
    }

    /// SHA256 fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint(HashAlg::Sha256).to_string()
    }

    /// `ssh-ed25519 SHA256:...`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.key_type(), self.fingerprint())
    }

    /// The key in OpenSSH's one-line format (`ssh-ed25519 AAAA...`).
    pub fn openssh(&self) -> String {
        let mut k = self.0.clone();
        k.set_comment("");
        k.to_openssh().unwrap_or_default().trim().to_string()
    }

    /// The known_hosts line pinning this key for `host:port`.
    pub fn known_hosts_line(&self, host: &str, port: u16) -> String {
        format!("{} {}", entry(host, port), self.openssh())
    }

    /// Parses a public key in OpenSSH's one-line format (`ssh-ed25519 AAAA... [comment]`).
    pub fn parse(openssh: &str) -> Option<HostKey> {
        PublicKey::from_openssh(openssh.trim()).ok().map(HostKey)
    }

    /// `ed25519`, `ecdsa`, `rsa`...: the part of OpenSSH's host key file names.
    fn file_kind(&self) -> String {
        match self.0.algorithm() {
            Algorithm::Ed25519 => "ed25519".into(),
            Algorithm::Ecdsa { .. } => "ecdsa".into(),
            Algorithm::Rsa { .. } => "rsa".into(),
            Algorithm::Dsa => "dsa".into(),
            other => other.as_str().to_string(),
        }
    }
}

/// How a host is named in known_hosts: `host`, or `[host]:port` for ports other than 22.
pub(crate) fn entry(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Which server keys are accepted: the keys pinned in an OpenSSH known_hosts file, and
/// whether an unknown host's key is learned on first contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// The known_hosts file (relative paths are relative to the working directory).
    pub known_hosts: PathBuf,
    /// Learn (append and log) the key of a host that has no entry, instead of refusing it.
    pub trust_on_first_use: bool,
}

impl From<&SshSettings> for HostKeyPolicy {
    fn from(s: &SshSettings) -> Self {
        HostKeyPolicy { known_hosts: PathBuf::from(&s.known_hosts), trust_on_first_use: s.trust_on_first_use }
    }
}

impl HostKeyPolicy {
    /// The file's absolute path, for messages.
    pub fn file_label(&self) -> String {
        absolute(&self.known_hosts)
    }

    /// The keys pinned for `host:port` (empty when the file does not exist).
    pub fn pinned(&self, host: &str, port: u16) -> Result<Vec<HostKey>> {
        pinned_in(&self.known_hosts, host, port)
    }

    /// Judges the key `key` presented by `host:port` (`target` names it in errors):
    /// `Ok` when it is pinned, or when the host is unknown and trust on first use is on
    /// (the key is then written to the file and logged at warn).
    pub fn check(&self, target: &str, host: &str, port: u16, key: &HostKey) -> Result<()> {
        let _one_at_a_time = FILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let pinned = self.pinned(host, port)?;
        if pinned.iter().any(|k| k.0.key_data() == key.0.key_data()) {
            return Ok(());
        }
        let file = self.file_label();
        if !pinned.is_empty() {
            return Err(SshError::HostKeyMismatch {
                target: target.into(),
                pinned: fingerprints(&pinned),
                presented: key.describe(),
                file,
            });
        }
        if !self.trust_on_first_use {
            let how = format!(
                "Compare the fingerprint with `ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub` on the server, then pin it \
                 with `mware ssh pin --config SITE_FILE {host} --port {port} --fingerprint {}` (or append \
                 `ssh-keyscan -p {port} {host}` output to the file), or set ssh.trust_on_first_use to learn keys on \
                 first contact",
                key.file_kind(),
                key.fingerprint()
            );
            return Err(SshError::HostKeyUnknown { target: target.into(), entry: entry(host, port), presented: key.describe(), file, how });
        }
        learn(&self.known_hosts, host, port, key)?;
        tracing::warn!(
            "ssh: trusted {target} on first use and pinned its host key {} in {file}; check the fingerprint on the server",
            key.describe()
        );
        Ok(())
    }

    /// The key types pinned for `host:port`, to ask the server for one of those first.
    pub(crate) fn pinned_algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        self.pinned(host, port).unwrap_or_default().iter().map(|k| k.0.algorithm()).collect()
    }
}

/// What [`pin`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinned {
    /// The line was appended to the file.
    Added,
    /// The key was already pinned for the host: nothing written.
    AlreadyPinned,
}

/// Pins `key` for `host:port` in the known_hosts file `file`: appends its line, unless
/// the key is already there. Refuses ([`SshError::PinConflict`]) when another key is
/// pinned for the host.
pub fn pin(file: &Path, host: &str, port: u16, key: &HostKey) -> Result<Pinned> {
    let _one_at_a_time = FILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let pinned = pinned_in(file, host, port)?;
    if pinned.iter().any(|k| k.0.key_data() == key.0.key_data()) {
        return Ok(Pinned::AlreadyPinned);
    }
    if !pinned.is_empty() {
        return Err(SshError::PinConflict {
            entry: entry(host, port),
            pinned: fingerprints(&pinned),
            presented: key.describe(),
            file: absolute(file),
        });
    }
    learn(file, host, port, key)?;
    Ok(Pinned::Added)
}

fn pinned_in(file: &Path, host: &str, port: u16) -> Result<Vec<HostKey>> {
    // russh's reader takes an unreadable file for an empty one: tell them apart here.
    match std::fs::File::open(file) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(SshError::KnownHosts { file: absolute(file), reason: format!("cannot read it: {e}") }),
    }
    let keys = known_hosts::known_host_keys_path(host, port, file).map_err(|e| SshError::KnownHosts {
        file: absolute(file),
        reason: format!("expected OpenSSH known_hosts lines, found one for {} it cannot read: {e}", entry(host, port)),
    })?;
    Ok(keys.into_iter().map(|(_, k)| HostKey(k)).collect())
}

/// Appends the key's line (russh's `learn_known_hosts_path` starts a new file with an
/// empty line; this writes exactly the line `ssh-keyscan` would).
fn learn(file: &Path, host: &str, port: u16, key: &HostKey) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let fail = |e: std::io::Error| SshError::KnownHosts {
        file: absolute(file),
        reason: format!("cannot write the key of {}: {e}", entry(host, port)),
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new().read(true).append(true).create(true).open(file).map_err(fail)?;
    let mut last = [b'\n'];
    if f.seek(SeekFrom::End(-1)).is_ok() {
        f.read_exact(&mut last).map_err(fail)?;
    }
    let sep = if last[0] == b'\n' { "" } else { "\n" };
    f.write_all(format!("{sep}{}\n", key.known_hosts_line(host, port)).as_bytes()).map_err(fail)
}

fn fingerprints(keys: &[HostKey]) -> String {
    keys.iter().map(HostKey::describe).collect::<Vec<_>>().join(" or ")
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn policy(dir: &Path, tofu: bool) -> HostKeyPolicy {
        HostKeyPolicy { known_hosts: dir.join("kh"), trust_on_first_use: tofu }
    }

    #[test]
    fn pinned_unknown_and_changed_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (HostKey::parse(A).unwrap(), HostKey::parse(B).unwrap());
        let p = policy(dir.path(), false);
        let e = p.check("u@h:2222", "h", 2222, &a).unwrap_err();
        assert!(matches!(e, SshError::HostKeyUnknown { .. }) && e.to_string().contains("[h]:2222"), "{e}");
        assert!(e.to_string().contains(&a.fingerprint()) && e.to_string().contains("mware ssh pin"), "{e}");
        assert_eq!(pin(&p.known_hosts, "h", 2222, &a).unwrap(), Pinned::Added);
        assert_eq!(pin(&p.known_hosts, "h", 2222, &a).unwrap(), Pinned::AlreadyPinned);
        p.check("u@h:2222", "h", 2222, &a).unwrap();
        let e = p.check("u@h:2222", "h", 2222, &b).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&a.fingerprint()) && text.contains(&b.fingerprint()) && text.contains("u@h:2222"), "{text}");
        assert!(matches!(pin(&p.known_hosts, "h", 2222, &b), Err(SshError::PinConflict { .. })));
        // Same host on port 22 is another entry.
        assert!(p.check("u@h:22", "h", 22, &b).is_err());
        let lines = std::fs::read_to_string(&p.known_hosts).unwrap();
        assert_eq!(lines, format!("[h]:2222 {A}\n"), "one line, written once");
    }

    #[test]
    fn trust_on_first_use_learns_once_and_then_pins() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (HostKey::parse(A).unwrap(), HostKey::parse(B).unwrap());
        let p = policy(&dir.path().join("sub"), true);
        p.check("u@h:22", "h", 22, &a).unwrap();
        p.check("u@h:22", "h", 22, &a).unwrap();
        assert_eq!(std::fs::read_to_string(&p.known_hosts).unwrap(), format!("h {A}\n"));
        assert!(matches!(p.check("u@h:22", "h", 22, &b), Err(SshError::HostKeyMismatch { .. })), "learned keys are pinned");
    }

    #[test]
    fn keyscan_lines_comments_and_several_names_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path(), false);
        std::fs::write(&p.known_hosts, format!("# ssh-keyscan\n\ndb1,10.0.0.5 {A} root@db1\n[db2]:2022 {B}\n")).unwrap();
        let (a, b) = (HostKey::parse(A).unwrap(), HostKey::parse(B).unwrap());
        p.check("u@10.0.0.5:22", "10.0.0.5", 22, &a).unwrap();
        p.check("u@db2:2022", "db2", 2022, &b).unwrap();
        assert!(p.check("u@db2:22", "db2", 22, &b).is_err());
        std::fs::write(&p.known_hosts, "db1 ssh-ed25519 not-base64!\n").unwrap();
        let e = p.check("u@db1:22", "db1", 22, &a).unwrap_err();
        assert!(matches!(e, SshError::KnownHosts { .. }), "an unreadable entry refuses: {e}");
    }

    #[test]
    fn fingerprint_and_line_look_like_openssh() {
        let a = HostKey::parse(&format!("{A} some comment")).unwrap();
        assert!(a.fingerprint().starts_with("SHA256:") && !a.fingerprint().ends_with('='));
        assert_eq!(a.known_hosts_line("127.0.0.1", 2022), format!("[127.0.0.1]:2022 {A}"));
        assert_eq!(a.known_hosts_line("db1", 22), format!("db1 {A}"));
        assert_eq!(a.key_type(), "ssh-ed25519");
    }
}
