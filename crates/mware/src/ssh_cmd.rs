//! `mware ssh show-key|pin`: the operator's tools for host key pinning. `show-key`
//! prints what a server presents (key exchange only, nothing else is sent); `pin` adds
//! it to the site's known_hosts file, checked against `--fingerprint` when given.

use crate::cli::SshAction;
use crate::load::{self, Loaded};
use anyhow::Context;
use mware_config::SshSettings;
use mware_ssh::{fetch_host_key, pin, HostKeyPolicy, Pinned};

/// Runs one `mware ssh` action.
pub async fn run(action: SshAction) -> anyhow::Result<()> {
    match action {
        SshAction::ShowKey { host, port } => {
            let key = fetch_host_key(&host, port, None).await?;
            println!("{host} port {port} presents a {} host key", key.key_type());
            println!("fingerprint:      {}", key.fingerprint());
            println!("known_hosts line: {}", key.known_hosts_line(&host, port));
            Ok(())
        }
        SshAction::Pin { config, host, port, fingerprint } => {
            if let Some(fp) = &fingerprint {
                anyhow::ensure!(
                    fp.starts_with("SHA256:") && fp.len() > 7,
                    "--fingerprint: expected SHA256:<base64> as `ssh-keygen -l` prints it, found {fp:?}"
                );
            }
            let policy = HostKeyPolicy::from(&site_ssh(&config).await?);
            let key = fetch_host_key(&host, port, Some(&policy)).await?;
            match &fingerprint {
                Some(fp) if *fp != key.fingerprint() => anyhow::bail!(
                    "{host} port {port} presents {}, expected the fingerprint {fp}: not pinned, nothing written \
                     (a different server answers, or the fingerprint belongs to another key of the server)",
                    key.describe()
                ),
                _ => {}
            }
            let file = policy.file_label();
            let entry = key.known_hosts_line(&host, port);
            let entry = entry.split(' ').next().unwrap_or_default();
            match pin(&policy.known_hosts, &host, port, &key)? {
                Pinned::Added => println!("pinned {} for {entry} in {file}", key.describe()),
                Pinned::AlreadyPinned => println!("{} is already pinned for {entry} in {file}: nothing written", key.describe()),
            }
            if fingerprint.is_none() {
                eprintln!(
                    "warning: no --fingerprint given: the key was taken as {host} port {port} presents it now; compare {} \
                     with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the server",
                    key.fingerprint()
                );
            }
            if policy.known_hosts.is_relative() {
                println!("note: ssh.known_hosts is a relative path: `mware run` reads it from its own working directory");
            }
            Ok(())
        }
    }
}

/// The `ssh` section of the site file `config`, or of the site stored in the coordinator
/// when `config` is a bootstrap file.
async fn site_ssh(config: &std::path::Path) -> anyhow::Result<SshSettings> {
    Ok(full_site(config).await?.ssh)
}

/// The site file `config`, or the site stored in the coordinator when `config` is a
/// bootstrap file.
pub async fn full_site(config: &std::path::Path) -> anyhow::Result<mware_config::Site> {
    match load::load(config)? {
        Loaded::Site { site, .. } => Ok(site),
        Loaded::Bootstrap(boot) => {
            let coord = mware_coord::connect(&boot).await?;
            let (text, _) = coord
                .config_get()
                .await?
                .with_context(|| format!("{} is a bootstrap file and no site file is stored in the coordinator", config.display()))?;
            let (site, _) = load::check(&text).map_err(|e| anyhow::anyhow!("the stored site file is invalid:\n{}", load::lines(&e)))?;
            Ok(site)
        }
    }
}
