//! `command`: an argv (never a shell line) that must exit 0 in time. It runs in a process
//! group of its own, ended as a whole at the timeout (`mware_host::exec`, which service tasks run with too).

use mware_host::exec::{self, Ending, Spec};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A `command` probe.
pub struct Command {
    /// The program and its arguments.
    pub argv: Vec<String>,
}

impl Command {
    /// Runs the command; its process group is ended a little before the probe's timeout.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let limit = timeout.saturating_sub(Duration::from_millis(50)).max(Duration::from_millis(10));
        let spec = Spec { argv: self.argv.clone(), env: vec![], working_dir: None, timeout: limit, tail_bytes: 512 };
        let f = exec::run(&spec, &CancellationToken::new(), Arc::new(|_, _| {})).await.map_err(|e| e.to_string())?;
        if f.success() {
            return Ok("exited with 0".into());
        }
        let last = |t: &str| t.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.chars().take(200).collect::<String>());
        let said = last(&f.stderr_tail).or_else(|| last(&f.stdout_tail)).map(|l| format!(": {l}")).unwrap_or_default();
        let what = if f.ending == Ending::TimedOut {
            format!("did not exit within {} ms; its process group was killed", limit.as_millis())
        } else {
            f.describe(limit)
        };
        Err(format!("{} {what}{said}", self.argv[0]))
    }
}
