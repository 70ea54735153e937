//! The embedded backend. (Stub: to be written.)

use crate::api::*;
use async_trait::async_trait;
use tokio::sync::mpsc;

/// The embedded coordinator.
pub struct EmbeddedCoordinator {
    #[allow(dead_code)]
    settings: Settings,
}

impl EmbeddedCoordinator {
    /// Opens the backend.
    pub async fn open(settings: Settings) -> Result<Self, CoordError> {
        Ok(Self { settings })
    }
}

#[async_trait]
impl Coordinator for EmbeddedCoordinator {
    async fn join(&self, _member: MemberInfo) -> Result<Membership, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn cluster(&self) -> Result<Vec<GroupView>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn request_switchover(&self, _group: u32, _to: Option<String>) -> Result<(), CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn kv_get(&self, _group: u32, _key: &str) -> Result<Option<Versioned>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn kv_list(&self, _group: u32, _prefix: &str) -> Result<Vec<(String, Versioned)>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn kv_apply(&self, _fence: &Fence, _ops: Vec<KvOp>) -> Result<u64, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn kv_cas(&self, _fence: &Fence, _key: &str, _expected: Option<u64>, _value: Vec<u8>) -> Result<bool, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn kv_watch(&self, _group: u32, _prefix: &str) -> Result<mpsc::Receiver<KvEvent>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn config_get(&self) -> Result<Option<(String, u64)>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn config_put(&self, _text: &str) -> Result<u64, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
    async fn config_watch(&self) -> Result<mpsc::Receiver<(String, u64)>, CoordError> {
        Err(CoordError::Unavailable("not implemented".into()))
    }
}
