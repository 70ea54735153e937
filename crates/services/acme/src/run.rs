//! The service's loop on the group's active instance: for each certificate, read its
//! record, [`decide`], act (issue, finish an order, deploy), store the outcome fenced,
//! show it (metrics, an `Item` event when its health changes), then sleep until the
//! earliest time a decision named, an operator's request or a new site file.

use crate::decide::{decide, Decision};
use crate::deploy;
use crate::dns01::Dns;
use crate::error::AcmeError;
use crate::handle::AcmeService;
use crate::issue::{self, IssueCx};
use crate::metrics::{CertLabels, ResultLabels, TargetLabels};
use crate::section::{Acme, Certificate, Challenge};
use crate::store::{self, CertRec};
use mware_host::{EventKind, ServiceContext, ServiceState};
use std::collections::HashMap;
use std::time::Duration;

/// Pauses after failures of issuing: from 30 s doubling to 1 h, with jitter.
const ISSUE_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(30))
    .with_max_delay(Duration::from_secs(3600))
    .with_jitter()
    .without_max_times();
/// Pauses after failures of a deploy: from 10 s doubling to 15 min, with jitter.
const DEPLOY_RETRY: backon::ExponentialBuilder = backon::ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(10))
    .with_max_delay(Duration::from_secs(900))
    .with_jitter()
    .without_max_times();
/// Immediate new attempts of one step after a refused nonce, before it counts as a failure.
const NONCE_ATTEMPTS: u32 = 5;
/// The longest sleep of the loop (the expiry and health are looked at again after it).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The `n`-th pause (0-based) of `b`.
fn pause(b: backon::ExponentialBuilder, n: u32) -> Duration {
    use backon::BackoffBuilder;
    b.build().nth(n as usize).unwrap_or(Duration::from_secs(3600))
}

/// What the loop keeps between passes.
struct Loop {
    svc: AcmeService,
    ctx: ServiceContext,
    /// The account, with the directory it belongs to.
    account: Option<(String, instant_acme::Account)>,
    dns: Option<Dns>,
    shown: HashMap<String, (mware_host::Health, String)>,
}

/// Runs until `ctx.cancel`.
pub async fn run(svc: AcmeService, ctx: ServiceContext) -> anyhow::Result<()> {
    let mut site = ctx.site.clone();
    let acme = section(&ctx)?;
    // Stops the responder whenever this run ends (a restart after an error binds again).
    let responder = ctx.cancel.child_token();
    let _stop_responder = responder.clone().drop_guard();
    start_responder(&svc, &ctx, &acme, responder).await?;
    let dns = match &acme.dns01 {
        Some(d) => {
            let secret = std::env::var(&d.tsig_key_env).map_err(|_| {
                anyhow::anyhow!(
                    "dns01.tsig_key_env: expected the environment variable {} to hold the TSIG secret, found it unset",
                    d.tsig_key_env
                )
            })?;
            Some(Dns::new(d, &secret)?)
        }
        None => None,
    };
    *svc.inner.running.lock().unwrap_or_else(|e| e.into_inner()) = Some((ctx.coord.clone(), ctx.fence));
    ctx.status.set(ServiceState::Running, format!("looking at {} certificates", acme.certificates.len()));
    let mut lp = Loop { svc: svc.clone(), ctx: ctx.clone(), account: None, dns, shown: HashMap::new() };
    let r = async {
        loop {
            let acme = section(&ctx)?;
            let (until, busy) = lp.pass(&acme).await?;
            let sleep =
                if busy { Duration::ZERO } else { Duration::from_millis(until.saturating_sub(mware_config::now_ms())).min(MAX_SLEEP) };
            tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(sleep) => {}
                _ = svc.inner.wake.notified() => {}
                r = site.changed() => if r.is_err() { return Ok(()) },
            }
        }
    }
    .await;
    *svc.inner.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
    r
}

fn section(ctx: &ServiceContext) -> anyhow::Result<Acme> {
    ctx.role().and_then(|r| r.section::<Acme>()).ok_or_else(|| anyhow::anyhow!("the group has no acme section"))
}

