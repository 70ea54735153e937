//! The state changes made on a database host over SSH: promote; rebuild as a standby
//! (stop, keep the server's own config, move the data folder into the backup folder,
//! pg_basebackup from the master, put the config back, standby.signal, start); and
//! rewind as a standby (stop cleanly, keep the config, pg_rewind from the master, put
//! the config back, standby.signal, start).
//!
//! Each is one POSIX `sh` script run with `sh -c`; every configured value enters it as a
//! shell-quoted variable assignment, and the replica password arrives on stdin. Each
//! script checks its commands and folders before it changes anything.

use crate::config::ServerSpec;
use crate::error::{PgctlError, Result};
use mware_ssh::{sh_quote, Session};
use std::time::Duration;

/// Exit code scripts use when a precondition fails (nothing was changed).
pub const PRECONDITION: i64 = 20;

fn vars(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}\n", sh_quote(v))).collect()
}

const CHECK_CTL: &str = r#"command -v "$PGCTL" >/dev/null 2>&1 || { echo "pg_ctl command not found: $PGCTL" >&2; exit 20; }
"#;

/// Script that promotes `s` (touches the signal file when configured, else `pg_ctl promote`).
pub fn promote_script(s: &ServerSpec, use_signal: bool) -> String {
    let mut sc = String::from("set -eu\n");
    sc += &vars(&[("PGCTL", &s.pg_ctl), ("D", &s.data)]);
    sc += CHECK_CTL;
    sc += "[ -f \"$D/PG_VERSION\" ] || { echo \"no PostgreSQL data folder at $D\" >&2; exit 20; }\n";
    match (&s.signal, use_signal) {
        (Some(sig), true) => {
            sc += &vars(&[("SIG", sig)]);
            sc += "touch \"$SIG\"\n";
        }
        // No `-w`: pg_ctl would check every 100 ms; the caller polls for writes every 20.
        _ => sc += "\"$PGCTL\" promote -D \"$D\" -W\n",
    }
    sc
}

fn common_vars(s: &ServerSpec, master: &ServerSpec, app_name: &str) -> String {
    let port = master.pg_port.to_string();
    // A connection string, not a bare value: a group key with a space or a quote must not
    // add connection parameters (`application_name=g sslmode=disable`).
    let app = format!("application_name={}", conninfo_quote(app_name));
    vars(&[
        ("PGCTL", &s.pg_ctl),
        ("D", &s.data),
        ("B", &s.backup),
        ("LOG", &s.log),
        ("MH", &master.pg_host),
        ("MP", &port),
        ("RU", &master.replica_user),
        ("APPCONN", &app),
        ("SIG", s.signal.as_deref().unwrap_or("")),
    ])
}

const READ_PASSWORD: &str = "set -eu\nIFS= read -r PGPASSWORD || true\nexport PGPASSWORD\n";

/// Checks the folders, stops the server cleanly and keeps its own config files in
/// `$S` (once: a marker `$M` says a rejoin is in progress, so a retry keeps the first copy).
const STOP_AND_KEEP_CONFIG: &str = r#"N=$(basename "$D"); S="$B/mware-conf-$N"; M="$B/.mware-rebuild-$N"
mkdir -p "$B" || { echo "cannot create backup folder $B" >&2; exit 20; }
[ -w "$B" ] || { echo "backup folder $B is not writable" >&2; exit 20; }
[ -w "$(dirname "$D")" ] || { echo "parent of data folder $D is not writable" >&2; exit 20; }
rc=0; "$PGCTL" status -D "$D" >/dev/null 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
  echo "stopping $D"; "$PGCTL" stop -D "$D" -m fast -w -t 120 >/dev/null
elif [ "$rc" != 3 ] && [ "$rc" != 4 ]; then
  echo "pg_ctl status -D $D failed with $rc" >&2; exit 20
fi
if [ ! -e "$M" ] && [ -f "$D/PG_VERSION" ]; then
  rm -rf "$S.new"; mkdir -p "$S.new"
  for f in postgresql.conf postgresql.auto.conf pg_hba.conf pg_ident.conf; do
    if [ -f "$D/$f" ]; then cp -p "$D/$f" "$S.new/$f"; fi
  done
  rm -rf "$S"; mv "$S.new" "$S"
fi
touch "$M"
"#;

