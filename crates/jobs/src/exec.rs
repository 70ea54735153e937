//! Running one job: the kind's own checks again (a poller may be newer or older than
//! mware), its target resolved and judged by the job's rules, then the kind within what
//! is left before the job's deadline, connecting only to the addresses judged.

use crate::dest::{Dest, RunEnv};
use crate::kinds::find;
use crate::spec::{Problems, Target};
use crate::wire::{now_ms, JobMessage, JobState};
use serde_json::Value;
use std::time::Duration;

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// done, failed or expired.
    pub state: JobState,
    /// What the kind returned (`null` when it failed before).
    pub result: Value,
    /// Why it failed or expired.
    pub error: Option<String>,
}

impl Outcome {
    fn failed(error: impl Into<String>) -> Outcome {
        Outcome { state: JobState::Failed, result: Value::Null, error: Some(error.into()) }
    }
}

/// Slack past the job's own limit before it is cut short and reported expired (a kind
/// honours the limit itself and reports its own timeout as a failure).
const CUT_SLACK: Duration = Duration::from_millis(250);

/// Runs `job`, never past its deadline.
pub async fn execute(job: &JobMessage, env: &RunEnv) -> Outcome {
    let Some(kind) = find(&job.kind) else {
        return Outcome::failed(format!("this poller does not know the kind {:?}", job.kind));
    };
    let target = match Target::parse(&job.target) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(format!("target: {e}")),
    };
    let mut p = Problems::new("");
    kind.check(&job.params, &mut p);
    if !p.list.is_empty() {
        let all: Vec<String> = p.list.iter().map(ToString::to_string).collect();
        return Outcome::failed(all.join("; "));
    }
    let now = now_ms();
    if now >= job.deadline_ms {
        return Outcome {
            state: JobState::Expired,
            result: Value::Null,
            error: Some(format!("the deadline passed {} ms before a poller could start it", now - job.deadline_ms)),
        };
    }
    let limit = Duration::from_millis(job.deadline_ms - now);
    let started = std::time::Instant::now();
    let addrs = match tokio::time::timeout(limit, job.rules.resolve(&target)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Outcome::failed(format!("target: {e}")),
        Err(_) => return Outcome::failed(format!("target: cannot resolve {target} within {} ms", limit.as_millis())),
    };
    let limit = limit.saturating_sub(started.elapsed());
    let dest = Dest { target, addrs };
    match tokio::time::timeout(limit + CUT_SLACK, kind.run(&dest, &job.params, env, limit)).await {
        Ok(Ok(result)) => Outcome { state: JobState::Done, result, error: None },
        Ok(Err(fail)) => Outcome { state: JobState::Failed, result: fail.result, error: Some(fail.error) },
        Err(_) => Outcome {
            state: JobState::Expired,
            result: Value::Null,
            error: Some(format!("the deadline passed while it ran (it had {} ms)", limit.as_millis())),
        },
    }
}
