//! The `mware_host::Service` impl of [`CallsService`]: it starts the SIP user agent on the
//! active instance, takes over the calls the previous one wrote, starts new calls within
//! the limits, and serves the Calls API.

use crate::call::{self, CallView, Engine};
use crate::decide::{CallState, Side};
use crate::error::CallError;
use crate::handle::{Active, CallsService, Inner};
use crate::metrics::Metrics;
use crate::section::SipConfig;
use crate::store::Store;
use crate::ua::{Ua, UaOptions};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{EventKind, Events, Panel, Routes, Service, ServiceContext, ServiceState};
use prometheus_client::registry::Registry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Tracks what metrics and events need per call.
struct Tracker {
    metrics: Metrics,
    events: Events,
    seen: Mutex<HashMap<String, (CallState, [bool; 2])>>,
}

impl Tracker {
    fn changed(&self, v: &CallView, why: Option<&str>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (old, mut counted) = seen.get(&v.id).copied().map(|(s, c)| (Some(s), c)).unwrap_or((None, [false; 2]));
        for (i, side) in [Side::A, Side::B].into_iter().enumerate() {
            let code = v.legs[i].code.filter(|c| *c >= 200);
            if let (Some(c), false) = (code, counted[i]) {
                self.metrics.final_code(side, c);
                counted[i] = true;
            }
        }
        if old != Some(v.state) {
            self.metrics.moved(old, Some(v.state));
            if v.state == CallState::Connected {
                let secs = v.connected_ms.unwrap_or(v.created_ms).saturating_sub(v.created_ms) as f64 / 1000.0;
                self.metrics.setup_seconds.observe(secs);
            }
            let reason = v.ended.clone().or_else(|| why.map(str::to_string)).unwrap_or_default();
            let state = format!("{:?}", v.state).to_lowercase();
            self.events.publish(EventKind::Call { id: v.id.clone(), domain: v.domain.clone(), state, reason });
        }
        if v.state == CallState::Ended {
            seen.remove(&v.id);
        } else {
            seen.insert(v.id.clone(), (v.state, counted));
        }
    }
}

impl CallsService {
    /// Builds the service and registers its metrics in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        CallsService { inner: Arc::new(Inner { metrics: Metrics::new(registry), active: RwLock::new(None) }) }
    }

    async fn activate(&self, ctx: &ServiceContext) -> Result<Arc<Active>, CallError> {
        let site = ctx.site.borrow().clone();
        let placed = site.instance(&ctx.instance).ok_or_else(|| CallError::NotRunning(format!("{} is not in the site", ctx.instance)))?;
        let cfg = placed.role.section::<SipConfig>().ok_or_else(|| CallError::NotRunning("the group has no sip section".into()))?;
        let ip =
            placed.server.ifaces.get(&placed.role.iface).and_then(|a| a.parse().ok()).ok_or_else(|| CallError::Invalid {
                field: "iface".into(),
                msg: format!("no IP address for iface {:?}", placed.role.iface),
            })?;
        let proxy = crate::validate::proxy_addr(&cfg.outbound_proxy).ok_or_else(|| CallError::Invalid {
            field: "sip.outbound_proxy".into(),
            msg: format!("expected sip:IP:PORT, found {:?}", cfg.outbound_proxy),
        })?;
        let user = cfg.credentials.as_ref().map(|c| c.user.clone()).unwrap_or_else(|| "mware".into());
        let group = ctx.fence.group;
        let contact = cfg.registrar_rpc.as_ref().map(|_| crate::registrar::contact(group, proxy));
        let opts = UaOptions {
            ip,
            port: cfg.port,
            transports: cfg.transports.clone(),
            proxy,
            credentials: cfg.credentials.clone(),
            user,
            contact,
        };
        let cancel = ctx.cancel.child_token();
        let ua = Ua::start(opts, cancel.clone()).await?;
        if let Some(url) = &cfg.registrar_rpc {
            // The group contact names this instance from now on (before any call is taken over).
            let aor = crate::registrar::aor(group, proxy);
            crate::registrar::bind(url, &aor, &ua.local_uri()).await?;
            tracing::info!(aor, target = %ua.local_uri(), "group contact bound to this instance");
        }
        let tracker =
            Arc::new(Tracker { metrics: self.inner.metrics.clone(), events: ctx.events.clone(), seen: Mutex::new(HashMap::new()) });
        let eng = Arc::new(Engine {
            ua,
            store: Store::new(ctx.coord.clone(), ctx.fence),
            instance: ctx.instance.clone(),
            on_change: Box::new(move |v, why| tracker.changed(v, why)),
            session_timer_s: cfg.session_timer_s,
            cancel,
        });
        let rooms = match &cfg.mixer {
            Some(url) => Some(crate::rooms::Rooms::start(eng.clone(), url, ctx.fence.group).await?),
            None => None,
        };
        let notices = crate::notify::runner::Notices::start(eng.clone(), self.inner.metrics.clone()).await?;
        let active = Arc::new(Active {
            eng: eng.clone(),
            cfg,
            group: ctx.fence.group,
            site: ctx.site.clone(),
            calls: Mutex::new(HashMap::new()),
            starts: Mutex::new(VecDeque::new()),
            metrics: self.inner.metrics.clone(),
            rooms,
            notices,
        });
        let (saved, bad) = eng.store.load().await?;
        for k in bad {
            tracing::warn!(key = k, "unreadable saved call; left as it is");
        }
        let connected: std::collections::HashSet<String> = saved.iter().map(|s| s.view.id.clone()).collect();
        for s in saved {
            let id = s.view.id.clone();
            tracing::info!(call = %id, a = %s.a.tags(), b = %s.b.tags(), "call taken over from the previous active instance");
            self.inner.metrics.restored.inc();
            let h = call::resume(eng.clone(), s);
            (eng.on_change)(&h.get(), Some("taken over"));
            active.calls.lock().unwrap_or_else(|e| e.into_inner()).insert(id, h);
        }
        for s in eng.store.load_setup().await? {
            if connected.contains(&s.view.id) {
                continue; // connected after all: its set-up record was only not yet removed
            }
            tracing::warn!(call = %s.view.id, reason = %crate::setup::reason(&s), "call left unfinished by the previous active instance");
            let h = crate::setup::end(&eng, s).await;
            (eng.on_change)(&h.get(), Some("set-up interrupted by a failover"));
            active.calls.lock().unwrap_or_else(|e| e.into_inner()).insert(h.get().id, h);
        }
        Ok(active)
    }
}

