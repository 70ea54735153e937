//! [`AcmeService`]: the service's cheap-to-clone handle and what it holds (its metrics,
//! the HTTP-01 answers, the fence of the current activity, a wake-up for operator
//! requests); the API and the `Service` impl both use it.

use crate::http01::Tokens;
use crate::metrics::Metrics;
use crate::section::Acme;
use crate::store::{self, CertRec};
use mware_coord::{Coordinator, Fence};
use mware_host::InstanceEnv;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;

/// The acme service. Cheap to clone; build once at daemon start.
#[derive(Clone)]
pub struct AcmeService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) metrics: Metrics,
    pub(crate) env: OnceLock<InstanceEnv>,
    /// The coordinator and fence while the service runs here.
    pub(crate) running: Mutex<Option<(Arc<dyn Coordinator>, Fence)>>,
    /// Wakes the loop (an operator's renewal).
    pub(crate) wake: Notify,
    pub(crate) tokens: Tokens,
    /// The last decision per certificate, in words (status).
    pub(crate) decisions: Mutex<Vec<(String, String)>>,
}

impl AcmeService {
    /// A service with its metrics registered in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        AcmeService {
            inner: Arc::new(Inner {
                metrics: Metrics::new(registry),
                env: OnceLock::new(),
                running: Mutex::new(None),
                wake: Notify::new(),
                tokens: Tokens::default(),
                decisions: Mutex::new(Vec::new()),
            }),
        }
    }

    /// This instance's group and its `acme` section (from the running site file).
    pub(crate) fn section(&self) -> Option<(u32, Acme)> {
        let env = self.inner.env.get()?;
        let site = env.site.borrow().clone();
        let p = site.instance(&env.instance)?;
        Some((p.role.group, p.role.section::<Acme>()?))
    }

    /// The stored record of every certificate of the section, in file order.
    pub(crate) async fn records(&self) -> Result<(Acme, Vec<CertRec>), String> {
        let (group, acme) = self.section().ok_or("this instance's group has no acme section")?;
        let coord = self.inner.env.get().map(|e| e.coord.clone()).ok_or("not attached")?;
        let mut recs = Vec::new();
        for c in &acme.certificates {
            recs.push(store::load(coord.as_ref(), group, &c.name).await.map_err(|e| e.to_string())?);
        }
        Ok((acme, recs))
    }

    /// `{certificates: [...]}` as `GET /api/v1/certificates` shows it (never a key).
    pub async fn certificates(&self) -> Result<serde_json::Value, String> {
        let (acme, recs) = self.records().await?;
        let now = mware_config::now_ms();
        let certs: Vec<_> = acme.certificates.iter().zip(&recs).map(|(c, r)| crate::view::view(&acme, c, r, now)).collect();
        Ok(serde_json::json!({"certificates": certs}))
    }

    /// Asks for the renewal of `cert` (stored fenced, then the loop is woken); `Err` when
    /// the service does not run here or the write is refused.
    pub(crate) async fn request_renewal(&self, cert: &str) -> Result<(), String> {
        let (coord, fence) =
            self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).clone().ok_or("the acme service does not run here")?;
        let mut rec = store::load(coord.as_ref(), fence.group, cert).await.map_err(|e| e.to_string())?;
        rec.renew_requested = true;
        rec.retry_at_ms = 0;
        store::save(coord.as_ref(), &fence, cert, &rec).await.map_err(|e| e.to_string())?;
        self.inner.wake.notify_one();
        Ok(())
    }
}
