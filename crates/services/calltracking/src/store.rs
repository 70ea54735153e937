//! The static registrations in the group's coordinator KV, one key per account:
//! `calltracking/static/{domain}/{user}`. Written fenced; the registrar is made to
//! follow them (`reconcile`), so the next active instance keeps the same contacts. A
//! removed account is first marked `removing` and forgotten once its contact left the
//! registrar, so a failover in between still removes it.

use crate::error::TrackError;
use mware_coord::{Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Prefix of the static registrations in the group's KV space.
pub const PREFIX: &str = "calltracking/static/";

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The site file's `calltracking.static_registrations` (changed only there).
    Site,
    /// `PUT /api/registrations/v1/static/{domain}/{user}`.
    Api,
}

/// One static registration as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The domain (canonical).
    pub domain: String,
    /// The user part.
    pub user: String,
    /// The contact bound in the registrar (with `;transport=tcp` when asked).
    pub contact: String,
    /// Where it comes from.
    pub source: Source,
    /// Being removed: its contact leaves the registrar, then the entry is forgotten.
    #[serde(default)]
    pub removing: bool,
    /// When it was stored, ms since the Unix epoch.
    pub since_ms: u64,
}

impl Stored {
    /// The AoR as the registrar keys it (`user@domain`).
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// Its KV key.
    pub fn key(&self) -> String {
        key(&self.domain, &self.user)
    }
}

/// The KV key of `user@domain`.
pub fn key(domain: &str, user: &str) -> String {
    format!("{PREFIX}{domain}/{user}")
}

/// Fenced reads and writes of one activity.
#[derive(Clone)]
pub struct Store {
    coord: Arc<dyn Coordinator>,
    fence: Fence,
}

impl Store {
    /// Writes with `fence` to `coord`.
    pub fn new(coord: Arc<dyn Coordinator>, fence: Fence) -> Self {
        Store { coord, fence }
    }

    /// Writes (or rewrites) an entry.
    pub async fn put(&self, s: &Stored) -> Result<(), TrackError> {
        let value = serde_json::to_vec(s).map_err(|e| TrackError::Coord(e.to_string()))?;
        self.apply(KvOp::Put { key: s.key(), value }).await
    }

    /// Forgets an entry.
    pub async fn forget(&self, key: &str) -> Result<(), TrackError> {
        self.apply(KvOp::Delete { key: key.into() }).await
    }

    async fn apply(&self, op: KvOp) -> Result<(), TrackError> {
        self.coord.kv_apply(&self.fence, vec![op]).await.map(|_| ()).map_err(|e| TrackError::Coord(e.to_string()))
    }

    /// One entry.
    pub async fn get(&self, domain: &str, user: &str) -> Result<Option<Stored>, TrackError> {
        let v = self.coord.kv_get(self.fence.group, &key(domain, user)).await.map_err(|e| TrackError::Coord(e.to_string()))?;
        Ok(v.and_then(|v| serde_json::from_slice(&v.value).ok()))
    }

    /// Every entry of the group; unreadable ones are named in the second list.
    pub async fn load(&self) -> Result<(Vec<Stored>, Vec<String>), TrackError> {
        let rows = self.coord.kv_list(self.fence.group, PREFIX).await.map_err(|e| TrackError::Coord(e.to_string()))?;
        let (mut ok, mut bad) = (vec![], vec![]);
        for (key, v) in rows {
            match serde_json::from_slice::<Stored>(&v.value) {
                Ok(s) => ok.push(s),
                Err(_) => bad.push(key),
            }
        }
        Ok((ok, bad))
    }
}
