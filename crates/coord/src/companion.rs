//! Ending a member's lease from another process the moment the member's process dies, so
//! the next instance in `order` takes over without waiting for the lease to run out.
//!
//! `mware run` starts a small companion process (the same binary) that holds the read
//! end of a pipe whose write end only the daemon holds. The daemon sends, one line each:
//! a [`CompanionMsg::Hello`] (its pid and the coordination settings, credentials
//! included: a pipe, never argv or the environment), then a [`CompanionMsg::Lease`] each
//! time its lease changes, and [`CompanionMsg::Done`] when it has left the group itself.
//! The kernel closes the write end when the daemon dies however it dies (kill -9, a
//! crash, the OOM killer): the companion reads end-of-file, checks that its parent is
//! really gone, revokes the last lease it was told with a [`LeaseRevoker`] and exits.
//!
//! What it never does: renew a lease (a paused daemon keeps its pipe open, so its lease
//! runs out on time as before and it steps down when it resumes), revoke while the daemon
//! is alive (end-of-file with the parent still there is refused), or outlive its job.
//! The rules are the pure [`decide`]; the process that acts on them is in the binary.

use crate::api::{CoordError, Settings};
use crate::embedded::EmbeddedCoordinator;
use crate::etcd::EtcdCoordinator;
use crate::member::Backend;
use mware_config::{Backend as BackendKind, Coordination, Secret};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// One line from the daemon to its companion.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanionMsg {
    /// First line: who the daemon is and how to reach its coordinator.
    Hello {
        /// The daemon's pid (the companion's parent).
        pid: u32,
        /// Site name and coordination settings, password included.
        settings: Box<Settings>,
    },
    /// The lease the daemon holds now (`None`: none until it is granted another).
    Lease(Option<i64>),
    /// The daemon left its group by itself: exit without revoking.
    Done,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    Hello { pid: u32, site: String, coordination: Box<Coordination>, password: Option<String> },
    Lease { id: Option<i64> },
    Done,
}

impl CompanionMsg {
    /// The message as one line of JSON (with its newline).
    pub fn to_line(&self) -> String {
        let wire = match self {
            CompanionMsg::Hello { pid, settings } => Wire::Hello {
                pid: *pid,
                site: settings.site.clone(),
                coordination: Box::new(settings.coordination.clone()),
                password: settings.coordination.password.as_ref().map(|p| p.expose().to_string()),
            },
            CompanionMsg::Lease(id) => Wire::Lease { id: *id },
            CompanionMsg::Done => Wire::Done,
        };
        let mut line = serde_json::to_string(&wire).unwrap_or_default();
        line.push('\n');
        line
    }

    /// Parses one line; the error names what was expected and what was found (never the
    /// line itself: a hello carries a password).
    pub fn parse(line: &str) -> Result<CompanionMsg, CoordError> {
        let wire: Wire = serde_json::from_str(line.trim_end()).map_err(|e| {
            CoordError::Invalid(format!("companion: expected a hello, lease or done message, found one that does not parse ({e})"))
        })?;
        Ok(match wire {
            Wire::Hello { pid, site, mut coordination, password } => {
                coordination.password = password.map(Secret::new);
                CompanionMsg::Hello { pid, settings: Box::new(Settings { site, coordination: *coordination }) }
            }
            Wire::Lease { id } => CompanionMsg::Lease(id),
            Wire::Done => CompanionMsg::Done,
        })
    }
}

/// What the companion saw.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanionEvent {
    /// A message from the daemon.
    Msg(CompanionMsg),
    /// End of file on the pipe; `parent_gone`: the daemon's pid is no longer our parent.
    Eof {
        /// Whether the daemon is gone (we were handed to another parent).
        parent_gone: bool,
    },
}

/// What the companion does next. `Display` gives the reason.
#[derive(Debug, Clone, PartialEq)]
pub enum CompanionAction {
    /// Remember this lease as the one to revoke.
    Track(Option<i64>),
    /// Revoke this lease now, then exit.
    Revoke {
        /// The lease.
        lease: i64,
    },
    /// Exit without revoking anything.
    Exit {
        /// Why.
        reason: String,
    },
    /// Ignore the message.
    Ignore {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for CompanionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompanionAction::Track(Some(l)) => write!(f, "the daemon holds lease {l}"),
            CompanionAction::Track(None) => f.write_str("the daemon holds no lease now"),
            CompanionAction::Revoke { lease } => write!(f, "the daemon died; revoking its lease {lease}"),
            CompanionAction::Exit { reason } | CompanionAction::Ignore { reason } => f.write_str(reason),
        }
    }
}

