//! One CTI adapter's shared state: where it listens, its state with the reason, its
//! clients, restarts and cuts; what status shows of it ([`AdapterView`]).

use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One adapter as status shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdapterView {
    /// The entry's key.
    pub key: String,
    /// Where it listens.
    pub address: String,
    /// `starting`, `running`, `failed` (restarted after a pause) or `unsupported`.
    pub state: String,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
    /// Why, in words.
    pub reason: String,
    /// Clients connected now.
    pub clients: usize,
    /// Restarts after a failure.
    pub restarts: u64,
    /// Clients cut for reading too slowly.
    pub cut: u64,
}

/// What an adapter and its clients share.
pub struct Adapter {
    /// Its key.
    pub key: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Clients connected now.
    pub clients: AtomicUsize,
    /// Clients cut.
    pub cut: AtomicU64,
    restarts: AtomicU64,
    state: Mutex<(String, u64, String)>,
}

impl Adapter {
    /// A new adapter, `starting`.
    pub fn new(key: String, addr: SocketAddr) -> Adapter {
        Adapter {
            key,
            addr,
            clients: AtomicUsize::new(0),
            cut: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            state: Mutex::new(("starting".into(), mware_config::now_ms(), String::new())),
        }
    }

    /// Counts a restart after a failure.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets its state and the reason.
    pub fn set(&self, state: &str, reason: impl Into<String>) {
        *self.state.lock().unwrap() = (state.into(), mware_config::now_ms(), reason.into());
    }

    /// Its view for status.
    pub fn view(&self) -> AdapterView {
        let (state, since_ms, reason) = self.state.lock().unwrap().clone();
        AdapterView {
            key: self.key.clone(),
            address: self.addr.to_string(),
            state,
            since_ms,
            reason,
            clients: self.clients.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
        }
    }
}