/// After a copy from the master (basebackup or rewind, both with `-R`): put the
/// server's own config back with the new `primary_conninfo`, `standby.signal`, start.
const RESTORE_CONFIG_AND_START: &str = r#"grep '^primary_conninfo' "$D/postgresql.auto.conf" | tail -n 1 > "$D/.mware-conninfo" || true
if [ -d "$S" ]; then
  for f in postgresql.conf pg_hba.conf pg_ident.conf; do
    if [ -f "$S/$f" ]; then cp -p "$S/$f" "$D/$f"; fi
  done
  { if [ -f "$S/postgresql.auto.conf" ]; then grep -v '^primary_conninfo' "$S/postgresql.auto.conf" || true; fi
    cat "$D/.mware-conninfo"; } > "$D/postgresql.auto.conf.mware"
  mv "$D/postgresql.auto.conf.mware" "$D/postgresql.auto.conf"
fi
rm -f "$D/.mware-conninfo"
chmod 600 "$D/postgresql.auto.conf"
touch "$D/standby.signal"
if [ -n "$SIG" ]; then rm -f "$SIG"; fi
"$PGCTL" start -D "$D" -l "$LOG" -w -t 300 >/dev/null
rm -f "$M"
"#;

/// Script that rebuilds `s` as a standby of `master`. Reads the replica password on stdin.
pub fn rebuild_script(s: &ServerSpec, master: &ServerSpec, app_name: &str) -> String {
    let mut sc = String::from(READ_PASSWORD);
    sc += &common_vars(s, master, app_name);
    sc += &vars(&[("PGBB", &s.pg_basebackup)]);
    sc += CHECK_CTL;
    sc += r#"command -v "$PGBB" >/dev/null 2>&1 || { echo "pg_basebackup command not found: $PGBB" >&2; exit 20; }
"#;
    sc += STOP_AND_KEEP_CONFIG;
    sc += r#"if [ -e "$D" ]; then
  TS=$(date -u +%Y%m%dT%H%M%SZ)
  OLD="$B/$N-$TS"; i=0
  while [ -e "$OLD" ]; do i=$((i+1)); OLD="$B/$N-$TS-$i"; done
  mv "$D" "$OLD"; echo "moved $D to $OLD"
fi
"$PGBB" -D "$D" -h "$MH" -p "$MP" -U "$RU" -X stream -c fast -R -w -d "$APPCONN"
"#;
    sc += RESTORE_CONFIG_AND_START;
    sc += "echo \"rebuilt $D from $MH:$MP\"\n";
    sc
}

