//! Run-time check of the role's `pg_controller` groups: each valid group becomes a
//! [`GroupSpec`]; each invalid one is left out with the reason (the seed's run-time
//! filter), so one bad group never stops the others.
//!
//! The check itself is [`crate::section::parse_groups`], the one `mware validate` runs, so
//! the warnings logged here are the ones `mware validate` prints; this module only turns
//! the groups it keeps into the controller's types. Each server's SSH target carries the
//! site's host key policy.

use crate::section::{parse_groups, PgGroup, PgServer, Rejoin};
use mware_config::{Problem, Secret};
use mware_ssh::{Auth, HostKeyPolicy, Target};
use std::time::Duration;

/// A server the controller can act on.
#[derive(Clone)]
pub struct ServerSpec {
    /// `pg_host:pg_port`, used in reasons and the API.
    pub name: String,
    /// PostgreSQL host.
    pub pg_host: String,
    /// PostgreSQL port.
    pub pg_port: u16,
    /// Replica user.
    pub replica_user: String,
    /// Replica password.
    pub replica_pwd: Secret,
    /// Database to connect to.
    pub database: String,
    /// SSH destination, with the site's host key policy.
    pub ssh: Target,
    /// pg_ctl command.
    pub pg_ctl: String,
    /// pg_basebackup command.
    pub pg_basebackup: String,
    /// pg_rewind command (for `rejoin: rewind`).
    pub pg_rewind: Option<String>,
    /// Data folder.
    pub data: String,
    /// Where old data folders go.
    pub backup: String,
    /// Server log file for `pg_ctl -l`.
    pub log: String,
    /// Promotion signal file, if configured.
    pub signal: Option<String>,
    /// TLS of the probe's connections (`pg_sslmode`).
    pub ssl_mode: tokio_postgres::config::SslMode,
    /// The rustls connector (checks the server against `pg_ca_file` for `verify-full`).
    pub tls: tokio_postgres_rustls::MakeRustlsConnect,
}

/// A group the controller runs.
#[derive(Clone)]
pub struct GroupSpec {
    /// Group key.
    pub key: String,
    /// Referee (`host` or `host:port`).
    pub referee: Option<String>,
    /// The two servers, in config order.
    pub servers: [ServerSpec; 2],
    /// Wait before promoting.
    pub promote_after: Duration,
    /// Lag limit for promotion.
    pub max_lag: Option<u64>,
    /// Rejoin method.
    pub rejoin: Rejoin,
    /// Cycle period.
    pub interval: Duration,
}

/// Valid groups of a raw list, and the problems (warnings, paths from `base`) of those left
/// out, exactly as `mware validate` reports them. Their SSH targets check host keys with
/// `keys`.
pub fn check_groups(raw: &[serde_json::Value], base: &str, keys: &HostKeyPolicy) -> (Vec<GroupSpec>, Vec<Problem>) {
    let (groups, mut problems) = parse_groups(raw, base);
    let mut ok = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        match spec(g, keys) {
            Ok(s) => ok.push(s),
            // parse_groups refuses what `spec` needs, so this is only a guard.
            Err(why) => problems.push(Problem {
                path: format!("{base}[{i}]"),
                message: format!("expected a group pg_controller can run, found one it cannot: {why}"),
                severity: mware_config::Severity::Warning,
            }),
        }
    }
    (ok, problems)
}

/// The controller's form of a group that [`parse_groups`] kept.
fn spec(g: &PgGroup, keys: &HostKeyPolicy) -> Result<GroupSpec, String> {
    let [a, b] = [&g.servers[0], &g.servers[1]].map(|s| server(s, keys));
    Ok(GroupSpec {
        key: g.key.clone().unwrap_or_default(),
        referee: g.referee.clone().filter(|r| !r.trim().is_empty()),
        servers: [a.map_err(|e| format!("servers[0]: {e}"))?, b.map_err(|e| format!("servers[1]: {e}"))?],
        promote_after: Duration::from_secs(g.promote_after_s),
        max_lag: g.maximum_lag_on_failover_bytes,
        rejoin: g.rejoin,
        interval: Duration::from_millis(g.check_interval_ms),
    })
}

/// The SSH target of a server's `ssh_*` settings; explains what is missing.
pub fn ssh_target(s: &PgServer, keys: &HostKeyPolicy) -> Result<Target, String> {
    let host = s.ssh_host().ok_or("ssh_host (or pg_host) is missing")?.to_string();
    let user = s.ssh_user.clone().ok_or("ssh_user is missing")?;
    let auth = match (&s.ssh_pwd, &s.ssh_key_file) {
        (_, Some(k)) => Auth::KeyFile(k.clone()),
        (Some(p), None) => Auth::Password(p.clone()),
        (None, None) => return Err("neither ssh_pwd nor ssh_key_file is set".into()),
    };
    Ok(Target { host, port: s.ssh_port, user, auth, host_keys: keys.clone() })
}

