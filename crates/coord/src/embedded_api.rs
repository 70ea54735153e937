//! The [`Coordinator`] operations of the embedded backend: cluster view, switchover
//! requests, fenced KV, config. Every write is one `BEGIN IMMEDIATE` transaction that
//! checks the fence first.

use super::*;

#[async_trait]
impl Coordinator for EmbeddedCoordinator {
    async fn join(&self, member: MemberInfo) -> Result<Membership, CoordError> {
        member::join(Arc::new(self.clone()), &self.settings, member).await
    }

    async fn cluster(&self) -> Result<Vec<GroupView>, CoordError> {
        self.with(move |c| {
            let now = now_ms() as i64;
            let mut groups: Vec<u32> = c
                .prepare("SELECT grp FROM members UNION SELECT grp FROM leaders ORDER BY 1")
                .map_err(sql)?
                .query_map([], |r| r.get(0))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            groups.dedup();
            let mut out = Vec::new();
            for g in groups {
                let mut members: Vec<MemberView> = c
                    .prepare(
                        "SELECT m.info, coalesce(s.expires_ms > ?2, 0) FROM members m LEFT JOIN leases s ON s.id = m.lease
                         WHERE m.grp = ?1",
                    )
                    .map_err(sql)?
                    .query_map(params![g, now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
                    .map_err(sql)?
                    .filter_map(|r| r.ok())
                    .filter_map(|(info, live)| Some(MemberView { info: serde_json::from_str(&info).ok()?, live }))
                    .collect();
                members.sort_by(|a, b| (a.info.order, &a.info.instance).cmp(&(b.info.order, &b.info.instance)));
                let leader = c
                    .query_row(
                        "SELECT l.instance, l.epoch, l.since_ms FROM leaders l JOIN leases s ON s.id = l.lease
                         WHERE l.grp = ?1 AND s.expires_ms > ?2",
                        params![g, now],
                        |r| Ok(Leader { instance: r.get(0)?, epoch: r.get::<_, i64>(1)? as u64, since_ms: r.get::<_, i64>(2)? as u64 }),
                    )
                    .optional()
                    .map_err(sql)?;
                let last_transition = c
                    .query_row("SELECT data FROM transitions WHERE grp = ?1", params![g], |r| r.get::<_, String>(0))
                    .optional()
                    .map_err(sql)?
                    .and_then(|d| serde_json::from_str(&d).ok());
                out.push(GroupView { group: g, members, leader, last_transition });
            }
            Ok(out)
        })
        .await
    }

    async fn request_switchover(&self, group: u32, to: Option<String>) -> Result<(), CoordError> {
        let v = Backend::view(self, group, None).await?;
        let req = json(&crate::election::switchover_request(group, &v, to, now_ms())?)?;
        self.with(move |c| {
            c.execute("INSERT OR REPLACE INTO switchover(grp, request) VALUES (?1, ?2)", params![group, req]).map_err(sql)?;
            Ok(())
        })
        .await
    }

    async fn kv_get(&self, group: u32, key: &str) -> Result<Option<Versioned>, CoordError> {
        check_key(key)?;
        let key = key.to_string();
        self.with(move |c| {
            c.query_row("SELECT value, revision FROM kv WHERE grp = ?1 AND key = ?2", params![group, key], |r| {
                Ok(Versioned { value: r.get(0)?, revision: r.get::<_, i64>(1)? as u64 })
            })
            .optional()
            .map_err(sql)
        })
        .await
    }

    async fn kv_list(&self, group: u32, prefix: &str) -> Result<Vec<(String, Versioned)>, CoordError> {
        let prefix = prefix.to_string();
        self.with(move |c| {
            let mut st = c
                .prepare_cached("SELECT key, value, revision FROM kv WHERE grp = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key")
                .map_err(sql)?;
            let rows = st
                .query_map(params![group, prefix], |r| {
                    Ok((r.get::<_, String>(0)?, Versioned { value: r.get(1)?, revision: r.get::<_, i64>(2)? as u64 }))
                })
                .map_err(sql)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql)?;
            Ok(rows)
        })
        .await
    }

    async fn kv_apply(&self, fence: &Fence, ops: Vec<KvOp>) -> Result<u64, CoordError> {
        for op in &ops {
            match op {
                KvOp::Put { key, .. } | KvOp::Delete { key } => check_key(key)?,
                KvOp::DeleteRange { from, to } => check_range(from, to)?,
            }
        }
        let fence = *fence;
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let now = now_ms() as i64;
            fenced(&tx, &fence, now)?;
            let rev = next(&tx, "revision").map_err(sql)?;
            let g = fence.group;
            for op in ops {
                match op {
                    KvOp::Put { key, value } => {
                        tx.execute(
                            "INSERT OR REPLACE INTO kv(grp, key, value, revision) VALUES (?1, ?2, ?3, ?4)",
                            params![g, key, value, rev],
                        )
                        .map_err(sql)?;
                        log(&tx, g, &key, Some(&value), rev).map_err(sql)?;
                    }
                    KvOp::Delete { key } => {
                        let n = tx.execute("DELETE FROM kv WHERE grp = ?1 AND key = ?2", params![g, key]).map_err(sql)?;
                        if n > 0 {
                            log(&tx, g, &key, None, rev).map_err(sql)?;
                        }
                    }
                    KvOp::DeleteRange { from, to } => {
                        let keys: Vec<String> = tx
                            .prepare("SELECT key FROM kv WHERE grp = ?1 AND key >= ?2 AND key < ?3")
                            .map_err(sql)?
                            .query_map(params![g, from, to], |r| r.get(0))
                            .map_err(sql)?
                            .collect::<Result<_, _>>()
                            .map_err(sql)?;
                        tx.execute("DELETE FROM kv WHERE grp = ?1 AND key >= ?2 AND key < ?3", params![g, from, to]).map_err(sql)?;
                        for key in keys {
                            log(&tx, g, &key, None, rev).map_err(sql)?;
                        }
                    }
                }
            }
            tx.execute("DELETE FROM kv_log WHERE seq < (SELECT max(seq) FROM kv_log) - ?1", params![LOG_KEEP]).map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(rev as u64)
        })
        .await
    }

    async fn kv_cas(&self, fence: &Fence, key: &str, expected: Option<u64>, value: Vec<u8>) -> Result<bool, CoordError> {
        check_key(key)?;
        let (fence, key) = (*fence, key.to_string());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let now = now_ms() as i64;
            fenced(&tx, &fence, now)?;
            let g = fence.group;
            let cur: Option<i64> = tx
                .query_row("SELECT revision FROM kv WHERE grp = ?1 AND key = ?2", params![g, key], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if cur.map(|r| r as u64) != expected {
                return Ok(false);
            }
            let rev = next(&tx, "revision").map_err(sql)?;
            tx.execute("INSERT OR REPLACE INTO kv(grp, key, value, revision) VALUES (?1, ?2, ?3, ?4)", params![g, key, value, rev])
                .map_err(sql)?;
            log(&tx, g, &key, Some(&value), rev).map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(true)
        })
        .await
    }

    async fn kv_watch(&self, group: u32, prefix: &str) -> Result<mpsc::Receiver<KvEvent>, CoordError> {
        let last = self.with(|c| c.query_row("SELECT coalesce(max(seq), 0) FROM kv_log", [], |r| r.get::<_, i64>(0)).map_err(sql)).await?;
        let (tx, rx) = mpsc::channel(1024);
        self.spawn_watch(group, prefix.to_string(), tx, last);
        Ok(rx)
    }

    async fn config_get(&self) -> Result<Option<(String, u64)>, CoordError> {
        self.with(|c| {
            c.query_row("SELECT text, revision FROM config WHERE id = 1", [], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .optional()
                .map_err(sql)
        })
        .await
    }

    async fn config_put(&self, text: &str) -> Result<u64, CoordError> {
        let text = text.to_string();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
            let rev = next(&tx, "revision").map_err(sql)?;
            tx.execute("INSERT OR REPLACE INTO config(id, text, revision) VALUES (1, ?1, ?2)", params![text, rev]).map_err(sql)?;
            tx.commit().map_err(sql)?;
            Ok(rev as u64)
        })
        .await
    }

    async fn config_watch(&self) -> Result<mpsc::Receiver<(String, u64)>, CoordError> {
        let mut last = self.config_get().await?.map(|(_, r)| r).unwrap_or(0);
        let (tx, rx) = mpsc::channel(16);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(POLL) => {}
                }
                if let Ok(Some((text, rev))) = me.config_get().await {
                    if rev > last {
                        last = rev;
                        if tx.send((text, rev)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(rx)
    }
}