/// The companion's rules (pure): `lease` is the lease last told.
pub fn decide(lease: Option<i64>, ev: &CompanionEvent) -> CompanionAction {
    match ev {
        CompanionEvent::Msg(CompanionMsg::Lease(l)) => CompanionAction::Track(*l),
        CompanionEvent::Msg(CompanionMsg::Done) => {
            CompanionAction::Exit { reason: "the daemon left its group by itself; nothing to revoke".into() }
        }
        CompanionEvent::Msg(CompanionMsg::Hello { .. }) => CompanionAction::Ignore { reason: "a second hello; ignored".into() },
        CompanionEvent::Eof { parent_gone: false } => {
            CompanionAction::Exit { reason: "the pipe closed but the daemon is still running; leaving its lease alone".into() }
        }
        CompanionEvent::Eof { parent_gone: true } => match lease {
            Some(lease) => CompanionAction::Revoke { lease },
            None => CompanionAction::Exit { reason: "the daemon died holding no lease; nothing to revoke".into() },
        },
    }
}

/// Revokes leases of a coordinator from outside the member that holds them.
pub struct LeaseRevoker {
    backend: Kind,
    ttl: Duration,
}

enum Kind {
    Etcd(EtcdCoordinator),
    Embedded(EmbeddedCoordinator),
}

impl LeaseRevoker {
    /// Opens the coordinator `settings` name (etcd: same endpoints, TLS and credentials).
    pub async fn open(settings: Settings) -> Result<Self, CoordError> {
        let ttl = settings.lease_ttl();
        let backend = match settings.coordination.backend {
            BackendKind::Etcd => Kind::Etcd(EtcdCoordinator::connect(settings).await?),
            BackendKind::Embedded => Kind::Embedded(EmbeddedCoordinator::open(settings).await?),
        };
        Ok(Self { backend, ttl })
    }

    /// Checks that the coordinator answers (etcd: keeps the connection and its token in use).
    pub async fn ping(&self) -> Result<(), CoordError> {
        match &self.backend {
            Kind::Etcd(e) => e.ping().await,
            Kind::Embedded(e) => e.ping().await,
        }
    }

    /// Revokes `lease` (and so the leader key and registration attached to it). A lease
    /// that no longer exists counts as revoked.
    pub async fn revoke(&self, lease: i64) -> Result<(), CoordError> {
        let r = match &self.backend {
            Kind::Etcd(e) => e.revoke(lease).await,
            Kind::Embedded(e) => e.revoke(lease).await,
        };
        match r {
            Err(CoordError::Unavailable(m)) if m.contains("lease not found") => Ok(()),
            r => r,
        }
    }

    /// Revokes `lease`, retrying every 50 ms until it is done or the lease's time to live
    /// has passed (then it has run out by itself). Returns the attempts made.
    pub async fn revoke_retrying(&self, lease: i64) -> Result<u32, CoordError> {
        let deadline = Instant::now() + self.ttl;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(50));
            let err = match tokio::time::timeout(left, self.revoke(lease)).await {
                Ok(Ok(())) => return Ok(attempts),
                Ok(Err(e)) => e,
                Err(_) => CoordError::Unavailable(format!("no answer within {} ms", left.as_millis())),
            };
            if Instant::now() >= deadline {
                return Err(err);
            }
            tracing::warn!(lease, error = %err, "cannot revoke the lease yet; retrying");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut coordination: Coordination =
            serde_json::from_str(r#"{"backend": "etcd", "endpoints": ["http://127.0.0.1:2379"]}"#).unwrap();
        coordination.user = Some("mware".into());
        coordination.password = Some(Secret::new("s3cret"));
        Settings { site: "s".into(), coordination }
    }

