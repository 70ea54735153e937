//! Run-time check of the role's `pg_controller` groups: each valid group becomes a
//! [`GroupSpec`]; each invalid one is left out with the reason (the seed's run-time
//! filter), so one bad group never stops the others. Each server's SSH target carries
//! the site's host key policy.

use mware_config::pg::{parse_groups, PgGroup, PgServer, Rejoin};
use mware_config::Secret;
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
    /// SSH destination, with the host keys it must present.
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

/// Valid groups of a raw list, and one `(key, reason)` per group left out. Their SSH
/// targets check host keys with `keys`.
pub fn check_groups(raw: &[serde_json::Value], base: &str, keys: &HostKeyPolicy) -> (Vec<GroupSpec>, Vec<(String, String)>) {
    let (groups, problems) = parse_groups(raw, base);
    let mut bad: Vec<(String, String)> = problems.into_iter().map(|p| (p.path, p.message)).collect();
    let mut ok: Vec<GroupSpec> = Vec::new();
    for g in groups {
        let key = g.key.clone().unwrap_or_default();
        if ok.iter().any(|o| o.key == key) {
            bad.push((key, "duplicate key: expected each group key once".into()));
            continue;
        }
        match check_group(&g, keys) {
            Ok(spec) => ok.push(spec),
            Err(reason) => bad.push((key, reason)),
        }
    }
    (ok, bad)
}

/// Checks one group; the error says what was expected and what was found.
pub fn check_group(g: &PgGroup, keys: &HostKeyPolicy) -> Result<GroupSpec, String> {
    let key = g.key.clone().unwrap_or_default();
    if g.servers.len() != 2 {
        return Err(format!("expected exactly 2 servers, found {}", g.servers.len()));
    }
    let a = check_server(&g.servers[0], keys).map_err(|e| format!("servers[0]: {e}"))?;
    let b = check_server(&g.servers[1], keys).map_err(|e| format!("servers[1]: {e}"))?;
    if a.name == b.name {
        return Err(format!("expected two different servers, found {} twice", a.name));
    }
    if g.promote_after_s == 0 || g.check_interval_ms < 100 {
        return Err(format!(
            "expected promote_after_s > 0 and check_interval_ms >= 100, found {} and {}",
            g.promote_after_s, g.check_interval_ms
        ));
    }
    Ok(GroupSpec {
        key,
        referee: g.referee.clone().filter(|r| !r.trim().is_empty()),
        servers: [a, b],
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

fn check_server(s: &PgServer, keys: &HostKeyPolicy) -> Result<ServerSpec, String> {
    let pg_host = s.pg_host().ok_or("expected pg_host or ssh_host, found neither")?.to_string();
    let need = |v: &Option<String>, name: &str| -> Result<String, String> {
        v.clone().filter(|x| !x.trim().is_empty()).ok_or(format!("expected {name}, found none"))
    };
    let ssh = ssh_target(s, keys).map_err(|e| format!("expected ssh settings: {e}"))?;
    let data = need(&s.pg_data_folder, "pg_data_folder")?;
    if !data.starts_with('/') || data.trim_end_matches('/').is_empty() {
        return Err(format!("expected an absolute pg_data_folder other than /, found {data:?}"));
    }
    let data = data.trim_end_matches('/').to_string();
    let backup = s.pg_backup_folder.trim_end_matches('/').to_string();
    if !backup.starts_with('/') || backup == data || backup.starts_with(&format!("{data}/")) {
        return Err(format!("expected an absolute pg_backup_folder outside pg_data_folder, found {:?}", s.pg_backup_folder));
    }
    let replica_pwd = s.pg_replica_pwd.clone().ok_or("expected pg_replica_pwd, found none")?;
    Ok(ServerSpec {
        name: format!("{pg_host}:{}", s.pg_port),
        pg_host,
        pg_port: s.pg_port,
        replica_user: need(&s.pg_replica_user, "pg_replica_user")?,
        replica_pwd,
        database: s.pg_database.clone(),
        ssh,
        pg_ctl: need(&s.pg_ctl_command, "pg_ctl_command")?,
        pg_basebackup: need(&s.pg_basebackup_command, "pg_basebackup_command")?,
        pg_rewind: s.pg_rewind_command.clone(),
        log: s.pg_log_filepath.clone().unwrap_or_else(|| format!("{data}.log")),
        signal: s.pg_signal_filepath.clone().filter(|x| !x.trim().is_empty()),
        data,
        backup,
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
        let keys = HostKeyPolicy { known_hosts: "kh".into(), trust_on_first_use: false };
        let (ok, bad) = check_groups(&raw, "pg_controller", &keys);
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].key, "ok");
        let all = format!("{bad:?}");
        for i in 1..5 {
            assert!(all.contains(&format!("pg_controller[{i}]")), "group {i} must be explained: {all}");
        }
        assert!(!all.contains("pg_controller[0]"), "{all}");
        assert!(!all.contains("rpw") && !all.contains("\"pw\""));
    }
}
