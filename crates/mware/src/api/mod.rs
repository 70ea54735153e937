//! The HTTP API: shared state, the router, and the layers every request passes
//! (bearer auth for mutating calls, forwarding to the owning group's active instance).

mod auth;
mod forward;
mod handlers;
mod openapi;
mod openapi_services;

use crate::metrics::Metrics;
use axum::routing::{get, post};
use axum::Router;
use mware_config::{DomainTree, Secret, Site};
use mware_coord::{Activity, Coordinator};
use mware_host::Host;
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
}

/// The operator's bearer token, configured by `api.operator_token_env`.
pub struct OperatorToken {
    /// Name of the env variable it comes from (for error messages).
    pub env: String,
    /// The token; `None` when the variable is unset: the operator's calls are refused.
    pub token: Option<Secret>,
}

/// Builds the router: the daemon's own routes, then every service's routes, behind the
/// forwarding and auth layers.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/status", get(handlers::status))
        .route("/api/v1/route", get(handlers::route))
        .route("/api/v1/config", get(handlers::config))
        .route("/api/v1/cluster", get(handlers::cluster))
        .route("/api/v1/domains/{domain}", get(handlers::domain_owner))
        .route("/api/v1/groups/{group}/switchover", post(handlers::switchover))
        .with_state(state.clone());
    for svc in state.0.host.services() {
        r = r.merge(svc.router());
    }
    r.layer(axum::middleware::from_fn_with_state(state.clone(), forward::forward))
        .layer(axum::middleware::from_fn_with_state(state, auth::require_token))
}
