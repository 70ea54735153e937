//! The writer's queue and the pure step that cuts it into one write's chunks: alarms not
//! yet written in raise order, the API's answers waiting for them, acknowledgements, and
//! [`take_chunks`], which takes what one KV transaction holds.

use crate::alarm::Alarm;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Most alarms in one chunk (one KV value).
pub const CHUNK: usize = 512;
/// A chunk closes once its JSON is this long.
pub const CHUNK_BYTES: usize = 96 << 10;
/// Most chunks in one write.
pub const CHUNKS_PER_WRITE: usize = 8;
/// Most alarms in one write.
pub const PER_WRITE: usize = 4 * CHUNK;
/// Most JSON in one write (etcd refuses requests over 1.5 MiB by default).
pub const WRITE_BYTES: usize = 1 << 20;
/// Most acknowledgements waiting for a write.
pub const MAX_ACKS: usize = 1024;
/// Most item states and acknowledgements in one write.
pub const MAX_EXTRA: usize = 48;

/// What the writer holds between writes.
#[derive(Default)]
pub struct Queue {
    /// Alarms not yet written, in raise order.
    pub alarms: VecDeque<Arc<Alarm>>,
    /// An API raise's answer, sent once `written` reaches its number.
    pub replies: VecDeque<(u64, oneshot::Sender<bool>)>,
    /// Acknowledgements: id, by whom, the answer.
    pub acks: VecDeque<(String, String, oneshot::Sender<Option<Alarm>>)>,
    /// Alarms ever queued.
    pub enqueued: u64,
    /// Alarms ever written.
    pub written: u64,
}

/// One KV value: the first alarm's key and the JSON array of `n` alarms.
pub struct Chunk {
    /// Key part of the first alarm (the value's key is `alarms/a/<first>`).
    pub first: String,
    /// `[alarm,alarm,...]`.
    pub json: Vec<u8>,
    /// How many alarms.
    pub n: usize,
}