    #[test]
    fn a_hello_carries_the_password_over_the_pipe_only() {
        let hello = CompanionMsg::Hello { pid: 42, settings: Box::new(settings()) };
        let line = hello.to_line();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let back = CompanionMsg::parse(&line).unwrap();
        let CompanionMsg::Hello { pid, settings } = &back else { panic!("{back:?}") };
        assert_eq!(*pid, 42);
        assert_eq!(settings.coordination.password.as_ref().map(|p| p.expose()), Some("s3cret"));
        assert_eq!(settings.coordination.endpoints, ["http://127.0.0.1:2379"]);
        // Printing the parsed message never shows it.
        assert!(!format!("{back:?}").contains("s3cret"));
        assert_eq!(CompanionMsg::parse(&CompanionMsg::Lease(Some(7)).to_line()).unwrap(), CompanionMsg::Lease(Some(7)));
        assert_eq!(CompanionMsg::parse(&CompanionMsg::Done.to_line()).unwrap(), CompanionMsg::Done);
    }

    #[test]
    fn a_bad_line_is_refused_without_echoing_it() {
        let e = CompanionMsg::parse(r#"{"hello": {"password": "s3cret"}}"#).unwrap_err().to_string();
        assert!(e.contains("expected a hello, lease or done message"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn only_the_death_of_the_daemon_revokes() {
        let eof = |parent_gone| CompanionEvent::Eof { parent_gone };
        assert_eq!(decide(Some(5), &eof(true)), CompanionAction::Revoke { lease: 5 });
        assert!(matches!(decide(Some(5), &eof(false)), CompanionAction::Exit { .. }));
        assert!(matches!(decide(None, &eof(true)), CompanionAction::Exit { .. }));
        assert!(matches!(decide(Some(5), &CompanionEvent::Msg(CompanionMsg::Done)), CompanionAction::Exit { .. }));
        assert_eq!(decide(Some(5), &CompanionEvent::Msg(CompanionMsg::Lease(Some(6)))), CompanionAction::Track(Some(6)));
        assert_eq!(decide(Some(5), &CompanionEvent::Msg(CompanionMsg::Lease(None))), CompanionAction::Track(None));
        assert_eq!(decide(Some(5), &eof(true)).to_string(), "the daemon died; revoking its lease 5");
    }
}

/// Round trips of what a takeover after a revoke is made of (ignored; a measurement):
/// `cargo test -p mware-coord --lib round_trips -- --ignored --nocapture`.
#[cfg(test)]
mod round_trips {
    use crate::api::{MemberInfo, Settings};
    use crate::member::Backend;
    use std::time::Instant;

    async fn measure<B: Backend>(name: &str, b: &B, revoker: &super::LeaseRevoker) {
        let m = MemberInfo { instance: "rt".into(), group: 9, order: 10, address: "127.0.0.1:1".into(), version: "t".into(), since_ms: 0 };
        let (mut view, mut campaign, mut revoke) = (vec![], vec![], vec![]);
        for _ in 0..100 {
            let lease = b.register(&m).await.unwrap();
            let t = Instant::now();
            b.view(9, Some(lease)).await.unwrap();
            view.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let epoch = b.campaign(&m, lease).await.unwrap().expect("the key is free");
            campaign.push(t.elapsed().as_secs_f64() * 1000.0);
            let _ = epoch;
            let t = Instant::now();
            revoker.revoke(lease).await.unwrap();
            revoke.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for (what, mut v) in [("view", view), ("campaign", campaign), ("revoke (another connection)", revoke)] {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("{name}: {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", v[49], v[98], v[99]);
        }
    }

    fn settings(coordination: serde_json::Value) -> Settings {
        Settings { site: "rt".into(), coordination: serde_json::from_value(coordination).unwrap() }
    }

    #[test]
    #[ignore]
    fn round_trips() {
        let etcd = mware_testkit::etcd::Etcd::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let s = settings(serde_json::json!({"backend": "etcd", "endpoints": [etcd.endpoint()]}));
            let b = crate::EtcdCoordinator::connect(s.clone()).await.unwrap();
            measure("etcd", &b, &super::LeaseRevoker::open(s).await.unwrap()).await;
            let s = settings(serde_json::json!({"backend": "embedded", "path": dir.path().join("c.sqlite")}));
            let b = crate::EmbeddedCoordinator::open(s.clone()).await.unwrap();
            measure("embedded", &b, &super::LeaseRevoker::open(s).await.unwrap()).await;
        });
    }
}
