//! The state changes made on a database host over SSH: promote, and rebuild as a
//! standby (stop, keep the server's own config, move the data folder into the backup
//! folder, pg_basebackup from the master, put the config back, standby.signal, start).
//!
//! Each is one POSIX `sh` script run with `sh -c`; every configured value enters it as a
//! shell-quoted variable assignment, and the replica password arrives on stdin. Each
//! script checks its commands and folders before it changes anything.

use crate::config::ServerSpec;
use crate::error::{PgctlError, Result};
use crate::ssh::sh_quote;
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
        _ => sc += "\"$PGCTL\" promote -D \"$D\" -w -t 60\n",
    }
    sc
}

/// Script that rebuilds `s` as a standby of `master`. Reads the replica password on stdin.
pub fn rebuild_script(s: &ServerSpec, master: &ServerSpec, app_name: &str) -> String {
    let port = master.pg_port.to_string();
    let mut sc = String::from("set -eu\nIFS= read -r PGPASSWORD || true\nexport PGPASSWORD\n");
    sc += &vars(&[
        ("PGCTL", &s.pg_ctl),
        ("PGBB", &s.pg_basebackup),
        ("D", &s.data),
        ("B", &s.backup),
        ("LOG", &s.log),
        ("MH", &master.pg_host),
        ("MP", &port),
        ("RU", &master.replica_user),
        ("APP", app_name),
        ("SIG", s.signal.as_deref().unwrap_or("")),
    ]);
    sc += CHECK_CTL;
    sc += r#"command -v "$PGBB" >/dev/null 2>&1 || { echo "pg_basebackup command not found: $PGBB" >&2; exit 20; }
N=$(basename "$D"); S="$B/mware-conf-$N"; M="$B/.mware-rebuild-$N"
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
if [ -e "$D" ]; then
  TS=$(date -u +%Y%m%dT%H%M%SZ)
  OLD="$B/$N-$TS"; i=0
  while [ -e "$OLD" ]; do i=$((i+1)); OLD="$B/$N-$TS-$i"; done
  mv "$D" "$OLD"; echo "moved $D to $OLD"
fi
"$PGBB" -D "$D" -h "$MH" -p "$MP" -U "$RU" -X stream -c fast -R -w -d "application_name=$APP"
grep '^primary_conninfo' "$D/postgresql.auto.conf" > "$D/.mware-conninfo" || true
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
echo "rebuilt $D from $MH:$MP"
"#;
    sc
}

/// Runs a script on `s` over SSH; a non-zero exit becomes [`PgctlError::Remote`].
pub async fn run(s: &ServerSpec, what: &str, script: &str, with_password: bool, timeout: Duration) -> Result<String> {
    let cmd = format!("sh -c {}", sh_quote(script));
    let stdin = with_password.then_some(&s.replica_pwd);
    let out = s.ssh.run(&cmd, stdin, timeout).await?;
    if out.code != 0 {
        let detail = out.detail();
        let detail = if out.code == PRECONDITION { format!("{detail} (nothing was changed)") } else { detail };
        return Err(PgctlError::Remote { what: what.into(), target: s.ssh.label(), code: out.code, detail });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::{SshAuth, SshTarget};
    use mware_config::Secret;

    fn spec(data: &str) -> ServerSpec {
        ServerSpec {
            name: "h:1".into(),
            pg_host: "h".into(),
            pg_port: 1,
            replica_user: "rep'l".into(),
            replica_pwd: Secret::new("topsecret"),
            database: "postgres".into(),
            ssh: SshTarget { host: "h".into(), port: 22, user: "u".into(), auth: SshAuth::Password(Secret::new("x")) },
            pg_ctl: "/opt/pg bin/pg_ctl".into(),
            pg_basebackup: "pg_basebackup".into(),
            pg_rewind: None,
            data: data.into(),
            backup: "/b".into(),
            log: "/l".into(),
            signal: None,
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
        let p = promote_script(&s, false);
        assert!(p.contains("promote -D \"$D\"") && !p.contains("topsecret"));
    }
}