/// Quotes one value of a libpq connection string: `'...'` with `\` and `'` escaped.
pub fn conninfo_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The libpq connection string pg_rewind uses to read from `master` (no password: it
/// comes from `PGPASSWORD`, read on stdin).
pub fn rewind_source(master: &ServerSpec, app_name: &str) -> String {
    format!(
        "host={} port={} user={} dbname={} application_name={}",
        conninfo_quote(&master.pg_host),
        master.pg_port,
        conninfo_quote(&master.replica_user),
        conninfo_quote(&master.database),
        conninfo_quote(app_name)
    )
}

/// Script that rejoins `s` (a former master that still has its data folder) as a standby
/// of `master` with pg_rewind, keeping its own config. Reads the replica password on
/// stdin. Exits [`PRECONDITION`] before changing anything when a command or the data
/// folder is missing, and 21 when pg_rewind fails (server left stopped; the caller falls back to a basebackup).
pub fn rewind_script(s: &ServerSpec, master: &ServerSpec, app_name: &str) -> String {
    let mut sc = String::from(READ_PASSWORD);
    sc += &common_vars(s, master, app_name);
    let conn = rewind_source(master, app_name);
    sc += &vars(&[("PGRW", s.pg_rewind.as_deref().unwrap_or("")), ("CONN", &conn)]);
    sc += CHECK_CTL;
    sc += r#"[ -n "$PGRW" ] || { echo "no pg_rewind_command is configured" >&2; exit 20; }
command -v "$PGRW" >/dev/null 2>&1 || { echo "pg_rewind command not found: $PGRW" >&2; exit 20; }
[ -f "$D/PG_VERSION" ] || { echo "no PostgreSQL data folder at $D to rewind" >&2; exit 20; }
"#;
    sc += STOP_AND_KEEP_CONFIG;
    sc += r#"RWLOG="$B/.mware-rewind-$N.log"
rc=0; "$PGRW" --target-pgdata="$D" --source-server="$CONN" -R >"$RWLOG" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
  tail -n 5 "$RWLOG" >&2; rm -f "$RWLOG"; echo "pg_rewind exited with $rc; $D is stopped" >&2; exit 21
fi
cat "$RWLOG"; rm -f "$RWLOG"
echo "rewound $D from $MH:$MP"
"#;
    sc += RESTORE_CONFIG_AND_START;
    sc += "echo \"started $D as a standby of $MH:$MP\"\n";
    sc
}

/// Runs a script for `s` on its SSH session `ssh` (opened with [`mware_ssh::Target::connect`],
/// host key checked); a non-zero exit becomes [`PgctlError::Remote`].
pub async fn run(ssh: &Session, s: &ServerSpec, what: &str, script: &str, with_password: bool, timeout: Duration) -> Result<String> {
    let cmd = format!("sh -c {}", sh_quote(script));
    let stdin = with_password.then_some(&s.replica_pwd);
    let out = ssh.run(&cmd, stdin, timeout).await?;
    if out.code != 0 {
        let detail = out.detail();
        let detail = if out.code == PRECONDITION { format!("{detail} (nothing was changed)") } else { detail };
        return Err(PgctlError::Remote { what: what.into(), target: ssh.label().to_string(), code: out.code, detail });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mware_config::Secret;
    use mware_ssh::{Auth, HostKeyPolicy, Target};

    fn spec(data: &str) -> ServerSpec {
        ServerSpec {
            name: "h:1".into(),
            pg_host: "h".into(),
            pg_port: 1,
            replica_user: "rep'l".into(),
            replica_pwd: Secret::new("topsecret"),
            database: "postgres".into(),
            ssh: Target {
                host: "h".into(),
                port: 22,
                user: "u".into(),
                auth: Auth::Password(Secret::new("x")),
                host_keys: HostKeyPolicy { known_hosts: "kh".into(), trust_on_first_use: false },
            },
            pg_ctl: "/opt/pg bin/pg_ctl".into(),
            pg_basebackup: "pg_basebackup".into(),
            pg_rewind: None,
            data: data.into(),
            backup: "/b".into(),
            log: "/l".into(),
            signal: None,
            ssl_mode: tokio_postgres::config::SslMode::Prefer,
            tls: mware_pg::connector(None, "pg_ca_file").unwrap(),
        }
    }

    #[test]
    fn scripts_quote_values_and_never_carry_the_password() {
        let s = spec("/d; rm -rf /");
        let sc = rebuild_script(&s, &spec("/m"), "g-h:1");
        assert!(sc.contains("D='/d; rm -rf /'\n"), "{sc}");
        assert!(sc.contains("PGCTL='/opt/pg bin/pg_ctl'\n"));
        assert!(sc.contains("RU='rep'\\''l'\n"));
        assert!(!sc.contains("topsecret"));
        let r = rewind_script(&s, &spec("/m"), "g-h:1");
        assert!(r.contains("D='/d; rm -rf /'\n") && !r.contains("topsecret"), "{r}");
        // The conninfo survives the shell: evaluate its assignment line with sh.
        let line = r.lines().find(|l| l.starts_with("CONN=")).expect("CONN line");
        let out = std::process::Command::new("sh").arg("-c").arg(format!("{line}\nprintf %s \"$CONN\"")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "host='h' port=1 user='rep\\'l' dbname='postgres' application_name='g-h:1'");
        let p = promote_script(&s, false);
        assert!(p.contains("promote -D \"$D\"") && !p.contains("topsecret"));
    }

    #[test]
    fn a_group_key_cannot_add_connection_parameters() {
        let s = spec("db1");
        let script = rebuild_script(&s, &spec("db2"), "g h' sslmode=disable");
        // Run the script's variable block in a shell and read APPCONN back.
        let vars: String = script.lines().filter(|l| l.starts_with("APPCONN=")).collect();
        let out = std::process::Command::new("sh").arg("-c").arg(format!("{vars}\nprintf %s \"$APPCONN\"")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), r"application_name='g h\' sslmode=disable'");
        assert!(script.contains(r#"-d "$APPCONN""#), "{script}");
    }
}