#[async_trait]
impl Service for CallsService {
    fn name(&self) -> &'static str {
        "callmanager"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<SipConfig>().is_some()
    }

    fn routes(&self) -> Routes {
        let r = crate::conf_api::routes(self.inner.clone(), crate::api::routes(self.inner.clone()));
        crate::notify_api::routes(self.inner.clone(), r)
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        let mut doc = crate::api::openapi();
        doc.merge(crate::conf_api::openapi());
        doc.merge(crate::notify_api::openapi());
        Some(doc)
    }

    fn status_doc(&self) -> serde_json::Value {
        let Some(a) = self.inner.active.read().unwrap_or_else(|e| e.into_inner()).clone() else {
            return serde_json::Value::Null;
        };
        let live = a.list(None).iter().filter(|v| v.state != CallState::Ended).count();
        let running = a.notices.list(None).iter().filter(|n| n.state == "running").count();
        serde_json::json!({"live_calls": live, "contact": a.eng.ua.contact(), "dialogs": a.eng.ua.watched(),
            "notifications_running": running, "notification_numbers_open": a.notices.open_numbers()})
    }

    fn panels(&self) -> Vec<Panel> {
        crate::panels::panels()
    }

    async fn run(&self, ctx: ServiceContext) -> anyhow::Result<()> {
        ctx.status.set(ServiceState::Starting, format!("starting the SIP user agent (epoch {})", ctx.fence.epoch));
        let active = tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            a = self.activate(&ctx) => a.map_err(|e| anyhow::anyhow!(e.to_string()))?,
        };
        let restored = active.calls.lock().unwrap_or_else(|e| e.into_inner()).len();
        *self.inner.active.write().unwrap_or_else(|e| e.into_inner()) = Some(active.clone());
        ctx.status.set(
            ServiceState::Running,
            format!("SIP user agent at {} ({restored} calls taken over, epoch {})", active.eng.ua.contact(), ctx.fence.epoch),
        );
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = ctx.cancel.cancelled() => break,
                _ = tick.tick() => {
                    active.sweep();
                    active.notices.sweep().await;
                    if let Some(rooms) = &active.rooms {
                        let all = rooms.list(None);
                        let joined = all.iter().flat_map(|r| r.participants.values()).filter(|m| m.state == "joined").count();
                        self.inner.metrics.conferences.set(all.len() as i64);
                        self.inner.metrics.conference_participants.set(joined as i64);
                    }
                }
            }
        }
        *self.inner.active.write().unwrap_or_else(|e| e.into_inner()) = None;
        active.eng.cancel.cancel();
        Ok(())
    }
}
