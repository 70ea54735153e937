//! The site's log on this instance: every line a supervised process writes, with its
//! time, process, instance, stream and, when the line is a JSON object, its fields.
//!
//! Lines reach the store in batches (what a reader's buffer holds) through a bounded
//! channel: when it is full, the reader of the
//! process's pipe waits, so the pipe fills and the process is slowed by its own `write`,
//! never killed, and no line is dropped (each wait is counted as a stall). One thread
//! writes them as JSON lines into `site.log` in the store's folder and rotates it at
//! `file_mb` into `site.log.1` … `site.log.<files>` (the oldest is removed). Lines that
//! could not be written (a full disk) are counted as lost. A query reads the files
//! oldest first and keeps the last `limit` matches. Each line is also shown to the
//! store's tap (the syslog forwarder), which never makes the process wait.

use crate::section::LogConfig;
use prometheus_client::metrics::counter::Counter;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Lines in one batch at most (a reader hands over the lines its buffer holds at once).
pub const BATCH_LINES: usize = 256;
/// Batches waiting for the writer at most (so at most 8192 lines); past it, the
/// processes' pipes back-pressure.
pub const QUEUE: usize = 32;
const MB: u64 = 1024 * 1024;
/// Bytes written in one go at most.
const BATCH: usize = 256 * 1024;

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
        LogLine {
            seq: 0,
            ts_ms: mware_config::now_ms(),
            instance: instance.into(),
            process: process.into(),
            stream: stream.into(),
            line,
            fields,
            level,
        }
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

/// The size bounds the writer reads before each line (so a reloaded section applies at
/// once): bytes per file, rotated files kept.
#[derive(Debug)]
struct Limits {
    max: AtomicU64,
    files: AtomicU32,
}

/// What sees each line before it is queued (the syslog forwarder); must not wait.
pub type Tap = Box<dyn Fn(&LogLine) + Send + Sync>;

/// The store of this instance: cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    tx: mpsc::Sender<Vec<LogLine>>,
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
    /// Opens (creates) the store in `dir` and starts its writer thread.
    pub fn open(dir: &Path, cfg: &LogConfig, counters: Counters) -> std::io::Result<Self> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let limits = Arc::new(Limits { max: AtomicU64::new(cfg.file_mb * MB), files: AtomicU32::new(cfg.files) });
        let mut w = Writer {
            dir: dir.to_path_buf(),
            limits: limits.clone(),
            file: None,
            size: 0,
            seq: last_seq(&dir.join("site.log")),
            buf: Vec::with_capacity(BATCH),
            pending: 0,
            counters: counters.clone(),
        };
        std::thread::Builder::new().name("mware-sitelog".into()).spawn(move || w.run(rx))?;
        Ok(LogStore { tx, dir: dir.to_path_buf(), tap: Arc::default(), limits, counters })
    }

    /// Applies new size bounds (a reloaded section) from the next line on.
    pub fn set_limits(&self, cfg: &LogConfig) {
        self.limits.max.store(cfg.file_mb * MB, Ordering::Relaxed);
        self.limits.files.store(cfg.files, Ordering::Relaxed);
    }

    /// Its folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the tap every line is shown to before it is queued (once; later calls are
    /// ignored). It must not wait: the syslog forwarder offers the line to a queue.
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    /// Whether a tap is set.
    pub fn has_tap(&self) -> bool {
        self.tap.get().is_some()
    }

    /// Hands a line to the writer; waits (back-pressure) while the queue is full. The
    /// tap, if set, sees it first, without waiting.
    pub async fn push(&self, line: LogLine) {
        self.push_batch(vec![line]).await
    }

    /// Hands lines (at most [`BATCH_LINES`]) to the writer at once, as [`LogStore::push`].
    pub async fn push_batch(&self, lines: Vec<LogLine>) {
        if let Some(tap) = self.tap.get() {
            lines.iter().for_each(tap);
        }
        let n = lines.len() as u64;
        match self.tx.try_send(lines) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(lines)) => {
                self.counters.stalls.inc_by(1);
                if self.tx.send(lines).await.is_err() {
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
        let mut files: Vec<PathBuf> = vec![];
        let mut n = 1;
        while self.dir.join(format!("site.log.{n}")).exists() {
            files.push(self.dir.join(format!("site.log.{n}")));
            n += 1;
        }
        files.reverse();
        files.push(self.dir.join("site.log"));
        let needle = q.process.as_ref().map(|p| format!("\"process\":{}", Value::String(p.clone())));
        let mut out: VecDeque<LogLine> = VecDeque::new();
        for f in files {
            let Ok(file) = File::open(&f) else { continue };
            for raw in BufReader::new(file).lines() {
                let Ok(raw) = raw else { break };
                if needle.as_ref().is_some_and(|n| !raw.contains(n.as_str())) {
                    continue;
                }
                let Ok(l) = serde_json::from_str::<LogLine>(&raw) else { continue };
                if matches(q, &l) {
                    if out.len() == q.limit.max(1) {
                        if q.first {
                            return out.into();
                        }
                        out.pop_front();
                    }
                    out.push_back(l);
                }
            }
        }
        out.into()
    }
}

