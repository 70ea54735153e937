//! The HTTP-01 responder: while the service runs (on the group's active instance only), it
//! answers `GET /.well-known/acme-challenge/{token}` on the role's `iface` address and
//! `http01.port` with the key authorization of a challenge in flight, and 404 to anything
//! else. Tokens are added just before the CA is told to look and removed after.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Most challenges answered at once (a bound: one per name of the orders in flight).
const MAX_TOKENS: usize = 1000;

/// The challenges in flight: token → key authorization. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Mutex<HashMap<String, String>>>);

impl Tokens {
    /// Answers `token` with `key_auth`; false when the bound is reached.
    pub fn add(&self, token: &str, key_auth: &str) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_TOKENS && !m.contains_key(token) {
            return false;
        }
        m.insert(token.to_string(), key_auth.to_string());
        true
    }

    /// Stops answering `token`.
    pub fn remove(&self, token: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(token);
    }

    fn get(&self, token: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned()
    }
}

async fn answer(State(tokens): State<Tokens>, Path(token): Path<String>) -> Response {
    match tokens.get(&token) {
        Some(k) => ([(header::CONTENT_TYPE, "application/octet-stream")], k).into_response(),
        None => (StatusCode::NOT_FOUND, "no such challenge\n").into_response(),
    }
}

/// Binds `addr` and serves `tokens` until `cancel`. Binding fails at once (the port is
/// taken, or privileged): the caller shows that.
pub async fn serve(addr: SocketAddr, tokens: Tokens, cancel: CancellationToken) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new().route("/.well-known/acme-challenge/{token}", get(answer)).with_state(tokens);
    tokio::spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::warn!(error = %e, "the HTTP-01 responder stopped");
        }
    });
    Ok(())
}
