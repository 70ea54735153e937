//! Test support: a real Kamailio (examples/kamailio), SIPp phones, the embedded
//! coordinator with an active member, and the callmanager's engine on a loopback port.
#![allow(dead_code)]

use mware_callmanager::call::{self, CallHandle, CallSpec, CallView, Engine};
use mware_callmanager::decide::CallState;
use mware_callmanager::section::{SipCredentials, SipTransport};
use mware_callmanager::store::Store;
use mware_callmanager::ua::{Ua, UaOptions};
use mware_config::{Backend, Coordination};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_testkit::sip::{free_sip_port, Kamailio, Phone};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const DOMAIN: &str = "example.test";
pub const GROUP: u32 = 1;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// Kamailio, a coordinator with this test as the active member, a working directory.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub kam: Kamailio,
    pub coord: Arc<dyn Coordinator>,
    pub fence: Fence,
    _member: Membership,
}

impl Rig {
    pub async fn new(defines: &[&str]) -> Rig {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
        let dir = tempfile::tempdir().unwrap();
        let cfg = repo().join("examples/kamailio/kamailio.cfg");
        let kam = Kamailio::start(&cfg, dir.path(), defines).expect("kamailio");
        let c =
            Coordination { backend: Backend::Embedded, path: dir.path().join("coord.sqlite").display().to_string(), ..Default::default() };
        let coord: Arc<dyn Coordinator> =
            Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.expect("coordinator"));
        let info = MemberInfo {
            instance: "mware1".into(),
            group: GROUP,
            order: 1,
            address: "127.0.0.1:1".into(),
            version: "test".into(),
            since_ms: mware_coord::now_ms(),
        };
        let mut m = coord.join(info).await.expect("join");
        let epoch = tokio::time::timeout(Duration::from_secs(30), m.wait_active()).await.expect("active in 30 s").expect("activity");
        Rig { dir, kam, coord, fence: Fence { group: GROUP, epoch }, _member: m }
    }

    /// A SIPp phone registered as `user@example.test`.
    pub fn phone(&self, scenario_name: &str, user: &str, args: &[&str]) -> Phone {
        Phone::start(&scenario(scenario_name), self.dir.path(), user, DOMAIN, self.kam.sip_port, args).expect("phone")
    }

    /// The engine on a port of its own, with these credentials.
    pub async fn engine(&self, credentials: Option<(&str, &str)>) -> Arc<Engine> {
        self.engine_with(credentials, 0).await
    }

    /// The engine, with a session timer of `session_s` seconds (0: none).
    pub async fn engine_with(&self, credentials: Option<(&str, &str)>, session_s: u32) -> Arc<Engine> {
        self.engine_on(credentials, session_s, SipTransport::Udp).await
    }

    /// The engine sending on `transport`.
    pub async fn engine_on(&self, credentials: Option<(&str, &str)>, session_s: u32, transport: SipTransport) -> Arc<Engine> {
        let opts = UaOptions {
            ip: "127.0.0.1".parse().unwrap(),
            port: free_sip_port(),
            transports: vec![transport],
            proxy: format!("127.0.0.1:{}", self.kam.sip_port).parse().unwrap(),
            credentials: credentials.map(|(u, p)| SipCredentials { user: u.into(), password: mware_config::Secret::new(p), realm: None }),
            user: credentials.map(|c| c.0).unwrap_or("mware").into(),
            contact: None,
        };
        let cancel = CancellationToken::new();
        let ua = Ua::start(opts, cancel.clone()).await.expect("user agent");
        Arc::new(Engine {
            ua,
            store: Store::new(self.coord.clone(), self.fence),
            instance: "mware1".into(),
            on_change: Box::new(|_, _| {}),
            session_timer_s: session_s,
            cancel,
        })
    }

    /// Calls stored in the coordinator now.
    pub async fn stored(&self) -> usize {
        self.coord.kv_list(GROUP, mware_callmanager::store::PREFIX).await.unwrap().len()
    }
}

pub fn spec(id: &str, from: &str, to: &str, answer_timeout_s: u32) -> CallSpec {
    CallSpec {
        id: id.into(),
        domain: DOMAIN.into(),
        from: format!("sip:{from}@{DOMAIN}"),
        to: format!("sip:{to}@{DOMAIN}"),
        caller_id: Some("Operator".into()),
        answer_timeout_s,
        max_duration_s: 600,
        variables: serde_json::json!({}),
    }
}

pub fn start(eng: &Arc<Engine>, spec: CallSpec) -> CallHandle {
    call::start(eng.clone(), spec)
}

/// Waits until the call is in `state`, up to `secs`; its view then.
pub async fn wait_state(h: &CallHandle, state: CallState, secs: u64) -> CallView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = h.get();
        if v.state == state {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("call not {state:?} within {secs} s: {v:#?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