fn matches(q: &Query, l: &LogLine) -> bool {
    q.process.as_ref().is_none_or(|p| *p == l.process)
        && q.since_ms.is_none_or(|s| l.ts_ms >= s)
        && q.until_ms.is_none_or(|u| l.ts_ms <= u)
        && q.after_seq.is_none_or(|a| l.seq > a)
        && q.level.as_ref().is_none_or(|v| l.level.as_deref() == Some(v.as_str()))
        && q.q.as_ref().is_none_or(|r| r.is_match(&l.line))
}

/// The `seq` of the last line of `path` (0 for none).
fn last_seq(path: &Path) -> u64 {
    let Ok(f) = File::open(path) else { return 0 };
    BufReader::new(f).lines().map_while(Result::ok).last().and_then(|l| serde_json::from_str::<LogLine>(&l).ok()).map_or(0, |l| l.seq)
}

struct Writer {
    dir: PathBuf,
    limits: Arc<Limits>,
    file: Option<File>,
    size: u64,
    seq: u64,
    buf: Vec<u8>,
    pending: u64,
    counters: Counters,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Vec<LogLine>>) {
        loop {
            let lines = match rx.try_recv() {
                Ok(l) => l,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.flush();
                    match rx.blocking_recv() {
                        Some(l) => l,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            lines.into_iter().for_each(|l| self.add(l));
        }
        self.flush();
    }

    fn add(&mut self, mut line: LogLine) {
        self.seq += 1;
        line.seq = self.seq;
        // Serialized straight into the batch; rotated first when it would pass the bound.
        let at = self.buf.len();
        if serde_json::to_writer(&mut self.buf, &line).is_err() {
            self.buf.truncate(at);
            self.counters.lost.inc_by(1);
            return;
        }
        self.buf.push(b'\n');
        let max = self.limits.max.load(Ordering::Relaxed);
        if self.size + self.buf.len() as u64 > max && at > 0 {
            let text = self.buf.split_off(at);
            self.flush();
            self.rotate();
            self.buf.extend_from_slice(&text);
        } else if self.size + self.buf.len() as u64 > max {
            self.rotate_if_nonempty();
        }
        self.pending += 1;
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    /// Rotates before a line that alone passes the bound of a file already holding lines.
    fn rotate_if_nonempty(&mut self) {
        if self.size > 0 {
            let text = std::mem::take(&mut self.buf);
            self.rotate();
            self.buf = text;
        }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).mode(0o600).open(self.dir.join("site.log"))?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut self.buf);
        let result = self.open().and_then(|f| f.write_all(&buf));
        match result {
            Ok(()) => {
                self.size += buf.len() as u64;
                self.counters.written.inc_by(self.pending);
            }
            Err(e) => {
                self.counters.lost.inc_by(self.pending);
                tracing::warn!(error = %e, lines = self.pending, "site log: lines could not be written and are lost");
                self.file = None;
            }
        }
        self.pending = 0;
        self.buf = buf;
        self.buf.clear();
    }

    fn rotate(&mut self) {
        self.file = None;
        let files = self.limits.files.load(Ordering::Relaxed);
        let name = |n: u32| self.dir.join(format!("site.log.{n}"));
        // Kept files past a lowered bound go too.
        let mut n = files;
        while name(n).exists() || n == files {
            let _ = std::fs::remove_file(name(n));
            n += 1;
        }
        for n in (1..files).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        let _ = std::fs::rename(self.dir.join("site.log"), name(1));
        self.size = 0;
    }
}
