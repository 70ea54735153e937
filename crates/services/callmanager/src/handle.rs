//! [`CallsService`], the cheap-to-clone handle, [`Inner`], the state it shares, and
//! [`Active`], one activity's calls: the service loop (`service.rs`) sets the activity,
//! the HTTP routes (`api.rs`) read it; the limits of new calls are checked here.

use crate::call::{self, CallHandle, CallSpec, CallView, Engine};
use crate::decide::CallState;
use crate::error::CallError;
use crate::metrics::Metrics;
use crate::section::SipConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long an ended call stays visible in the API.
const KEEP_ENDED: Duration = Duration::from_secs(600);
/// Most ended calls kept visible.
const MAX_ENDED: usize = 1000;

/// The callmanager service. Cheap to clone; build once per daemon.
#[derive(Clone)]
pub struct CallsService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub metrics: Metrics,
    pub active: RwLock<Option<Arc<Active>>>,
}

/// One activity: the engine and the calls it controls.
pub(crate) struct Active {
    pub eng: Arc<Engine>,
    pub cfg: SipConfig,
    pub group: u32,
    pub site: tokio::sync::watch::Receiver<Arc<mware_config::Site>>,
    pub calls: Mutex<HashMap<String, CallHandle>>,
    pub starts: Mutex<VecDeque<Instant>>,
    pub metrics: Metrics,
    /// The conferences, when the section names a mixer.
    pub rooms: Option<Arc<crate::rooms::Rooms>>,
    /// The voice notifications.
    pub notices: Arc<crate::notify::runner::Notices>,
}

impl Inner {
    pub fn active(&self) -> Result<Arc<Active>, CallError> {
        match &*self.active.read().unwrap_or_else(|e| e.into_inner()) {
            Some(a) => Ok(a.clone()),
            None => Err(CallError::NotRunning("not serving on this instance (passive, starting or stopping)".into())),
        }
    }
}

impl Active {
    /// The conferences, or why there are none.
    pub fn rooms(&self) -> Result<Arc<crate::rooms::Rooms>, CallError> {
        self.rooms.clone().ok_or_else(|| CallError::Conflict("no conferences here: the group's sip section names no mixer".into()))
    }

    /// Starts a call if no limit is reached.
    pub fn start(&self, spec: CallSpec) -> Result<CallView, CallError> {
        let l = &self.cfg.limits;
        {
            let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let live: Vec<CallView> = calls.values().map(|c| c.get()).filter(|v| v.state != CallState::Ended).collect();
            if live.len() >= l.calls_per_site as usize {
                self.metrics.limited.inc();
                return Err(CallError::Limited { msg: format!("{} live calls: calls_per_site reached", live.len()), retry_after_s: 5 });
            }
            let in_domain = live.iter().filter(|v| v.domain == spec.domain).count();
            if in_domain >= l.calls_per_domain as usize {
                self.metrics.limited.inc();
                return Err(CallError::Limited {
                    msg: format!("{in_domain} live calls in {}: calls_per_domain reached", spec.domain),
                    retry_after_s: 5,
                });
            }
            let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            while starts.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                starts.pop_front();
            }
            if starts.len() >= l.calls_per_second as usize {
                self.metrics.limited.inc();
                return Err(CallError::Limited {
                    msg: format!("{} calls started in the last second: calls_per_second reached", starts.len()),
                    retry_after_s: 1,
                });
            }
            starts.push_back(now);
        }
        self.metrics.started.inc();
        let id = spec.id.clone();
        let h = call::start(self.eng.clone(), spec);
        let view = h.get();
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).insert(id, h);
        Ok(view)
    }

    /// The call `id`.
    pub fn get(&self, id: &str) -> Result<CallHandle, CallError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned().ok_or_else(|| CallError::NotFound(format!("no call {id}")))
    }

    /// Views of the calls (of `domain` if given), newest first.
    pub fn list(&self, domain: Option<&str>) -> Vec<CallView> {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<CallView> = calls.values().map(|c| c.get()).filter(|v| domain.is_none_or(|d| v.domain == d)).collect();
        v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        v
    }

    /// Drops ended calls past [`KEEP_ENDED`] or beyond [`MAX_ENDED`].
    pub fn sweep(&self) {
        let now = mware_coord::now_ms();
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended: Vec<(u64, String)> = calls.iter().filter_map(|(id, c)| c.get().ended_ms.map(|t| (t, id.clone()))).collect();
        ended.sort();
        let over = ended.len().saturating_sub(MAX_ENDED);
        for (i, (t, id)) in ended.into_iter().enumerate() {
            if i < over || now.saturating_sub(t) > KEEP_ENDED.as_millis() as u64 {
                calls.remove(&id);
            }
        }
    }
}
