//! `mware run`: one instance of the site. Joins its group through the coordinator,
//! runs the group's services while active, serves the HTTP API, reloads the
//! config on SIGHUP / file change / `mware config push`, and on SIGTERM stops its
//! services and leaves the group within `api.drain_timeout_ms`.

use crate::api::{self, AppState, Inner, OperatorToken};
use crate::cli::LogFormat;
use crate::companion_supervisor::Companion;
use crate::load::{self, Loaded};
use crate::metrics::{Metrics, TransitionLabels};
use crate::reload::{reload_loop, Source};
use anyhow::Context;
use backon::{BackoffBuilder, ExponentialBuilder};
use mware_config::{Backend, DomainTree, Secret, Site};
use mware_coord::{Activity, Coordinator, MemberInfo};
use mware_host::{Events, Host};
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Cancels `cancel` on SIGTERM or SIGINT.
pub fn cancel_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "stopping"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "stopping"),
        }
        cancel.cancel();
    });
}

/// Runs the daemon until a stop signal.
pub async fn run(config: PathBuf, instance: String, log_format: LogFormat) -> anyhow::Result<()> {
    let (boot, whole) = load_file(&config)?;
    if boot.coordination.backend == Backend::Embedded {
        let path = Path::new(&boot.coordination.path);
        mware_coord::fsmode::private_parent(path).with_context(|| format!("cannot create the folder of {} (0700)", path.display()))?;
    }
    // The coordinator client and the membership loop live on a thread of their own, so that
    // no request handling on this runtime can delay a lease renewal or a step-down.
    let coord_rt = mware_coord::CoordRuntime::start().context("cannot start the coordinator thread")?;
    let coord = coord_rt.connect(&boot).await.context("cannot open the coordinator")?;
    let companion = Companion::new(&boot, log_format);
    let site = if whole { boot } else { stored_site(coord.as_ref(), &config).await? };
    let member = member_info(&site, &instance)?;
    let addr = member.address.clone();
    let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let (token, operator) = api_tokens(&site);
    let drain = Duration::from_millis(site.api.drain_timeout_ms);
    // The server's limits are read at start; a reload does not change them.
    let me_api = site.api.clone();
    let stop_timeout = Duration::from_millis(site.coordination.step_down_margin_ms.max(500));

    let (mut registry, metrics) = registry(&site, member.group, &instance);
    let services = crate::services::build(&mut registry);

    let tree = DomainTree::build(&site);
    let token_env = site.api.token_env.clone();
    let (site_tx, site_rx) = watch::channel(Arc::new(site));
    let (act_tx, act_rx) = watch::channel(Activity::Passive { reason: "joining the group".into() });
    let shutdown = CancellationToken::new();
    cancel_on_signals(shutdown.clone());

    let events = Events::new(instance.clone(), member.group);
    let host = Host::new(services, instance.clone(), coord.clone(), site_rx.clone(), stop_timeout, metrics.lease.clone(), events);
    let state = AppState(Arc::new(Inner {
        instance: instance.clone(),
        site: site_rx.clone(),
        tree: RwLock::new(Arc::new(tree)),
        activity: act_rx.clone(),
        coord: coord.clone(),
        host: host.clone(),
        registry,
        metrics: metrics.clone(),
        token,
        token_env,
        operator,
        http: reqwest::Client::builder().connect_timeout(Duration::from_secs(1)).timeout(Duration::from_secs(120)).build()?,
        leaders: Default::default(),
        ready: AtomicBool::new(false),
        started_ms: mware_coord::now_ms(),
        shutdown: shutdown.clone(),
    }));

    // Leaving the group waits until the services have stopped (see below).
    let leave = CancellationToken::new();
    let membership = coord_rt.handle().spawn(keep_membership(coord.clone(), member, act_tx, state.clone(), companion, leave.clone()));
    let host_stop = shutdown.child_token();
    let host_task = {
        let host = host.clone();
        let rx = act_rx.clone();
        tokio::spawn(async move { host.run(rx, host_stop).await })
    };
    tokio::spawn(log_activity(act_rx.clone(), metrics.clone(), instance.clone()));
    tokio::spawn(watch_cluster(coord.clone(), host.events().clone(), shutdown.clone()));
    tokio::spawn(reload_loop(Source { path: config, whole }, coord.clone(), site_tx, state.clone(), shutdown.clone()));

    tracing::info!(%instance, %addr, "serving the API");
    let app = api::router(state.clone());
    let server = tokio::spawn(mware_http::serve(listener, app, limits(&me_api), metrics.http.clone(), shutdown.clone()));

    shutdown.cancelled().await;
    stop_in_order(drain, host_task, leave, membership, server).await;
    Ok(())
}

