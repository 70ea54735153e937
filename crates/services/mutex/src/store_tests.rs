//! Unit tests of the journal's batches and folds.

use super::*;

fn h(token: u64) -> HolderView {
    HolderView { owner: "a".into(), token, expires_at_ms: 5, granted_at_ms: 1, unconfirmed: false }
}

fn put(token: u64) -> Write {
    Write::Put { domain: "d".into(), name: "m".into(), limit: 1, holder: h(token) }
}

fn del(token: u64) -> Write {
    Write::Delete { domain: "d".into(), name: "m".into(), token }
}

fn keys(chunks: &[Vec<KvOp>]) -> Vec<String> {
    chunks
        .iter()
        .flatten()
        .map(|op| match op {
            KvOp::Put { key, .. } => format!("put {key}"),
            KvOp::Delete { key } => format!("delete {key}"),
            KvOp::DeleteRange { from, to } => format!("range {from}..{to}"),
        })
        .collect()
}

#[test]
fn the_last_change_to_a_record_wins_and_a_batch_is_one_journal_value() {
    let mut b = Batch::default();
    b.add(&[put(3)], 4);
    b.add(&[del(3), put(4)], 5);
    assert_eq!(b.key_count(), 2);
    let KvOp::Put { key, value } = b.journal_op(7) else { panic!("a put") };
    assert_eq!(key, "mutex/j/00000000000000000007");
    let back: Batch = serde_json::from_slice(&value).unwrap();
    assert_eq!(back.next_token(), 5);
    assert!(back.ops[&holder_key("d", "m", 3)].is_none(), "released");
    assert_eq!(back.ops[&holder_key("d", "m", 4)].as_ref().unwrap().holder.token, 4);
}

#[test]
fn a_fold_writes_only_the_net_effect_then_deletes_the_entries() {
    let mut base = Base::default();
    // Entries 1..=3: token 3 granted and released, token 4 granted.
    let mut net = Batch::default();
    for (writes, next) in [(vec![put(3)], 4), (vec![del(3)], 4), (vec![put(4)], 5)] {
        let mut b = Batch::default();
        b.add(&writes, next);
        net.merge(b);
    }
    let chunks = base.fold(net, 1, 4);
    assert_eq!(
        keys(&chunks),
        [
            "put mutex/counter".to_string(),
            format!("put {}", holder_key("d", "m", 4)),
            "range mutex/j/00000000000000000001..mutex/j/00000000000000000004".to_string(),
        ],
        "token 3 never reaches the records"
    );
    // Next fold: token 4 released; it is a record now, so it is deleted; the counter
    // did not move, so it is not rewritten.
    let mut b = Batch::default();
    b.add(&[del(4)], 5);
    let chunks = base.fold(b, 4, 5);
    assert_eq!(
        keys(&chunks),
        [format!("delete {}", holder_key("d", "m", 4)), "range mutex/j/00000000000000000004..mutex/j/00000000000000000005".to_string()]
    );
}

#[test]
fn big_batches_split_into_entries_and_chunks() {
    let mut b = Batch::default();
    let owner = "o".repeat(4000);
    let writes: Vec<Write> = (1..=300)
        .map(|t| Write::Put { domain: "d".into(), name: "m".into(), limit: 1000, holder: HolderView { owner: owner.clone(), ..h(t) } })
        .collect();
    b.add(&writes, 301);
    let entries = b.into_entries();
    assert!(entries.len() >= 2, "1.2 MB of records cannot be one value");
    assert_eq!(entries.iter().map(|e| e.key_count()).sum::<usize>(), 300);
    for e in &entries {
        assert_eq!(e.next_token(), 301, "every entry carries the counter");
        let KvOp::Put { value, .. } = e.journal_op(1) else { panic!() };
        assert!(value.len() <= 1024 * 1024, "{} bytes", value.len());
    }
    let mut all = Batch::default();
    for e in entries {
        all.merge(e);
    }
    let chunks = Base::default().fold(all, 1, 3);
    assert!(chunks.iter().all(|c| c.len() <= CHUNK_OPS));
    assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 302, "counter, 300 records, range delete");
    assert!(matches!(chunks.last().unwrap().last().unwrap(), KvOp::DeleteRange { .. }), "entries are deleted last");
}