/// Binds the HTTP-01 responder when a certificate uses HTTP-01.
async fn start_responder(
    svc: &AcmeService,
    ctx: &ServiceContext,
    acme: &Acme,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    if !acme.certificates.iter().any(|c| c.challenge == Challenge::Http01) {
        return Ok(());
    }
    let ip = {
        let site = ctx.site.borrow();
        let p = site.instance(&ctx.instance).ok_or_else(|| anyhow::anyhow!("this instance is not in the site file"))?;
        p.server.ifaces.get(&p.role.iface).cloned().ok_or_else(|| anyhow::anyhow!("the role's iface has no address"))?
    };
    let ip: std::net::IpAddr = ip.parse().map_err(|_| anyhow::anyhow!("the role's iface address {ip:?} does not parse"))?;
    let addr = std::net::SocketAddr::new(ip, acme.http01.port);
    crate::http01::serve(addr, svc.inner.tokens.clone(), stop)
        .await
        .map_err(|e| anyhow::anyhow!("http01: cannot listen on {addr} for the CA's challenge requests: {e}"))?;
    tracing::info!(%addr, "answering HTTP-01 challenges");
    Ok(())
}

impl Loop {
    /// One pass over the certificates: the earliest time to look again, and whether
    /// something was done (then look again at once).
    async fn pass(&mut self, acme: &Acme) -> Result<(u64, bool), AcmeError> {
        let mut until = mware_config::now_ms() + MAX_SLEEP.as_millis() as u64;
        let mut busy = false;
        let mut reasons = Vec::new();
        for cert in &acme.certificates {
            let mut rec = store::load(self.ctx.coord.as_ref(), self.ctx.fence.group, &cert.name).await?;
            let now = mware_config::now_ms();
            let d = decide(&store::snapshot(acme, cert, &rec, now));
            tracing::info!(cert = %cert.name, decision = %d, "acme");
            reasons.push((cert.name.clone(), d.to_string()));
            match &d {
                Decision::Resume { .. } | Decision::Issue(_) => {
                    self.issue(acme, cert, &mut rec).await?;
                    busy = true;
                }
                Decision::Deploy(targets) => {
                    self.deploy(cert, &mut rec, targets).await?;
                    busy = true;
                }
                Decision::BackOff { until_ms, .. } | Decision::Wait { until_ms, .. } => until = until.min(*until_ms),
            }
            self.show(acme, cert, &rec);
            // Look again when its health would change by time alone (the alarm, the expiry).
            if let Some(i) = &rec.issued {
                let alarm = store::held(i).alarm_at(u64::from(acme.alarm_before_days) * 86_400_000);
                let now = mware_config::now_ms();
                until = [alarm, i.not_after_ms].into_iter().filter(|t| *t > now).fold(until, u64::min);
            }
        }
        let summary = reasons.iter().map(|(c, r)| format!("{c}: {r}")).collect::<Vec<_>>().join("; ");
        self.ctx.status.set(ServiceState::Running, if summary.is_empty() { "no certificates".into() } else { summary });
        *self.svc.inner.decisions.lock().unwrap_or_else(|e| e.into_inner()) = reasons;
        Ok((until, busy))
    }

    /// Issues (or finishes the order of) `cert`; a failure is stored with its backoff.
    /// `Err` only when the coordinator refuses (this instance is no longer active).
    async fn issue(&mut self, acme: &Acme, cert: &Certificate, rec: &mut CertRec) -> Result<(), AcmeError> {
        let mut result = Err(AcmeError::Ca("not tried".into()));
        for _ in 0..NONCE_ATTEMPTS {
            result = self.try_issue(acme, cert, rec).await;
            match &result {
                Err(e) if e.is_bad_nonce() => tracing::info!(cert = %cert.name, "the CA refused a nonce; trying again at once"),
                _ => break,
            }
        }
        let labels = |result| ResultLabels { cert: cert.name.clone(), result };
        match result {
            Ok(issued) => {
                tracing::info!(cert = %cert.name, serial = %issued.serial, not_after = %crate::decide::when(issued.not_after_ms), "certificate issued");
                rec.issued = Some(issued);
                rec.order = None;
                (rec.failures, rec.retry_at_ms, rec.last_error) = (0, 0, None);
                self.svc.inner.metrics.orders.get_or_create(&labels("ok")).inc();
            }
            Err(AcmeError::Coord(e)) => return Err(AcmeError::Coord(e)),
            Err(e) => {
                let wait = match &e {
                    AcmeError::RateLimited { wait, .. } => *wait,
                    _ => pause(ISSUE_RETRY, rec.failures),
                };
                tracing::warn!(cert = %cert.name, error = %e, wait_s = wait.as_secs(), "issuing failed");
                rec.failures += 1;
                rec.retry_at_ms = mware_config::now_ms() + wait.as_millis() as u64;
                rec.last_error = Some(e.to_string());
                self.svc.inner.metrics.orders.get_or_create(&labels("failed")).inc();
            }
        }
        store::save(self.ctx.coord.as_ref(), &self.ctx.fence, &cert.name, rec).await
    }