fn server(s: &PgServer, keys: &HostKeyPolicy) -> Result<ServerSpec, String> {
    let pg_host = s.pg_host().ok_or("no pg_host or ssh_host")?.to_string();
    let need = |v: &Option<String>, name: &str| v.clone().ok_or(format!("no {name}"));
    let data = need(&s.pg_data_folder, "pg_data_folder")?.trim_end_matches('/').to_string();
    Ok(ServerSpec {
        name: format!("{pg_host}:{}", s.pg_port),
        pg_host,
        pg_port: s.pg_port,
        replica_user: need(&s.pg_replica_user, "pg_replica_user")?,
        replica_pwd: s.pg_replica_pwd.clone().ok_or("no pg_replica_pwd")?,
        database: s.pg_database.clone(),
        ssh: ssh_target(s, keys)?,
        pg_ctl: need(&s.pg_ctl_command, "pg_ctl_command")?,
        pg_basebackup: need(&s.pg_basebackup_command, "pg_basebackup_command")?,
        pg_rewind: s.pg_rewind_command.clone(),
        log: s.pg_log_filepath.clone().unwrap_or_else(|| format!("{data}.log")),
        signal: s.pg_signal_filepath.clone().filter(|x| !x.trim().is_empty()),
        ssl_mode: match s.pg_sslmode.as_deref() {
            Some("disable") => tokio_postgres::config::SslMode::Disable,
            Some("require") | Some("verify-full") => tokio_postgres::config::SslMode::Require,
            _ => tokio_postgres::config::SslMode::Prefer,
        },
        tls: mware_pg::connector(s.pg_ca_file.as_deref().filter(|_| s.pg_sslmode.as_deref() == Some("verify-full")), "pg_ca_file")
            .map_err(|e| e.to_string())?,
        backup: s.pg_backup_folder.trim_end_matches('/').to_string(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(port: u16) -> serde_json::Value {
        json!({"ssh_host": "127.0.0.1", "ssh_user": "postgres", "ssh_pwd": "pw", "pg_port": port,
               "pg_replica_user": "replica", "pg_replica_pwd": "rpw", "pg_ctl_command": "pg_ctl",
               "pg_basebackup_command": "pg_basebackup", "pg_data_folder": "/var/lib/pg/data"})
    }

    #[test]
    fn bad_groups_are_left_out_with_a_reason() {
        let raw = vec![
            json!({"key": "ok", "servers": [server(5432), server(5433)]}),
            json!({"key": "one", "servers": [server(5432)]}),
            json!({"key": "same", "servers": [server(5432), server(5432)]}),
            json!({"key": "nodata", "servers": [server(5432), {"ssh_host": "h", "ssh_user": "u", "ssh_pwd": "p"}]}),
            json!({"servers": 3}),
        ];
        let (ok, bad) = check_groups(&raw, "pg_controller", &HostKeyPolicy::from(&mware_config::SshSettings::default()));
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].key, "ok");
        assert_eq!(ok[0].servers[1].data, "/var/lib/pg/data");
        let all = format!("{bad:?}");
        for i in 1..5 {
            assert!(all.contains(&format!("pg_controller[{i}]")), "group {i} must be explained: {all}");
        }
        assert!(!all.contains("pg_controller[0]"), "{all}");
        assert!(!all.contains("rpw") && !all.contains("\"pw\""));
    }

    #[test]
    fn the_problems_are_the_validators() {
        let mut b = server(5433);
        b["pg_data_folder"] = json!("relative/data");
        b["pg_backup_folder"] = json!("/var/lib/pg/data/old");
        b.as_object_mut().unwrap().remove("ssh_pwd");
        let raw = vec![json!({"key": "g", "servers": [server(5432), b]})];
        let (ok, bad) =
            check_groups(&raw, "servers[0].roles[0].pg_controller", &HostKeyPolicy::from(&mware_config::SshSettings::default()));
        assert!(ok.is_empty());
        let (_, expected) = parse_groups(&raw, "servers[0].roles[0].pg_controller");
        assert_eq!(bad, expected);
        let text: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
        for line in [
            "warning: servers[0].roles[0].pg_controller[0].servers[1]: expected ssh_pwd or ssh_key_file (how to log in over SSH), found neither",
            "warning: servers[0].roles[0].pg_controller[0].servers[1].pg_data_folder: expected an absolute path other than /, found \"relative/data\"",
        ] {
            assert!(text.iter().any(|t| t == line), "{line} not in {text:#?}");
        }
    }
}
