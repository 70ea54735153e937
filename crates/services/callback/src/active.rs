//! One activity of the service: the group's orders in memory (the coordinator holds the
//! truth, written fenced on every change), the tick that starts what is due, and the
//! changes the API makes (create, cancel).

use crate::decide::{self, Step};
use crate::error::CallbackError;
use crate::local::Local;
use crate::metrics::Metrics;
use crate::order::{Order, OrderState};
use crate::section::CallbackConfig;
use crate::store::{self, Pending, Store};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// The running service on the active instance.
pub(crate) struct Active {
    pub store: Store,
    pub local: Local,
    cfg: std::sync::RwLock<CallbackConfig>,
    pub group: u32,
    pub instance: String,
    pub metrics: Metrics,
    pub cancel: CancellationToken,
    orders: Mutex<BTreeMap<String, Order>>,
    running: Mutex<HashSet<String>>,
}

impl Active {
    pub fn new(
        store: Store,
        local: Local,
        cfg: CallbackConfig,
        group: u32,
        instance: String,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Self {
        Active {
            store,
            local,
            cfg: std::sync::RwLock::new(cfg),
            group,
            instance,
            metrics,
            cancel,
            orders: Mutex::new(BTreeMap::new()),
            running: Mutex::new(HashSet::new()),
        }
    }

    /// The group's `callback` section as it is now (a reloaded site file applies at once).
    pub fn cfg(&self) -> CallbackConfig {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes a reloaded `callback` section.
    pub fn set_cfg(&self, cfg: CallbackConfig) {
        *self.cfg.write().unwrap_or_else(|e| e.into_inner()) = cfg;
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Order>> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the orders loaded from the coordinator.
    pub fn restore(&self, orders: Vec<Order>) {
        let mut m = self.lock();
        for o in orders {
            m.insert(o.id.clone(), o);
        }
    }

    /// A copy of order `id`.
    pub fn get(&self, id: &str) -> Option<Order> {
        self.lock().get(id).cloned()
    }

    /// The orders (of `domain`, in `state`), oldest first.
    pub fn list(&self, domain: Option<&str>, state: Option<OrderState>) -> Vec<Order> {
        let mut v: Vec<Order> =
            self.lock().values().filter(|o| domain.is_none_or(|d| o.domain == d) && state.is_none_or(|s| o.state == s)).cloned().collect();
        v.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        v
    }

    /// Changes order `id` with `f` and queues its write (in change order); `None` when
    /// there is no such order.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Order)) -> Option<(Order, Pending)> {
        let mut m = self.lock();
        let o = m.get_mut(id)?;
        f(o);
        let p = self.store.queue_put(o);
        Some((o.clone(), p))
    }

    /// Changes order `id` in memory only (why it waits: not worth a write).
    pub fn note(&self, id: &str, f: impl FnOnce(&mut Order)) {
        if let Some(o) = self.lock().get_mut(id) {
            f(o);
        }
    }

    /// Adds a new order, durable before it is answered; 429 past `max_open_per_domain`.
    pub async fn create(&self, o: Order) -> Result<Order, CallbackError> {
        let max = self.cfg().max_open_per_domain;
        let pending = {
            let mut m = self.lock();
            let open = m.values().filter(|x| x.domain == o.domain && !x.state.finished()).count();
            if open >= max {
                return Err(CallbackError::Limited(format!(
                    "{} has {open} open orders (callback.max_open_per_domain {}); try again later",
                    o.domain, max
                )));
            }
            let p = self.store.queue_put(&o);
            m.insert(o.id.clone(), o.clone());
            p
        };
        if let Err(e) = store::done(pending).await {
            self.lock().remove(&o.id);
            return Err(e);
        }
        self.metrics.created.inc();
        Ok(o)
    }

    /// Cancels order `id`: durable before it is answered; a call under way is hung up.
    pub async fn cancel_order(&self, id: &str) -> Result<Order, CallbackError> {
        let now = mware_coord::now_ms();
        let (o, pending) = {
            let mut m = self.lock();
            let o = m.get_mut(id).ok_or_else(|| CallbackError::NotFound(format!("no callback order {id}")))?;
            if o.state.finished() {
                return Err(CallbackError::Conflict(format!("order {id} is already {}: nothing to cancel", o.state.as_str())));
            }
            o.state = OrderState::Cancelled;
            o.reason = Some("cancelled through the API".into());
            o.ended_ms = Some(now);
            (o.clone(), self.store.queue_put(o))
        };
        store::done(pending).await?;
        if let Some(call) = o.open_attempt().and_then(|a| a.call_id.clone()) {
            if let Err(e) = self.local.hang_up(&call).await {
                tracing::warn!(order = id, call, error = %e, "cancelled order: its call could not be hung up now; it is followed to its end");
            }
        }
        Ok(o)
    }

    /// Gives up orders whose window closed, removes long-finished ones, and returns the
    /// orders that need an attempt task (never two for one order), already marked
    /// running; `attempt::start_due` runs them.
    pub fn tick(&self) -> Vec<String> {
        let now = mware_coord::now_ms();
        let cfg = self.cfg();
        let keep_ms = cfg.keep_finished_s * 1000;
        let mut start = vec![];
        let mut writes = vec![];
        {
            let mut m = self.lock();
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let mut old = vec![];
            for o in m.values_mut() {
                let policy = cfg.policy(o.queue.as_deref());
                match decide::next(o, &policy, now) {
                    Step::Dial | Step::Follow if !running.contains(&o.id) => start.push(o.id.clone()),
                    Step::Fail(why) => {
                        tracing::info!(order = %o.id, why, "callback order given up");
                        o.state = OrderState::Failed;
                        o.reason = Some(why);
                        o.ended_ms = Some(now);
                        writes.push(self.store.queue_put(o));
                    }
                    Step::Nothing if o.ended_ms.is_some_and(|t| now.saturating_sub(t) > keep_ms) => old.push(o.id.clone()),
                    _ => {}
                }
            }
            for id in old {
                m.remove(&id);
                writes.push(self.store.queue_delete(&id));
            }
            let mut counts = std::collections::HashMap::new();
            for o in m.values() {
                *counts.entry(o.state).or_insert(0i64) += 1;
            }
            for s in OrderState::ALL {
                self.metrics
                    .orders
                    .get_or_create(&crate::metrics::StateLabel { state: s.as_str().into() })
                    .set(*counts.get(&s).unwrap_or(&0));
            }
        }
        for w in writes {
            tokio::spawn(async move {
                if let Err(e) = store::done(w).await {
                    tracing::warn!(error = %e, "callback order change not written");
                }
            });
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for id in &start {
            running.insert(id.clone());
        }
        start
    }

    /// An attempt step of `id` is over (it may start again on a later tick).
    pub fn finished(&self, id: &str) {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Counts for the status document.
    pub fn counts(&self) -> serde_json::Value {
        let m = self.lock();
        let mut doc = serde_json::Map::new();
        for s in OrderState::ALL {
            doc.insert(s.as_str().into(), m.values().filter(|o| o.state == s).count().into());
        }
        serde_json::Value::Object(doc)
    }
}