/// This instance as a member of its group: the site must name it, and its `iface` must
/// have an address.
fn member_info(site: &Site, instance: &str) -> anyhow::Result<MemberInfo> {
    let me = site.instance(instance).with_context(|| not_found(site, instance))?;
    let addr = me.api_addr().with_context(|| format!("instance {instance}: iface {} has no address", me.role.iface))?;
    Ok(MemberInfo {
        instance: instance.to_string(),
        group: me.role.group,
        order: me.role.order,
        address: addr,
        version: env!("CARGO_PKG_VERSION").into(),
        since_ms: mware_coord::now_ms(),
    })
}

/// Stops within `drain`: services first; only then is the leader key released (so the
/// next instance cannot start its services while ours are still stopping), then the API.
async fn stop_in_order<H, M, S>(
    drain: Duration,
    host_task: tokio::task::JoinHandle<H>,
    leave: CancellationToken,
    membership: tokio::task::JoinHandle<M>,
    server: tokio::task::JoinHandle<S>,
) {
    let stopped = tokio::time::timeout(drain, async {
        let _ = host_task.await;
        leave.cancel();
        let _ = membership.await;
        let _ = server.await;
    })
    .await;
    leave.cancel();
    match stopped {
        Ok(()) => tracing::info!("stopped cleanly"),
        Err(_) => tracing::warn!(timeout_ms = drain.as_millis() as u64, "drain time limit reached; exiting"),
    }
}