    async fn try_issue(&mut self, acme: &Acme, cert: &Certificate, rec: &mut CertRec) -> Result<store::Issued, AcmeError> {
        if self.account.as_ref().is_none_or(|(dir, _)| *dir != acme.directory_url) {
            self.account = Some((acme.directory_url.clone(), issue::account(acme, &self.ctx.coord, &self.ctx.fence).await?));
        }
        let (_, account) = self.account.as_ref().ok_or_else(|| AcmeError::Ca("no account".into()))?;
        let cx = IssueCx {
            account,
            tokens: &self.svc.inner.tokens,
            dns: self.dns.as_ref(),
            coord: &self.ctx.coord,
            fence: self.ctx.fence,
            instance: &self.ctx.instance,
        };
        issue::order(&cx, acme, cert, rec).await
    }

    /// Deploys to `targets` one after another; a failing one is stored with its retry time
    /// and the others go on.
    async fn deploy(&mut self, cert: &Certificate, rec: &mut CertRec, targets: &[String]) -> Result<(), AcmeError> {
        let Some(issued) = rec.issued.clone() else { return Ok(()) };
        let keys = mware_ssh::HostKeyPolicy::from(&self.ctx.site.borrow().ssh);
        for t in cert.targets.iter().filter(|t| targets.contains(&t.name)) {
            let r = deploy::deploy(t, &keys, &issued).await;
            let d = rec.deploys.entry(t.name.clone()).or_default();
            let labels = |result| ResultLabels { cert: cert.name.clone(), result };
            match r {
                Ok(done) => {
                    tracing::info!(cert = %cert.name, target = %t.name, serial = %done.serial, "certificate deployed and read back");
                    *d = store::DeployRec {
                        serial: Some(done.serial),
                        not_after_ms: Some(done.not_after_ms),
                        at_ms: mware_config::now_ms(),
                        ..Default::default()
                    };
                    self.svc.inner.metrics.deploys.get_or_create(&labels("ok")).inc();
                }
                Err(e) => {
                    tracing::warn!(cert = %cert.name, target = %t.name, error = %e, "deploy failed");
                    d.retry_at_ms = mware_config::now_ms() + pause(DEPLOY_RETRY, d.failures).as_millis() as u64;
                    d.failures += 1;
                    d.error = Some(e);
                    self.svc.inner.metrics.deploys.get_or_create(&labels("failed")).inc();
                }
            }
            store::save(self.ctx.coord.as_ref(), &self.ctx.fence, &cert.name, rec).await?;
        }
        Ok(())
    }

    /// Metrics, and an `Item` event when the certificate's health or reason changes.
    fn show(&mut self, acme: &Acme, cert: &Certificate, rec: &CertRec) {
        let m = &self.svc.inner.metrics;
        if let Some(i) = &rec.issued {
            m.expiry.get_or_create(&CertLabels { cert: cert.name.clone() }).set((i.not_after_ms / 1000) as i64);
        }
        for t in &cert.targets {
            if let Some(n) = rec.deploys.get(&t.name).and_then(|d| d.not_after_ms) {
                m.target_expiry.get_or_create(&TargetLabels { cert: cert.name.clone(), target: t.name.clone() }).set((n / 1000) as i64);
            }
        }
        let (h, why) = crate::view::health(acme, cert, rec, mware_config::now_ms());
        let changed = self.shown.get(&cert.name).is_none_or(|(oh, ow)| *oh != h || (h != mware_host::Health::Ok && *ow != why));
        if changed {
            self.ctx.events.publish(EventKind::Item {
                source: "acme".into(),
                item: cert.name.clone(),
                state: h.as_str().into(),
                reason: why.clone(),
            });
            self.shown.insert(cert.name.clone(), (h, why));
        }
    }
}