/// Takes from the front of the queue what one write holds: at most [`PER_WRITE`] alarms
/// and [`WRITE_BYTES`] of JSON in at most [`CHUNKS_PER_WRITE`] chunks of at most
/// [`CHUNK`] alarms and [`CHUNK_BYTES`] (a larger alarm gets a chunk, and if need be a
/// write, of its own), and alarms with an item state only while `extra` (item states
/// and acknowledgements already in the write) is below [`MAX_EXTRA`]. With 16 recoveries,
/// the cursors (16 managers and Telegram) and 24 deletions a write stays below
/// `mware_coord::MAX_TXN_OPS` (128) and etcd's request size.
pub fn take_chunks(q: &mut Queue, extra: &mut usize) -> (Vec<Chunk>, Vec<Arc<Alarm>>) {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut alarms = Vec::new();
    let mut bytes = 0;
    while let Some(a) = q.alarms.front() {
        if alarms.len() >= PER_WRITE || (a.item.is_some() && *extra >= MAX_EXTRA) {
            break;
        }
        let open_new = match chunks.last() {
            None => true,
            Some(c) => c.n >= CHUNK || c.json.len() >= CHUNK_BYTES,
        };
        if open_new {
            if chunks.len() >= CHUNKS_PER_WRITE {
                break;
            }
            // Sized once: a buffer that grows by doubling past the allocator's medium
            // sizes costs fresh (zeroed) pages on every write.
            let mut json = Vec::with_capacity(CHUNK_BYTES + 4096);
            json.push(b'[');
            chunks.push(Chunk { first: a.key(), json, n: 0 });
        }
        let c = chunks.last_mut().expect("pushed above");
        let before = c.json.len();
        if c.n > 0 {
            c.json.push(b',');
        }
        if serde_json::to_writer(&mut c.json, &**a).is_err() {
            c.json.truncate(before);
            q.alarms.pop_front();
            continue;
        }
        let grew = c.json.len() - before;
        if !alarms.is_empty() && bytes + grew > WRITE_BYTES {
            c.json.truncate(before);
            if c.n == 0 {
                chunks.pop();
            }
            break;
        }
        bytes += grew;
        c.n += 1;
        *extra += a.item.is_some() as usize;
        alarms.push(q.alarms.pop_front().expect("front above"));
    }
    for c in &mut chunks {
        c.json.push(b']');
    }
    (chunks, alarms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{key_of, Source};

    fn alarm(n: u64, text_len: usize, item: bool) -> Arc<Alarm> {
        Arc::new(Alarm {
            id: format!("3-{n}"),
            at_ms: 1,
            source: Source::Syslog,
            rule: "r".into(),
            severity: "err".into(),
            host: "h".into(),
            app: "a".into(),
            message: "x".repeat(text_len),
            site: "s".into(),
            group: 1,
            instance: "i".into(),
            item: item.then(|| format!("probe/{n}")),
            state: item.then(|| "failing".to_string()),
            count: 1,
            open: true,
            acked: None,
        })
    }

    fn queue(alarms: impl IntoIterator<Item = Arc<Alarm>>) -> Queue {
        Queue { alarms: alarms.into_iter().collect(), ..Default::default() }
    }

    /// Every chunk parses back to its alarms, in order, keyed by its first.
    fn check(chunks: &[Chunk], alarms: &[Arc<Alarm>]) {
        let mut all = alarms.iter();
        for c in chunks {
            let back: Vec<Alarm> = serde_json::from_slice(&c.json).expect("a chunk is a JSON array of alarms");
            assert_eq!(back.len(), c.n);
            assert_eq!(c.first, back[0].key());
            for b in back {
                assert_eq!(&b, &**all.next().expect("no more alarms than taken"));
            }
        }
        assert!(all.next().is_none(), "every alarm taken is in a chunk");
    }

    #[test]
    fn a_burst_fills_chunks_of_512_up_to_one_write() {
        let mut q = queue((1..=5000).map(|n| alarm(n, 1, false)));
        let (chunks, alarms) = take_chunks(&mut q, &mut 0);
        assert_eq!(alarms.len(), PER_WRITE);
        assert_eq!(chunks.iter().map(|c| c.n).collect::<Vec<_>>(), vec![512; 4]);
        assert_eq!(chunks[1].first, key_of(3, 513));
        check(&chunks, &alarms);
        assert_eq!(q.alarms.len(), 5000 - PER_WRITE, "the rest waits for the next write");
    }

    #[test]
    fn long_messages_close_chunks_by_bytes_and_the_write_by_its_limit() {
        let mut q = queue((1..=100).map(|n| alarm(n, 30_000, false)));
        let (chunks, alarms) = take_chunks(&mut q, &mut 0);
        assert!(chunks.iter().all(|c| c.json.len() <= CHUNK_BYTES + 31_000 && c.n < CHUNK), "a chunk closes past 96 KiB");
        assert_eq!(chunks.len(), CHUNKS_PER_WRITE);
        check(&chunks, &alarms);
        let mut q = queue((1..=10).map(|n| alarm(n, 200_000, false)));
        let (chunks, alarms) = take_chunks(&mut q, &mut 0);
        let total: usize = chunks.iter().map(|c| c.json.len()).sum();
        assert_eq!(alarms.len(), 5, "five of 200 KB fit in 1 MiB, six do not");
        assert!(total <= WRITE_BYTES, "{total}");
        check(&chunks, &alarms);
    }

    #[test]
    fn one_alarm_larger_than_a_write_goes_alone() {
        let mut q = queue([alarm(1, 1_100_000, false), alarm(2, 10, false)]);
        let (chunks, alarms) = take_chunks(&mut q, &mut 0);
        assert_eq!((chunks.len(), alarms.len()), (1, 1));
        check(&chunks, &alarms);
        let (chunks, alarms) = take_chunks(&mut q, &mut 0);
        assert_eq!((chunks.len(), alarms.len(), alarms[0].id.as_str()), (1, 1, "3-2"));
    }

    #[test]
    fn item_states_stop_at_the_extra_operations_left() {
        let mut q = queue((1..=60).map(|n| alarm(n, 10, true)));
        let mut extra = 10;
        let (chunks, alarms) = take_chunks(&mut q, &mut extra);
        assert_eq!((alarms.len(), extra), (MAX_EXTRA - 10, MAX_EXTRA));
        check(&chunks, &alarms);
        let (_, alarms) = take_chunks(&mut q, &mut extra);
        assert!(alarms.is_empty(), "nothing with an item past the limit");
    }
}
