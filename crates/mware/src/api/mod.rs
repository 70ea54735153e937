//! The HTTP API: shared state, and the router built from declared routes (the
//! daemon's own and every service's), each behind the policy its declaration asks
//! for: credential, serving instance (here or forwarded to the owning group's active
//! instance), service running. Every request first passes the `Host` header check
//! (`hosts`, DNS rebinding).

mod auth;
mod console;
mod events;
mod forward;
mod handlers;
mod hosts;
mod openapi;
mod policy;

use crate::metrics::Metrics;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use mware_config::{DomainTree, Secret, Site};
use mware_coord::{Activity, Coordinator};
use mware_host::{Access, Host, Route, Routes, Scope};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::watch;

/// When a group's active instance was read, and its name and address if it has one.
pub type LeaderCache = (Instant, Option<(String, String)>);

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

/// The shared state behind [`AppState`].
pub struct Inner {
    /// This instance's name.
    pub instance: String,
    /// Running site config.
    pub site: watch::Receiver<Arc<Site>>,
    /// Domain tree of the running config.
    pub tree: RwLock<Arc<DomainTree>>,
    /// This instance's activity.
    pub activity: watch::Receiver<Activity>,
    /// The coordinator.
    pub coord: Arc<dyn Coordinator>,
    /// The service host.
    pub host: Host,
    /// All metrics.
    pub registry: Registry,
    /// The daemon's metrics.
    pub metrics: Metrics,
    /// Bearer token for mutating calls; `None` refuses them all.
    pub token: Option<Secret>,
    /// Name of the env variable the token comes from (for error messages).
    pub token_env: String,
    /// The operator's token (`api.operator_token_env`); `None` when not configured: the
    /// API token serves the operator's calls too.
    pub operator: Option<OperatorToken>,
    /// Client for forwarding.
    pub http: reqwest::Client,
    /// Cached group → (when read, active instance name and address).
    pub leaders: Mutex<HashMap<u32, LeaderCache>>,
    /// True once the instance has joined its group.
    pub ready: AtomicBool,
    /// Process start, ms since the Unix epoch.
    pub started_ms: u64,
    /// Cancelled when the daemon stops (ends live streams).
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The operator's bearer token, configured by `api.operator_token_env`.
pub struct OperatorToken {
    /// Name of the env variable it comes from (for error messages).
    pub env: String,
    /// The token; `None` when the variable is unset: the operator's calls are refused.
    pub token: Option<Secret>,
}

/// The daemon's own routes, declared like a service's.
fn own_routes(state: &AppState) -> Routes {
    const I: Scope = Scope::Instance;
    let s = |m: MethodRouter<AppState>| m.with_state(state.clone());
    Routes::new()
        .get("/", Access::Public, I, s(get(console::index)))
        .get("/console/app.js", Access::Public, I, s(get(console::app_js)))
        .get("/console/app.css", Access::Public, I, s(get(console::app_css)))
        .get("/api/v1/console", Access::Public, I, s(get(console::manifest)))
        .get("/healthz", Access::Public, I, s(get(handlers::healthz)))
        .get("/readyz", Access::Public, I, s(get(handlers::readyz)))
        .get("/metrics", Access::Public, I, s(get(handlers::metrics)))
        .get("/api/openapi.json", Access::Public, I, s(get(openapi::openapi_json)))
        .get("/api/v1/status", Access::Public, I, s(get(handlers::status)))
        .get("/api/v1/route", Access::Public, I, s(get(handlers::route)))
        .get("/api/v1/config", Access::Token, I, s(get(handlers::config)))
        .get("/api/v1/cluster", Access::Public, I, s(get(handlers::cluster)))
        .get("/api/v1/events", Access::Public, I, s(get(events::stream)))
        .get("/api/v1/domains/{domain}", Access::Public, Scope::Domain("domain"), s(get(handlers::domain_owner)))
        .post("/api/v1/groups/{group}/switchover", Access::Operator, I, s(post(handlers::switchover)))
}

/// Every declared route: the daemon's own (service `None`) and each service's.
pub fn declared(state: &AppState) -> Vec<(Option<&'static str>, Route)> {
    let mut all: Vec<_> = own_routes(state).0.into_iter().map(|r| (None, r)).collect();
    for svc in state.0.host.services() {
        all.extend(svc.routes().0.into_iter().map(|r| (Some(svc.name()), r)));
    }
    all
}

/// Builds the router from the declarations: each route behind the policy layer its
/// declaration asks for (credential, serving instance, service running).
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (service, route) in declared(&state) {
        let policy = Arc::new(policy::Policy {
            service,
            access: route.access,
            scope: route.scope,
            unavailable: route.unavailable,
            anywhere: route.anywhere,
            gate: route.gate,
        });
        let layer = axum::middleware::from_fn_with_state((state.clone(), policy), policy::enforce);
        // `route_layer` skips the 405 fallback of a one-method route; an any-method route
        // (`any(..)`) is all fallback, so it takes the plain layer.
        let handler = if route.method.is_some() { route.handler.route_layer(layer) } else { route.handler.layer(layer) };
        r = r.route(route.path, handler);
    }
    r.fallback(policy::no_route)
        .method_not_allowed_fallback(policy::wrong_method)
        .layer(axum::middleware::from_fn_with_state(state.clone(), console::cors))
        .layer(axum::middleware::from_fn_with_state(state, hosts::check))
}

#[cfg(test)]
mod tests;