/// An embedded coordinator in `dir`, this process active in group 1.
async fn active_coord(dir: &std::path::Path) -> (std::sync::Arc<dyn Coordinator>, mware_coord::Membership, mware_coord::Fence) {
    use mware_config::{Backend, Coordination};
    let c = Coordination { backend: Backend::Embedded, path: dir.join("coord.sqlite").display().to_string(), ..Default::default() };
    let coord: std::sync::Arc<dyn Coordinator> = std::sync::Arc::new(
        mware_coord::EmbeddedCoordinator::open(mware_coord::Settings { site: "t".into(), coordination: c }).await.unwrap(),
    );
    let info = mware_coord::MemberInfo {
        instance: "a".into(),
        group: 1,
        order: 10,
        address: "127.0.0.1:1".into(),
        version: "t".into(),
        since_ms: 0,
    };
    let mut m = coord.join(info).await.unwrap();
    let epoch = m.wait_active().await.unwrap();
    (coord, m, mware_coord::Fence { group: 1, epoch })
}

async fn apply_all(coord: &dyn Coordinator, fence: &mware_coord::Fence, chunks: Vec<Vec<KvOp>>) {
    for c in chunks {
        coord.kv_apply(fence, c).await.unwrap();
    }
}

/// Tokens of the saved holders (journal replayed), and the counter.
async fn saved(coord: &dyn Coordinator) -> (Vec<u64>, u64) {
    let s = load(coord, 1).await.unwrap();
    let mut tokens: Vec<u64> = s.holders.iter().map(|h| h.holder.token).collect();
    tokens.sort_unstable();
    (tokens, s.next_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fold_cut_short_before_its_range_delete_replays_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let (coord, m, fence) = active_coord(dir.path()).await;
    let coord = coord.as_ref();
    // Records: holders 1 and 2. Journal: 1 released and 3 granted; 2 released and 4
    // granted; 5 granted.
    let mut base = Base::default();
    let mut b = Batch::default();
    b.add(&[put(1), put(2)], 3);
    apply_all(coord, &fence, base.writes(b)).await;
    for (seq, writes, next) in [(1, vec![del(1), put(3)], 4), (2, vec![del(2), put(4)], 5), (3, vec![put(5)], 6)] {
        let mut b = Batch::default();
        b.add(&writes, next);
        coord.kv_apply(&fence, vec![b.journal_op(seq)]).await.unwrap();
    }
    let want = (vec![3, 4, 5], 6);
    assert_eq!(saved(coord).await, want, "the journal is replayed over the records");

    // Fold entries 1 and 2, stopping before the range delete: replaying them again over
    // records that already hold their effect changes nothing.
    let s = load(coord, 1).await.unwrap();
    let mut base = s.base;
    let mut net = Batch::default();
    for (writes, next) in [(vec![del(1), put(3)], 4), (vec![del(2), put(4)], 5)] {
        let mut b = Batch::default();
        b.add(&writes, next);
        net.merge(b);
    }
    let mut chunks = base.fold(net, 1, 3);
    let last = chunks.last_mut().unwrap().pop().unwrap();
    assert!(matches!(last, KvOp::DeleteRange { .. }));
    apply_all(coord, &fence, chunks).await;
    assert_eq!(saved(coord).await, want, "a fold cut short before its range delete");
    coord.kv_apply(&fence, vec![last]).await.unwrap();
    assert_eq!(saved(coord).await, want, "after the range delete");
    let journal: Vec<String> = coord.kv_list(1, JOURNAL).await.unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(journal, [journal_key(3)], "only the entry not folded is left");
    m.leave().await;
}