/// The API server's limits from the site's `api` section (read at start; a reload does
/// not change them).
fn limits(api: &mware_config::ApiConfig) -> mware_http::Limits {
    mware_http::Limits {
        header_read_timeout: Duration::from_millis(api.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(api.idle_timeout_ms),
        request_timeout: Duration::from_millis(api.request_timeout_ms),
        max_connections: api.max_connections,
    }
}

/// The file given on the command line: a whole site (`true`, its warnings logged) or a
/// bootstrap naming only the coordinator (`false`).
fn load_file(config: &Path) -> anyhow::Result<(Site, bool)> {
    Ok(match load::load(config)? {
        Loaded::Site { site, warnings, .. } => {
            for w in &warnings {
                tracing::warn!(path = %w.path, problem = %w.message, "config warning");
            }
            (site, true)
        }
        Loaded::Bootstrap(site) => (site, false),
    })
}

/// The site file stored in the coordinator, for a daemon started with a bootstrap file.
async fn stored_site(coord: &dyn Coordinator, config: &Path) -> anyhow::Result<Site> {
    let (text, rev) = coord.config_get().await?.with_context(|| {
        format!("{}: has no servers, and no site file is stored in the coordinator (run `mware config push FILE`)", config.display())
    })?;
    let (site, _) = load::check(&text)
        .map_err(|e| anyhow::anyhow!("the site file stored in the coordinator (revision {rev}) is invalid:\n{}", load::lines(&e)))?;
    tracing::info!(revision = rev, "using the site file stored in the coordinator");
    Ok(site)
}

/// The API token and the operator's, from the environment variables the site names;
/// a missing one is logged with what is refused without it.
fn api_tokens(site: &Site) -> (Option<Secret>, Option<OperatorToken>) {
    let token = token_from_env(&site.api.token_env);
    if token.is_none() {
        tracing::warn!(env = %site.api.token_env, "no API token configured: mutating API calls are refused");
    }
    let operator = site.api.operator_token_env.clone().map(|env| OperatorToken { token: token_from_env(&env), env });
    if let Some(OperatorToken { env, token: None }) = &operator {
        tracing::warn!(%env, "no operator token in the environment: switchover and eviction are refused");
    }
    (token, operator)
}

/// The metrics registry with the daemon's own metrics and `mware_role_info{site,
/// mware_group, role} 1`, which lets alert rules sum `mware_active` per group (joined on
/// the scrape target's labels).
fn registry(site: &Site, group: u32, instance: &str) -> (Registry, Metrics) {
    let mut registry = Registry::default();
    let metrics = Metrics::default();
    metrics.register(&mut registry);
    let role_labels = vec![
        ("site".to_string(), site.site.clone()),
        ("mware_group".to_string(), group.to_string()),
        ("role".to_string(), instance.to_string()),
    ];
    registry.register("mware_role", "this instance's site, group and role name", prometheus_client::metrics::info::Info::new(role_labels));
    (registry, metrics)
}

fn not_found(site: &Site, instance: &str) -> String {
    let disabled = site.servers.iter().flat_map(|s| &s.roles).any(|r| r.name == instance && !r.enabled);
    if disabled {
        return format!("instance {instance} is disabled (enabled: false) and is never started");
    }
    let names: Vec<String> = site.instances().map(|p| p.role.name.clone()).collect();
    format!("--instance: expected one of {names:?}, found {instance:?}")
}

/// Joins the group (retrying while the coordinator is unreachable) and mirrors the
/// membership's activity into `act_tx` until `leave`; then leaves the group.
async fn keep_membership(
    coord: Arc<dyn Coordinator>,
    member: MemberInfo,
    act_tx: watch::Sender<Activity>,
    state: AppState,
    companion: Companion,
    leave: CancellationToken,
) {
    let mut pauses = COORD_RETRY.build();
    let membership = loop {
        match coord.join(member.clone()).await {
            Ok(m) => break m,
            Err(e) => {
                let pause = pauses.next().unwrap_or(COORD_RETRY_MAX);
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "cannot join the group yet; retrying");
                act_tx.send_replace(Activity::Passive { reason: format!("cannot join the group: {e}") });
                tokio::select! {
                    _ = leave.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    };
    *state.0.metrics.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(membership.lease.clone());
    let companion_stop = CancellationToken::new();
    let companion_task = tokio::spawn(companion.supervise(membership.lease_id.clone(), state.0.metrics.clone(), companion_stop.clone()));
    state.0.ready.store(true, Ordering::Relaxed);
    let mut rx = membership.activity.clone();
    loop {
        act_tx.send_replace(rx.borrow_and_update().clone());
        tokio::select! {
            _ = leave.cancelled() => break,
            r = rx.changed() => if r.is_err() { break },
        }
    }
    act_tx.send_replace(Activity::Passive { reason: "stopping".into() });
    membership.leave().await;
    // Left the group by ourselves: the companion has nothing left to revoke.
    companion_stop.cancel();
    let _ = companion_task.await;
}

async fn log_activity(mut rx: watch::Receiver<Activity>, metrics: Metrics, instance: String) {
    let mut last: Option<Activity> = None;
    loop {
        let a = rx.borrow_and_update().clone();
        if last.as_ref() != Some(&a) {
            let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            metrics.last_transition_seconds.set(secs as i64);
            match &a {
                Activity::Active { epoch, reason, .. } => {
                    metrics.active.set(1);
                    metrics.epoch.set(*epoch as i64);
                    metrics.transitions.get_or_create(&TransitionLabels { to: "active".into() }).inc();
                    tracing::info!(%instance, state = "active", epoch, %reason, "activity changed");
                }
                Activity::Passive { reason } => {
                    metrics.active.set(0);
                    metrics.epoch.set(0);
                    if last.as_ref().and_then(|l| l.epoch()).is_some() {
                        metrics.transitions.get_or_create(&TransitionLabels { to: "passive".into() }).inc();
                    }
                    tracing::info!(%instance, state = "passive", %reason, "activity changed");
                }
            }
            last = Some(a);
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// How often the coordinator's view of every group's active instance is read for the
/// event channel (the console shows a failover anywhere in the site within this).
const CLUSTER_POLL: Duration = Duration::from_millis(250);

/// Publishes `EventKind::Cluster` whenever a group's active instance or epoch changes in
/// the coordinator, so a console following any one instance sees every group's failovers.
async fn watch_cluster(coord: Arc<dyn Coordinator>, events: mware_host::Events, shutdown: CancellationToken) {
    let mut seen: std::collections::BTreeMap<u32, (Option<String>, Option<u64>)> = Default::default();
    let mut tick = tokio::time::interval(CLUSTER_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(views) = coord.cluster().await else { continue };
        for v in views {
            let now = (v.leader.as_ref().map(|l| l.instance.clone()), v.leader.as_ref().map(|l| l.epoch));
            if seen.get(&v.group) != Some(&now) {
                events.publish(mware_host::EventKind::Cluster { group: v.group, active: now.0.clone(), epoch: now.1 });
                seen.insert(v.group, now);
            }
        }
    }
}

/// Pauses between two attempts to reach the coordinator (joining the group, the companion's
/// connection): from 200 ms doubling to 1.5 s, each lengthened by a random share of itself
/// (instances started together do not retry in step): at most [`COORD_RETRY_MAX`].
pub(crate) const COORD_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(200))
    .with_max_delay(Duration::from_millis(1500))
    .with_jitter()
    .without_max_times();
/// The longest pause between two attempts to reach the coordinator.
pub(crate) const COORD_RETRY_MAX: Duration = Duration::from_secs(3);

/// A bearer token from the environment variable `name`; `None` when unset or empty.
fn token_from_env(name: &str) -> Option<Secret> {
    std::env::var(name).ok().filter(|t| !t.is_empty()).map(Secret::new)
}
