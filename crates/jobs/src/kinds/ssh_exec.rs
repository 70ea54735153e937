//! `ssh.exec`: runs one command on a device over SSH (mware-ssh: the host key must be
//! pinned in the known_hosts file of whoever runs the job, the poller's
//! `--known-hosts` or the site's `ssh.known_hosts` in-process).
//!
//! Parameters: `user`; `password` (secret) or `key_file` (a private key file on the
//! poller); `argv` (a list: each word shell-quoted, for POSIX shells) or `command` (one
//! line sent as it is, for device CLIs without a POSIX shell: the caller writes the whole
//! line, mware adds nothing to it); `max_output_bytes` (default 65536 per stream).
//! Result: `{"exit_code", "stdout", "stderr", "truncated"}`; a non-zero exit status
//! fails the job, with the result kept.

use super::{Failure, Kind};
use crate::dest::{Dest, RunEnv};
use crate::spec::{found, Problems};
use async_trait::async_trait;
use mware_config::Secret;
use mware_ssh::{command_line, Auth};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The `ssh.exec` kind.
pub struct SshExec;

fn cut(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_string(), true)
}

#[async_trait]
impl Kind for SshExec {
    fn name(&self) -> &'static str {
        "ssh.exec"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["password"]
    }

    fn check(&self, params: &Map<String, Value>, p: &mut Problems) {
        p.unknown(params, &["user", "password", "key_file", "argv", "command", "max_output_bytes"]);
        p.req_str(params, "user");
        let password = params.get("password").filter(|v| !v.is_null());
        if password.is_some_and(|v| v.as_str().is_none_or(str::is_empty)) {
            p.report("params.password", "expected a non-empty string (not shown: a secret)");
        }
        let key = p.opt_str(params, "key_file");
        match (password.is_some(), key.is_some()) {
            (false, false) => p.report("params.password", "expected password or key_file, found neither"),
            (true, true) => p.report("params.key_file", "expected password or key_file, found both"),
            _ => {}
        }
        let argv = params.get("argv").filter(|v| !v.is_null());
        let command = params.get("command").filter(|v| !v.is_null());
        match (argv, command) {
            (None, None) => p.report("params.command", "expected command or argv, found neither"),
            (Some(_), Some(_)) => p.report("params.argv", "expected command or argv, found both"),
            (Some(a), None) => match a.as_array() {
                Some(list) if !list.is_empty() && list.iter().all(|w| w.as_str().is_some_and(|s| !s.contains('\0'))) => {}
                _ => p.report("params.argv", format!("expected a non-empty list of strings, found {}", found(a))),
            },
            (None, Some(_)) => {
                if p.opt_str(params, "command").is_some_and(|c| c.contains('\0') || c.contains('\n')) {
                    p.report("params.command", "expected one line without NUL or newline characters");
                }
            }
        }
        p.opt_int(params, "max_output_bytes", 0, 1_048_576);
    }

    async fn run(&self, dest: &Dest, params: &Map<String, Value>, env: &RunEnv, limit: Duration) -> Result<Value, Failure> {
        let target = &dest.target;
        let s = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_string);
        let auth = match (s("password"), s("key_file")) {
            (Some(p), _) => Auth::Password(Secret::new(p)),
            (None, Some(k)) => Auth::KeyFile(k),
            _ => return Err(Failure::new("params.password: expected password or key_file")),
        };
        let line = match params.get("argv").and_then(Value::as_array) {
            Some(words) => command_line(&words.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
            None => s("command").unwrap_or_default(),
        };
        let max = params.get("max_output_bytes").and_then(Value::as_u64).unwrap_or(65_536) as usize;
        let t = mware_ssh::Target {
            host: target.host.clone(),
            port: target.port,
            user: s("user").unwrap_or_default(),
            auth,
            host_keys: env.host_keys.clone(),
        };
        // mware-ssh's errors name the target and the reason, never the password.
        let addr = *dest.addrs.first().ok_or_else(|| Failure::new(format!("cannot resolve {target}: no address")))?;
        let out = t.run_at(addr, &line, None, limit).await.map_err(|e| Failure::new(e.to_string()))?;
        let (stdout, t1) = cut(&out.stdout, max);
        let (stderr, t2) = cut(&out.stderr, max);
        let result = json!({"exit_code": out.code, "stdout": stdout, "stderr": stderr, "truncated": t1 || t2});
        if out.code == 0 {
            Ok(result)
        } else {
            Err(Failure { error: format!("the command exited with status {}", out.code), result })
        }
    }
}
