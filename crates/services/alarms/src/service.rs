//! [`AlarmsService`]: the `alarms` service. On the active instance of a group whose
//! `alarms` section is enabled it loads the group's outbox, listens for syslog on the
//! instance's `iface` address, turns matched messages and monitoring state changes
//! into alarms (written before they are sent), and runs one channel per SNMP manager
//! and the Telegram bot. A change of the section restarts the activity's parts.

use crate::handle::{AlarmsService, Handle};
use crate::intake::{Intake, Maker};
use crate::rules::Rules;
use crate::section::Alarms;
use crate::store::{self, Shared, Writer};
use async_trait::async_trait;
use mware_config::Role;
use mware_host::{InstanceEnv, Service, ServiceContext, ServiceState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Commands waiting for the writer (a syslog batch is one command of up to 256 alarms).
const QUEUE: usize = 256;

impl AlarmsService {
    fn section(ctx: &ServiceContext) -> Option<Alarms> {
        ctx.role().and_then(|r| r.section::<Alarms>()).filter(|a| a.enabled)
    }

    /// One activity with one section; `Ok(true)` when the section changed.
    async fn activity(&self, ctx: &mut ServiceContext, cfg: &Alarms) -> anyhow::Result<bool> {
        let rules = Rules::new(&cfg.rules).map_err(|e| anyhow::anyhow!("alarms.rules: {e}"))?;
        let (site_name, ip) = {
            let site = ctx.site.borrow();
            let ip = site.instance(&ctx.instance).and_then(|p| p.server.ifaces.get(&p.role.iface).cloned());
            (site.site.clone(), ip)
        };
        let (sinks, bot, problems) = channels(ctx, cfg);
        let names: Vec<String> = sinks.iter().map(|s| s.name()).collect();
        ctx.status.set(ServiceState::Starting, "loading the group's alarms");
        let log = store::load(ctx.coord.as_ref(), ctx.fence.group, &names).await?;
        let shared = Arc::new(Shared { log: Mutex::new(log), written: Default::default() });
        let maker = Arc::new(Maker {
            epoch: ctx.fence.epoch,
            next: AtomicU64::new(1),
            site: site_name,
            group: ctx.fence.group,
            instance: ctx.instance.clone(),
        });
        let stop = ctx.cancel.child_token();
        let tasks = TaskTracker::new();
        let (cmd_tx, cmd_rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            coord: ctx.coord.clone(),
            fence: ctx.fence,
            shared: shared.clone(),
            history: cfg.history,
            max_outbox: cfg.max_outbox,
            metrics: self.inner.metrics.clone(),
        };
        let writer_task = tokio::spawn(writer.run(cmd_rx, stop.clone()));
        // Batches of up to 256 messages: at most 64k messages wait for the intake.
        let (msg_tx, msg_rx) = mpsc::channel(256);
        let intake = Intake {
            maker: maker.clone(),
            rules,
            window_ms: cfg.window_ms,
            monitoring: cfg.monitoring.clone(),
            shared: shared.clone(),
            metrics: self.inner.metrics.clone(),
        };
        tasks.spawn(intake.run(msg_rx, ctx.events.subscribe(), cmd_tx.clone(), stop.clone()));
        let listening = match &cfg.syslog {
            Some(s) => self.listen(s, ip.as_deref(), msg_tx, &tasks, &stop).await?,
            None => vec![],
        };
        for sink in sinks {
            tasks.spawn(crate::channel::run(sink, shared.clone(), self.inner.metrics.clone(), stop.clone()));
        }
        let commands = bot.map(|(bot, poll_s)| {
            let c = crate::telegram::Commands {
                bot,
                coord: ctx.coord.clone(),
                fence: ctx.fence,
                site: ctx.site.clone(),
                shared: shared.clone(),
                writer: cmd_tx.clone(),
                poll_s,
            };
            tokio::spawn(c.run(stop.clone()))
        });
        *self.inner.active.lock().unwrap_or_else(|e| e.into_inner()) = Some(Handle { shared, writer: cmd_tx, maker });
        ctx.status.set(ServiceState::Running, running_reason(&listening, &names, cfg.rules.len(), &problems));
        tasks.close();
        let result = Self::watch(ctx, cfg, writer_task, commands).await;
        *self.inner.active.lock().unwrap_or_else(|e| e.into_inner()) = None;
        stop.cancel();
        tasks.wait().await;
        result
    }

    /// Binds the syslog receivers the section asks for on the instance's address `ip` and
    /// starts them; returns what listens, in words.
    async fn listen(
        &self,
        s: &crate::SyslogIn,
        ip: Option<&str>,
        msg_tx: mpsc::Sender<Vec<crate::rules::Msg>>,
        tasks: &TaskTracker,
        stop: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Vec<String>> {
        let ip: IpAddr = ip
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the instance's iface has no IP address to listen for syslog on"))?;
        let mut listening = Vec::new();
        if let Some(port) = s.udp_port {
            let addr = SocketAddr::new(ip, port);
            let sock = crate::syslog::bind_udp(addr).map_err(|source| crate::AlarmsError::Listen {
                transport: "udp",
                addr: addr.to_string(),
                source,
            })?;
            let (max, tx, m, stop) = (s.max_message_bytes, msg_tx.clone(), self.inner.metrics.clone(), stop.clone());
            tasks.spawn_blocking(move || crate::syslog::run_udp(sock, max, tx, m, stop));
            listening.push(format!("udp {addr}"));
        }
        if let Some(port) = s.tcp_port {
            let addr = SocketAddr::new(ip, port);
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|source| crate::AlarmsError::Listen {
                transport: "tcp",
                addr: addr.to_string(),
                source,
            })?;
            let limits = crate::syslog::TcpLimits {
                max_message: s.max_message_bytes,
                max_conns: s.max_connections,
                max_per_peer: s.per_peer(),
                idle: Duration::from_millis(s.tcp_idle_timeout_ms),
            };
            tasks.spawn(crate::syslog::run_tcp(l, limits, msg_tx, self.inner.metrics.clone(), stop.clone()));
            listening.push(format!("tcp {addr}"));
        }
        Ok(listening)
    }

    /// Waits for the end of the activity: cancelled (`Ok(false)`), the section changed
    /// (`Ok(true)`), or the group's store refused a write (`Err`). Stops the writer and the
    /// bot's commands on the way out.
    async fn watch(
        ctx: &mut ServiceContext,
        cfg: &Alarms,
        mut writer_task: tokio::task::JoinHandle<Result<(), mware_coord::CoordError>>,
        mut commands: Option<tokio::task::JoinHandle<Result<(), mware_coord::CoordError>>>,
    ) -> anyhow::Result<bool> {
        let result = loop {
            tokio::select! {
                _ = ctx.cancel.cancelled() => break Ok(false),
                r = &mut writer_task => break match r {
                    Ok(Err(e)) => Err(anyhow::anyhow!("alarms: cannot write to the group's store: {e}")),
                    _ => Ok(false),
                },
                r = async { commands.as_mut().expect("guarded").await }, if commands.is_some() => {
                    commands = None;
                    if let Ok(Err(e)) = r {
                        break Err(anyhow::anyhow!("alarms: telegram offset refused by the group's store: {e}"));
                    }
                }
                r = ctx.site.changed() => {
                    if r.is_err() { break Ok(false) }
                    if Self::section(ctx).as_ref() != Some(cfg) {
                        tracing::info!(instance = %ctx.instance, "alarms: the section changed; restarting the receiver and channels");
                        break Ok(true);
                    }
                }
            }
        };
        writer_task.abort();
        if let Some(c) = commands {
            c.abort();
        }
        result
    }
}

/// The section's channels: one per SNMP manager and the Telegram bot (with its poll
/// timeout, for its commands), and why a channel is off.
type Channels = (Vec<Box<dyn crate::channel::Sink>>, Option<(crate::telegram::Bot, u64)>, Vec<String>);

fn channels(ctx: &ServiceContext, cfg: &Alarms) -> Channels {
    let mut sinks: Vec<Box<dyn crate::channel::Sink>> = Vec::new();
    let engine = crate::snmp::default_engine_id(ctx.fence.group, &ctx.instance);
    for m in &cfg.snmp {
        sinks.push(Box::new(crate::snmp::Manager::new(m.clone(), engine.clone())));
    }
    let mut bot = None;
    let mut problems = Vec::new();
    if let Some(t) = &cfg.telegram {
        match crate::telegram::Bot::new(t) {
            Ok(b) => {
                sinks.push(Box::new(crate::telegram::Channel(b.clone())));
                bot = Some((b, t.poll_timeout_s));
            }
            Err(e) => problems.push(format!("telegram is off: {e}")),
        }
    }
    (sinks, bot, problems)
}

/// The status of a running activity, in words.
fn running_reason(listening: &[String], channels: &[String], rules: usize, problems: &[String]) -> String {
    let what = if listening.is_empty() { "no syslog receiver".to_string() } else { format!("syslog on {}", listening.join(", ")) };
    let chans = if channels.is_empty() { "no channel".to_string() } else { channels.join(", ") };
    let mut reason = format!("{what}; {rules} rule(s); sending to {chans}");
    for p in problems {
        reason.push_str("; ");
        reason.push_str(p);
    }
    reason
}

#[async_trait]
impl Service for AlarmsService {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn wanted(&self, role: &Role) -> bool {
        role.section::<Alarms>().is_some_and(|a| a.enabled)
    }

    fn routes(&self) -> mware_host::Routes {
        crate::api::routes(self.clone())
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        Some(crate::api::openapi())
    }

    fn attach(&self, _env: &InstanceEnv) {}

    fn panels(&self) -> Vec<mware_host::Panel> {
        use mware_host::{Action, Column, Panel};
        vec![Panel {
            title: "Open alarms",
            source: "/api/v1/alarms",
            rows: "/open",
            total: "/open_total",
            columns: vec![
                Column::text("id", "/id"),
                Column::text("severity", "/severity"),
                Column::text("rule", "/rule"),
                Column::text("where", "/host"),
                Column::fmt("since", "/at_ms", "ms_ago"),
                Column::text("why", "/message"),
            ],
            actions: vec![Action {
                label: "Acknowledge",
                method: "POST",
                path: "/api/v1/alarms/{/id}/ack",
                body: serde_json::json!({}),
                confirm: "Acknowledge alarm {/id} ({/rule} on {/host})?",
            }],
            empty: "no open alarm",
            nested: None,
        }]
    }

    fn status_doc(&self) -> serde_json::Value {
        match self.active() {
            Some(h) => {
                let log = h.shared.log.lock().unwrap_or_else(|e| e.into_inner());
                let channels: Vec<_> =
                    log.channels().into_iter().map(|(c, _, b)| serde_json::json!({"channel": c, "backlog": b})).collect();
                serde_json::json!({"open": log.open_count(), "channels": channels})
            }
            None => serde_json::Value::Null,
        }
    }

    async fn run(&self, mut ctx: ServiceContext) -> anyhow::Result<()> {
        loop {
            let Some(cfg) = Self::section(&ctx) else { return Ok(()) };
            if !self.activity(&mut ctx, &cfg).await? {
                return Ok(());
            }
        }
    }
}
