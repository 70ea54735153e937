//! What the callmanager benchmarks share: an engine that is the active instance of group 1
//! on an embedded coordinator in the bench's folder, with its SIP user agent on a free
//! loopback port sending through the bench's Kamailio; and the percentile of a sample.

use mware_callmanager::call::{Engine, OnChange};
use mware_callmanager::section::SipTransport;
use mware_callmanager::store::Store;
use mware_callmanager::ua::{Ua, UaOptions};
use mware_config::{Backend, Coordination};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, MemberInfo, Membership, Settings};
use mware_testkit::sip::free_sip_port;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The active engine and the membership that keeps it active (hold it
/// for the whole bench).
pub struct Active {
    pub eng: Arc<Engine>,
    pub _member: Membership,
}

/// Joins group 1 on an embedded coordinator in `dir`, waits to be active, and starts the
/// user agent towards Kamailio at `127.0.0.1:kam_sip_port`.
pub async fn active_engine(dir: &Path, kam_sip_port: u16, on_change: OnChange) -> Active {
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    let coord: Arc<dyn Coordinator> = Arc::new(EmbeddedCoordinator::open(Settings { site: "b".into(), coordination: c }).await.unwrap());
    let info = MemberInfo {
        instance: "b".into(),
        group: 1,
        order: 1,
        address: "127.0.0.1:1".into(),
        version: "b".into(),
        since_ms: mware_coord::now_ms(),
    };
    let mut member = coord.join(info).await.unwrap();
    let epoch = member.wait_active().await.unwrap();
    let opts = UaOptions {
        ip: "127.0.0.1".parse().unwrap(),
        port: free_sip_port(),
        transports: vec![SipTransport::Udp],
        proxy: format!("127.0.0.1:{kam_sip_port}").parse().unwrap(),
        credentials: None,
        user: "mware".into(),
        contact: None,
    };
    let cancel = CancellationToken::new();
    let ua = Ua::start(opts, cancel.clone()).await.unwrap();
    let eng = Arc::new(Engine {
        ua,
        store: Store::new(coord.clone(), Fence { group: 1, epoch }),
        instance: "b".into(),
        on_change,
        session_timer_s: 0,
        cancel,
    });
    Active { eng, _member: member }
}

/// The `p` quantile (0..=1) of `v` (sorted in place); NaN for no sample.
#[allow(dead_code)]
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
