//! The etcd v3 backend (works against etcd 3.4).
//!
//! Layout under the prefix (`/mware/<site>` by default):
//! - `groups/<g>/members/<instance>`: [`MemberInfo`] as JSON, attached to the member's lease;
//! - `groups/<g>/leader`: `{"instance", "since_ms"}`, created only if absent, attached to
//!   the leader's lease; **its create revision is the epoch** (it only grows);
//! - `groups/<g>/switchover`, `groups/<g>/transition`: JSON, no lease;
//! - `groups/<g>/kv/<key>`: service state; every write is one txn that first compares the
//!   leader key's create revision with the fence's epoch;
//! - `config`: the site file.
//!
//! Keep-alive streams are opened per lease and re-opened after any error (the client's
//! stream does not survive an etcd restart); a lease that is gone is granted again and the
//! member registered again by the election loop.
//!
//! With `coordination.tls` the client speaks TLS to `https://` endpoints, trusting the CA
//! file and presenting the client certificate when one is set (mutual TLS); the options
//! are built once and reused when the client reconnects (see `etcd_tls.rs`).

use crate::api::*;
use crate::election::{Candidate, SeenLeader, SwitchoverRequest, View};
use crate::member::{self, Backend, LeaseId};
use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions, WatchStream,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

#[path = "etcd_tls.rs"]
mod tls;
use tls::{new_client, probe};

/// Keys per page of a list.
const LIST_PAGE: i64 = 64;
/// Largest answer a list page may decode: 64 values at etcd's 1.5 MiB request limit.
const LIST_MESSAGE_MAX: usize = 128 << 20;

