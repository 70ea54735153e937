//! The site's log on this instance: every line a supervised process writes, with its
//! time, process, instance, stream and, when the line is a JSON object, its fields.
//!
//! The hot path copies bytes only. A process's reader hands over what one read of its
//! pipe gave, as a [`Batch`]: the complete lines, raw, under one header (time, process,
//! instance, stream, count). Batches go to the writer thread through a bounded channel:
//! when it is full, the reader waits, so the pipe fills and the process is slowed by its
//! own `write`, never killed, and no line is dropped (each wait is counted as a stall).
//! The writer gives each line its `seq` (the batch's header holds the first), appends
//! header and lines to `site.log` in the store's folder and rotates it at `file_mb` into
//! `site.log.1` … `site.log.<files>` (the oldest is removed), between batches. Lines that
//! could not be written (a full disk) are counted as lost. Records ([`LogLine`]: the text,
//! its JSON fields and level) are built when read: a query ([`files`]) walks the batches
//! oldest first, skips those whose header rules them out, and keeps the last `limit`
//! matching lines. Each batch is also shown to the store's tap (the syslog forwarder),
//! which never makes the process wait.
//!
//! Layout: [`batch`] (a batch and its header on disk), `writer` (the thread that appends
//! and rotates), [`files`] (queries, the last `seq`, a torn last batch cut at open).

mod writer;

pub mod batch;
pub mod files;

pub use batch::{Batch, Stream};

use crate::section::LogConfig;
use prometheus_client::metrics::counter::Counter;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Bytes of lines in one batch at most (a reader's buffer).
pub const BATCH_BYTES: usize = 256 * 1024;
/// Batches waiting for the writer at most (so at most 4 MiB of lines); past it, the
/// processes' pipes back-pressure.
pub const QUEUE: usize = 16;
const MB: u64 = 1024 * 1024;

/// One line of the site's log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogLine {
    /// Order of the line in this instance's store (grows by one per line written).
    #[serde(default)]
    pub seq: u64,
    /// When it was read, ms since the Unix epoch.
    pub ts_ms: u64,
    /// The instance it was written on.
    pub instance: String,
    /// The process that wrote it.
    pub process: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The line as written (without its newline).
    pub line: String,
    /// Its fields, when the line is a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Map<String, Value>>,
    /// Its level, from the fields `level`, `severity` or `lvl` (lowercase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

impl LogLine {
    /// A line read now, its JSON fields parsed when it is a JSON object.
    pub fn new(instance: &str, process: &str, stream: &str, line: String) -> Self {
        Self::read(0, mware_config::now_ms(), instance, process, stream, line)
    }

    /// The record of a stored line: its `seq` and time, its JSON fields parsed when it
    /// is a JSON object.
    pub fn read(seq: u64, ts_ms: u64, instance: &str, process: &str, stream: &str, line: String) -> Self {
        let fields = if line.trim_start().starts_with('{') {
            serde_json::from_str::<Value>(&line).ok().and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
        } else {
            None
        };
        let level = fields
            .as_ref()
            .and_then(|f| ["level", "severity", "lvl"].iter().find_map(|k| f.get(*k).and_then(Value::as_str)).map(str::to_lowercase));
        LogLine { seq, ts_ms, instance: instance.into(), process: process.into(), stream: stream.into(), line, fields, level }
    }
}

/// The store's counters.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Lines written.
    pub written: Counter,
    /// Lines that could not be written (disk full, I/O error).
    pub lost: Counter,
    /// Times a process's reader waited for room in the queue (back-pressure).
    pub stalls: Counter,
}

/// The size bounds the writer reads before each batch (so a reloaded section applies at
/// once): bytes per file, rotated files kept.
#[derive(Debug)]
struct Limits {
    max: AtomicU64,
    files: AtomicU32,
}

/// What sees each batch before it is queued (the syslog forwarder); must not wait.
pub type Tap = Box<dyn Fn(&Batch) + Send + Sync>;

/// The store of this instance: cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    tx: mpsc::Sender<Batch>,
    dir: PathBuf,
    tap: Arc<OnceLock<Tap>>,
    limits: Arc<Limits>,
    /// Its counters.
    pub counters: Counters,
}

/// What a query asks for.
#[derive(Debug, Default, Clone)]
pub struct Query {
    /// One process only.
    pub process: Option<String>,
    /// Lines at or after this time (ms).
    pub since_ms: Option<u64>,
    /// Lines at or before this time (ms).
    pub until_ms: Option<u64>,
    /// Lines with a `seq` above this one (to follow).
    pub after_seq: Option<u64>,
    /// Lines whose text matches.
    pub q: Option<Regex>,
    /// Lines of this level (lowercase).
    pub level: Option<String>,
    /// The last this many matches (the first, with `first`).
    pub limit: usize,
    /// Keep the first `limit` matches rather than the last (following with a cursor: the
    /// rest comes with the next query).
    pub first: bool,
}

impl LogStore {
    /// Opens (creates) the store in `dir` and starts its writer thread. A batch cut short
    /// at the end of `site.log` (a crash while it was written) is cut off; a `site.log` of
    /// the earlier format (JSON lines) is rotated to `site.log.1` (queries read both).
    pub fn open(dir: &Path, cfg: &LogConfig, counters: Counters) -> std::io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let limits = Arc::new(Limits { max: AtomicU64::new(cfg.file_mb * MB), files: AtomicU32::new(cfg.files) });
        let mut w = writer::Writer::open(dir, limits.clone(), counters.clone())?;
        std::thread::Builder::new().name("mware-sitelog".into()).spawn(move || w.run(rx))?;
        Ok(LogStore { tx, dir: dir.to_path_buf(), tap: Arc::default(), limits, counters })
    }

    /// Applies new size bounds (a reloaded section) from the next batch on.
    pub fn set_limits(&self, cfg: &LogConfig) {
        self.limits.max.store(cfg.file_mb * MB, Ordering::Relaxed);
        self.limits.files.store(cfg.files, Ordering::Relaxed);
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the tap every batch is shown to before it is queued (once; later calls are
    /// ignored). It must not wait: the syslog forwarder offers the batch to a queue.
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    /// Whether a tap is set.
    pub fn has_tap(&self) -> bool {
        self.tap.get().is_some()
    }

    /// Hands one line to the writer (a batch of one, at the line's time); waits
    /// (back-pressure) while the queue is full.
    pub async fn push(&self, line: LogLine) {
        self.push_batch(Batch::of_line(&line)).await
    }

    /// Hands a batch to the writer; waits (back-pressure) while the queue is full. The
    /// tap, if set, sees it first, without waiting.
    pub async fn push_batch(&self, batch: Batch) {
        if let Some(tap) = self.tap.get() {
            tap(&batch);
        }
        let n = batch.count as u64;
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.counters.stalls.inc_by(1);
                if self.tx.send(batch).await.is_err() {
                    self.counters.lost.inc_by(n);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.lost.inc_by(n);
            }
        }
    }

    /// The lines matching `q`, oldest first (the last `q.limit`, or the first with
    /// `q.first`). Blocking: file reads.
    pub fn query(&self, q: &Query) -> Vec<LogLine> {
        files::query(&self.dir, q)
    }
}