/// The end of etcd's range for every key starting with `start`.
fn prefix_end(start: &[u8]) -> Vec<u8> {
    match start.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = start[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// The etcd coordinator. Cheap to clone.
#[derive(Clone)]
pub struct EtcdCoordinator {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// Built once from `coordination.tls`; every (re)connect uses them.
    tls: Option<etcd_client::TlsOptions>,
    /// Replaced when etcd no longer accepts our auth token (it forgets them on restart).
    client: std::sync::RwLock<Client>,
    reconnecting: std::sync::atomic::AtomicBool,
    prefix: String,
    keepers: Mutex<HashMap<LeaseId, (LeaseKeeper, LeaseKeepAliveStream)>>,
}

pub(super) fn unavailable(e: etcd_client::Error) -> CoordError {
    CoordError::Unavailable(format!("etcd: {}", tls::describe(&e)))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LeaderValue {
    instance: String,
    since_ms: u64,
}

fn check_key(key: &str) -> Result<(), CoordError> {
    if key.is_empty() || key.contains('\0') {
        return Err(CoordError::Invalid(format!("expected a non-empty key without NUL bytes, found {key:?}")));
    }
    Ok(())
}

fn check_value(v: &[u8]) -> Result<(), CoordError> {
    const MAX: usize = 1024 * 1024;
    if v.len() > MAX {
        return Err(CoordError::Invalid(format!("expected a value of at most {MAX} bytes, found {} bytes", v.len())));
    }
    Ok(())
}

/// Opens a watch and waits for etcd to confirm it (its "created" answer), so that a
/// resync sent after this returns cannot miss a change made before the watch existed.
/// A watch that etcd refuses at once (created and canceled, e.g. permission denied) is an
/// error with etcd's reason.
async fn open_watch(mut client: Client, key: String, opts: Option<WatchOptions>) -> Result<WatchStream, etcd_client::Error> {
    let mut stream = client.watch(key, opts).await?;
    match stream.message().await? {
        Some(r) if r.created() && !r.canceled() => Ok(stream),
        Some(r) if r.canceled() => Err(etcd_client::Error::WatchError(format!("etcd canceled the watch: {}", r.cancel_reason()))),
        Some(_) => Err(etcd_client::Error::WatchError("expected etcd to confirm the new watch, found another answer".into())),
        None => Err(etcd_client::Error::WatchError("etcd closed the watch stream before confirming the watch".into())),
    }
}

fn get_kvs(r: &TxnOpResponse) -> &[KeyValue] {
    match r {
        TxnOpResponse::Get(g) => g.kvs(),
        _ => &[],
    }
}

impl EtcdCoordinator {
    /// Connects to the etcd endpoints of `settings` (user/password if set; TLS, mutual
    /// if a client certificate is set, with `coordination.tls` and `https://` endpoints).
    /// With TLS, one request is made at once so that a refused handshake (unknown CA, no
    /// client certificate) is an error here rather than on every later call.
    pub async fn connect(settings: Settings) -> Result<Self, CoordError> {
        let c = &settings.coordination;
        if c.endpoints.is_empty() {
            return Err(CoordError::Invalid("expected at least one etcd endpoint, found none".into()));
        }
        let tls = tls::options(c.tls.as_ref(), &c.endpoints)?;
        let client = match (new_client(&settings, tls.as_ref()).await, &c.tls) {
            (Ok(client), _) => client,
            (Err(e), Some(files)) => return Err(tls::unparsable(&e.to_string(), files).unwrap_or(e)),
            (Err(e), None) => return Err(e),
        };
        if tls.is_some() {
            let has_identity = c.tls.as_ref().is_some_and(|t| t.cert_file.is_some());
            probe(client.clone(), &c.endpoints, has_identity).await?;
        }
        let prefix = c.prefix_for(&settings.site).trim_end_matches('/').to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                tls,
                client: std::sync::RwLock::new(client),
                reconnecting: Default::default(),
                prefix,
                keepers: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn client(&self) -> Client {
        self.inner.client.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Maps an etcd error; when etcd rejects our auth token (it forgets tokens when it
    /// restarts), connects again in the background so that the next calls authenticate anew.
    fn err(&self, e: etcd_client::Error) -> CoordError {
        use std::sync::atomic::Ordering;
        let text = e.to_string();
        if text.contains("invalid auth token") && !self.inner.reconnecting.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            tokio::spawn(async move {
                match new_client(&me.inner.settings, me.inner.tls.as_ref()).await {
                    Ok(c) => {
                        tracing::info!("etcd rejected the auth token; authenticated again");
                        *me.inner.client.write().unwrap_or_else(|p| p.into_inner()) = c;
                        me.inner.keepers.lock().await.clear();
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot authenticate to etcd again"),
                }
                me.inner.reconnecting.store(false, Ordering::SeqCst);
            });
        }
        unavailable(e)
    }
    fn group_key(&self, g: u32, rest: &str) -> String {
        format!("{}/groups/{g}/{rest}", self.inner.prefix)
    }
    fn kv_key(&self, g: u32, key: &str) -> String {
        self.group_key(g, &format!("kv/{key}"))
    }
    fn config_key(&self) -> String {
        format!("{}/config", self.inner.prefix)
    }

    /// Checks that etcd answers (and keeps the client's auth token in use).
    pub(crate) async fn ping(&self) -> Result<(), CoordError> {
        self.head_revision(&self.config_key()).await.map(|_| ())
    }

    /// The store's revision now (and a check that etcd answers).
    async fn head_revision(&self, key: &str) -> Result<i64, CoordError> {
        let r = self.client().get(key, Some(GetOptions::new().with_count_only())).await.map_err(|e| self.err(e))?;
        Ok(r.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// A watch under `key` (a prefix if `prefix`) that re-opens after errors; `on` maps
    /// each event, `resync` is sent after a re-open. The first open starts right after
    /// revision `seen` (read before the caller returned), so nothing written after the
    /// watch was asked for is missed while the watch task starts.
    fn spawn_watch<T: Clone + Send + 'static>(
        &self,
        key: String,
        prefix: bool,
        seen: i64,
        tx: mpsc::Sender<T>,
        resync: Option<T>,
        on: impl Fn(&etcd_client::Event) -> Option<T> + Send + 'static,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let mut opts = WatchOptions::new();
                if prefix {
                    opts = opts.with_prefix();
                }
                if first {
                    opts = opts.with_start_revision(seen + 1);
                }
                let opts = Some(opts);
                let opened = tokio::select! {
                    _ = tx.closed() => return,
                    r = open_watch(me.client(), key.clone(), opts) => r,
                };
                match opened {
                    Ok(mut stream) => {
                        if !first {
                            if let Some(r) = resync.clone() {
                                if tx.send(r).await.is_err() {
                                    return;
                                }
                            }
                        }
                        first = false;
                        loop {
                            let msg = tokio::select! {
                                _ = tx.closed() => return,
                                m = stream.message() => m,
                            };
                            match msg {
                                Ok(Some(resp)) => {
                                    if resp.canceled() {
                                        break;
                                    }
                                    for ev in resp.events() {
                                        if let Some(t) = on(ev) {
                                            if tx.send(t).await.is_err() {
                                                return;
                                            }
                                        }
                                    }
                                }
                                Ok(None) | Err(_) => break,
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %me.err(e), "cannot open etcd watch"),
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
    }
}

#[async_trait]
impl Backend for EtcdCoordinator {
    async fn register(&self, m: &MemberInfo) -> Result<LeaseId, CoordError> {
        let ttl_s = self.inner.settings.coordination.lease_ttl_ms.div_ceil(1000).max(1) as i64;
        let mut c = self.client();
        let lease = c.lease_grant(ttl_s, None).await.map_err(|e| self.err(e))?.id();
        let value = serde_json::to_vec(m).map_err(|e| CoordError::Invalid(e.to_string()))?;
        let key = self.group_key(m.group, &format!("members/{}", m.instance));
        c.put(key, value, Some(PutOptions::new().with_lease(lease))).await.map_err(|e| self.err(e))?;
        Ok(lease)
    }

    async fn renew(&self, lease: LeaseId) -> Result<bool, CoordError> {
        // Taken out of the map while in use: if this call is cancelled by a timeout, the
        // stream is dropped and the next renewal opens a fresh one.
        let entry = self.inner.keepers.lock().await.remove(&lease);
        let (mut keeper, mut stream) = match entry {
            Some(e) => e,
            None => {
                // Opening the stream sends one keep-alive and reads its answer.
                return match self.client().lease_keep_alive(lease).await {
                    Ok(e) => {
                        self.inner.keepers.lock().await.insert(lease, e);
                        Ok(true)
                    }
                    Err(etcd_client::Error::LeaseKeepAliveError(m)) if m.contains("not found") => Ok(false),
                    Err(e) => Err(self.err(e)),
                };
            }
        };
        keeper.keep_alive().await.map_err(|e| self.err(e))?;
        match stream.message().await.map_err(|e| self.err(e))? {
            Some(r) if r.ttl() > 0 => {
                self.inner.keepers.lock().await.insert(lease, (keeper, stream));
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err(CoordError::Unavailable("etcd closed the keep-alive stream".into())),
        }
    }

    async fn view(&self, group: u32, lease: Option<LeaseId>) -> Result<View, CoordError> {
        let txn = Txn::new().and_then([
            TxnOp::get(self.group_key(group, "leader"), None),
            TxnOp::get(self.group_key(group, "members/"), Some(GetOptions::new().with_prefix())),
            TxnOp::get(self.group_key(group, "switchover"), None),
        ]);
        let r = self.client().txn(txn).await.map_err(|e| self.err(e))?;
        let ops = r.op_responses();
        let mut v = View::default();
        if let Some(kv) = ops.first().and_then(|o| get_kvs(o).first()) {
            let lv: LeaderValue = serde_json::from_slice(kv.value()).unwrap_or(LeaderValue { instance: "?".into(), since_ms: 0 });
            v.leader = Some(SeenLeader {
                instance: lv.instance,
                epoch: kv.create_revision() as u64,
                mine: lease.is_some_and(|l| l == kv.lease()),
            });
        }
        if let Some(o) = ops.get(1) {
            for kv in get_kvs(o) {
                if let Ok(m) = serde_json::from_slice::<MemberInfo>(kv.value()) {
                    v.members.push(Candidate { instance: m.instance, order: m.order, since_ms: m.since_ms });
                }
            }
        }
        if let Some(kv) = ops.get(2).and_then(|o| get_kvs(o).first()) {
            v.switchover = serde_json::from_slice::<SwitchoverRequest>(kv.value()).ok();
        }
        Ok(v)
    }

    async fn campaign(&self, m: &MemberInfo, lease: LeaseId) -> Result<Option<Epoch>, CoordError> {
        let key = self.group_key(m.group, "leader");
        let value = serde_json::to_vec(&LeaderValue { instance: m.instance.clone(), since_ms: now_ms() })
            .map_err(|e| CoordError::Invalid(e.to_string()))?;
        let txn = Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([TxnOp::put(
            key,
            value,
            Some(PutOptions::new().with_lease(lease)),
        )]);
        let r = self.client().txn(txn).await.map_err(|e| self.err(e))?;
        if !r.succeeded() {
            return Ok(None);
        }
        let rev = r.header().map(|h| h.revision()).unwrap_or(0);
        Ok(Some(rev as u64))
    }

    async fn release(&self, group: u32, epoch: Epoch) -> Result<(), CoordError> {
        let key = self.group_key(group, "leader");
        let txn =
            Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, epoch as i64)]).and_then([TxnOp::delete(key, None)]);
        self.client().txn(txn).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn record(&self, group: u32, t: &Transition) -> Result<(), CoordError> {
        let v = serde_json::to_vec(t).map_err(|e| CoordError::Invalid(e.to_string()))?;
        self.client().put(self.group_key(group, "transition"), v, None).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn clear_switchover(&self, group: u32) -> Result<(), CoordError> {
        self.client().delete(self.group_key(group, "switchover"), None).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn election_changes(&self, group: u32) -> Option<mpsc::Receiver<()>> {
        let (tx, rx) = mpsc::channel(1);
        let leader = self.group_key(group, "leader");
        let seen = self.head_revision(&leader).await.ok()?;
        for (key, prefix) in [(leader, false), (self.group_key(group, "members/"), true), (self.group_key(group, "switchover"), false)] {
            self.spawn_watch(key, prefix, seen, tx.clone(), Some(()), |_| Some(()));
        }
        Some(rx)
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), CoordError> {
        self.inner.keepers.lock().await.remove(&lease);
        self.client().lease_revoke(lease).await.map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[async_trait]
impl Coordinator for EtcdCoordinator {
    async fn join(&self, member: MemberInfo) -> Result<Membership, CoordError> {
        member::join(Arc::new(self.clone()), &self.inner.settings, member).await
    }

    async fn cluster(&self) -> Result<Vec<GroupView>, CoordError> {
        let base = format!("{}/groups/", self.inner.prefix);
        let r = self.client().get(base.clone(), Some(GetOptions::new().with_prefix().with_keys_only())).await.map_err(|e| self.err(e))?;
        let mut groups: Vec<u32> =
            r.kvs().iter().filter_map(|kv| kv.key_str().ok()?.strip_prefix(&base)?.split('/').next()?.parse().ok()).collect();
        groups.sort_unstable();
        groups.dedup();
        let mut out = Vec::new();
        for g in groups {
            let txn = Txn::new().and_then([
                TxnOp::get(self.group_key(g, "leader"), None),
                TxnOp::get(self.group_key(g, "members/"), Some(GetOptions::new().with_prefix())),
                TxnOp::get(self.group_key(g, "transition"), None),
            ]);
            let r = self.client().txn(txn).await.map_err(|e| self.err(e))?;
            let ops = r.op_responses();
            let leader = ops.first().and_then(|o| get_kvs(o).first()).and_then(|kv| {
                let lv: LeaderValue = serde_json::from_slice(kv.value()).ok()?;
                Some(Leader { instance: lv.instance, epoch: kv.create_revision() as u64, since_ms: lv.since_ms })
            });
            let mut members: Vec<MemberView> = ops
                .get(1)
                .map(|o| get_kvs(o).iter().filter_map(|kv| serde_json::from_slice::<MemberInfo>(kv.value()).ok()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .map(|info| MemberView { info, live: true })
                .collect();
            members.sort_by(|a, b| (a.info.order, &a.info.instance).cmp(&(b.info.order, &b.info.instance)));
            let last_transition = ops.get(2).and_then(|o| get_kvs(o).first()).and_then(|kv| serde_json::from_slice(kv.value()).ok());
            out.push(GroupView { group: g, members, leader, last_transition });
        }
        Ok(out)
    }

    async fn request_switchover(&self, group: u32, to: Option<String>) -> Result<(), CoordError> {
        let v = Backend::view(self, group, None).await?;
        let req = crate::election::switchover_request(group, &v, to, now_ms())?;
        let value = serde_json::to_vec(&req).map_err(|e| CoordError::Invalid(e.to_string()))?;
        self.client().put(self.group_key(group, "switchover"), value, None).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn kv_get(&self, group: u32, key: &str) -> Result<Option<Versioned>, CoordError> {
        check_key(key)?;
        let r = self.client().get(self.kv_key(group, key), None).await.map_err(|e| self.err(e))?;
        Ok(r.kvs().first().map(|kv| Versioned { value: kv.value().to_vec(), revision: kv.mod_revision() as u64 }))
    }

    /// In pages of [`LIST_PAGE`] keys, all read at the first page's revision (one
    /// consistent snapshot), each page allowed up to [`LIST_MESSAGE_MAX`]: a prefix larger
    /// than gRPC's default 4 MiB message (an alarms outbox with a long backlog) lists whole.
    async fn kv_list(&self, group: u32, prefix: &str) -> Result<Vec<(String, Versioned)>, CoordError> {
        let base = self.kv_key(group, "");
        let start = format!("{base}{prefix}").into_bytes();
        let end = prefix_end(&start);
        let mut kv = self.client().kv_client().max_decoding_message_size(LIST_MESSAGE_MAX);
        let (mut from, mut at, mut out) = (start, None, Vec::new());
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(LIST_PAGE);
            if let Some(rev) = at {
                opts = opts.with_revision(rev);
            }
            let r = kv.get(from.clone(), Some(opts)).await.map_err(|e| self.err(e))?;
            at = at.or_else(|| r.header().map(|h| h.revision()));
            out.extend(r.kvs().iter().filter_map(|kv| {
                let k = kv.key_str().ok()?.strip_prefix(&base)?.to_string();
                Some((k, Versioned { value: kv.value().to_vec(), revision: kv.mod_revision() as u64 }))
            }));
            match r.kvs().last() {
                Some(last) if r.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    async fn kv_apply(&self, fence: &Fence, ops: Vec<KvOp>) -> Result<u64, CoordError> {
        let mut tops = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                KvOp::Put { key, value } => {
                    check_key(&key)?;
                    check_value(&value)?;
                    tops.push(TxnOp::put(self.kv_key(fence.group, &key), value, None));
                }
                KvOp::Delete { key } => {
                    check_key(&key)?;
                    tops.push(TxnOp::delete(self.kv_key(fence.group, &key), None));
                }
                KvOp::DeleteRange { from, to } => {
                    check_key(&from)?;
                    check_range(&from, &to)?;
                    let opts = DeleteOptions::new().with_range(self.kv_key(fence.group, &to));
                    tops.push(TxnOp::delete(self.kv_key(fence.group, &from), Some(opts)));
                }
            }
        }
        let leader = self.group_key(fence.group, "leader");
        let txn = Txn::new()
            .when([Compare::create_revision(leader.clone(), CompareOp::Equal, fence.epoch as i64)])
            .and_then(tops)
            .or_else([TxnOp::get(leader, None)]);
        let r = self.client().txn(txn).await.map_err(|e| self.err(e))?;
        if r.succeeded() {
            return Ok(r.header().map(|h| h.revision() as u64).unwrap_or(0));
        }
        let current = r.op_responses().first().and_then(|o| get_kvs(o).first()).map(|kv| kv.create_revision() as u64);
        Err(CoordError::Fenced { group: fence.group, held: fence.epoch, current })
    }

    async fn kv_cas(&self, fence: &Fence, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool, CoordError> {
        check_key(key)?;
        check_value(&value)?;
        let leader = self.group_key(fence.group, "leader");
        let k = self.kv_key(fence.group, key);
        let cmp = match expected {
            Some(rev) => Compare::mod_revision(k.clone(), CompareOp::Equal, rev as i64),
            None => Compare::create_revision(k.clone(), CompareOp::Equal, 0),
        };
        let txn = Txn::new()
            .when([Compare::create_revision(leader.clone(), CompareOp::Equal, fence.epoch as i64), cmp])
            .and_then([TxnOp::put(k, value, None)])
            .or_else([TxnOp::get(leader, None)]);
        let r = self.client().txn(txn).await.map_err(|e| self.err(e))?;
        if r.succeeded() {
            return Ok(true);
        }
        let current = r.op_responses().first().and_then(|o| get_kvs(o).first()).map(|kv| kv.create_revision() as u64);
        if current != Some(fence.epoch) {
            return Err(CoordError::Fenced { group: fence.group, held: fence.epoch, current });
        }
        Ok(false)
    }

    async fn kv_watch(&self, group: u32, prefix: &str) -> Result<mpsc::Receiver<KvEvent>, CoordError> {
        let base = self.kv_key(group, "");
        let key = format!("{base}{prefix}");
        // Fails early when etcd cannot be reached.
        let seen = self.head_revision(&key).await?;
        let (tx, rx) = mpsc::channel(1024);
        self.spawn_watch(key, true, seen, tx, Some(KvEvent::Resync), move |ev| {
            let kv = ev.kv()?;
            let key = kv.key_str().ok()?.strip_prefix(&base)?.to_string();
            Some(match ev.event_type() {
                etcd_client::EventType::Put => KvEvent::Put { key, value: kv.value().to_vec(), revision: kv.mod_revision() as u64 },
                etcd_client::EventType::Delete => KvEvent::Delete { key },
            })
        });
        Ok(rx)
    }

    async fn config_get(&self) -> Result<Option<(String, u64)>, CoordError> {
        let r = self.client().get(self.config_key(), None).await.map_err(|e| self.err(e))?;
        Ok(r.kvs().first().map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.mod_revision() as u64)))
    }

    async fn config_put(&self, text: &str) -> Result<u64, CoordError> {
        check_value(text.as_bytes())?;
        let r = self.client().put(self.config_key(), text, None).await.map_err(|e| self.err(e))?;
        Ok(r.header().map(|h| h.revision() as u64).unwrap_or(0))
    }

    async fn config_watch(&self) -> Result<mpsc::Receiver<(String, u64)>, CoordError> {
        let seen = self.head_revision(&self.config_key()).await?;
        let (tx, rx) = mpsc::channel(16);
        self.spawn_watch(self.config_key(), false, seen, tx, None, |ev| {
            let kv = ev.kv()?;
            matches!(ev.event_type(), etcd_client::EventType::Put)
                .then(|| (String::from_utf8_lossy(kv.value()).into_owned(), kv.mod_revision() as u64))
        });
        Ok(rx)
    }
}
