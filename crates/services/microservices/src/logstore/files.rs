//! Reading the store's files: a query across them, oldest first, and the scan at open
//! (the last `seq`, and where a batch cut short by a crash begins). A query skips a
//! batch whose header rules it out (another process, outside the time range, before the
//! cursor) without reading its lines; for the others it builds each line's record, its
//! JSON fields parsed, here. Files of the earlier format (one JSON record per line, from
//! before batches) are read too.

use super::batch::{self, Batch};
use super::{LogLine, Query};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Bytes read from a file at once.
const READ_BUF: usize = 256 * 1024;

/// `site.log.<files>` … `site.log.1`, then `site.log`.
fn oldest_first(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = vec![];
    let mut n = 1;
    while dir.join(format!("site.log.{n}")).exists() {
        files.push(dir.join(format!("site.log.{n}")));
        n += 1;
    }
    files.reverse();
    files.push(dir.join("site.log"));
    files
}

/// Whether the file's first byte is a JSON object's (the earlier format).
fn is_legacy(r: &mut impl BufRead) -> bool {
    r.fill_buf().is_ok_and(|b| b.first() == Some(&b'{'))
}

/// The lines matching `q` in the store in `dir`, oldest first (the last `q.limit`, or
/// the first with `q.first`).
pub fn query(dir: &Path, q: &Query) -> Vec<LogLine> {
    let mut out = Kept { lines: VecDeque::new(), limit: q.limit.max(1), first: q.first };
    for f in oldest_first(dir) {
        let Ok(file) = File::open(&f) else { continue };
        let mut r = BufReader::with_capacity(READ_BUF, file);
        let done = if is_legacy(&mut r) { legacy(r, q, &mut out) } else { batches(r, q, &mut out) };
        if done {
            break;
        }
    }
    out.lines.into()
}

/// The matches kept so far.
struct Kept {
    lines: VecDeque<LogLine>,
    limit: usize,
    first: bool,
}

impl Kept {
    /// Keeps `l`; true when the query is done (the first `limit` found).
    fn keep(&mut self, l: LogLine) -> bool {
        if self.lines.len() == self.limit {
            if self.first {
                return true;
            }
            self.lines.pop_front();
        }
        self.lines.push_back(l);
        false
    }
}

/// Calls `f` with every batch of the store in `dir`, oldest first, its lines read in,
/// until `f` answers false (files of the earlier format are skipped).
pub fn walk(dir: &Path, mut f: impl FnMut(Batch) -> bool) {
    for path in oldest_first(dir) {
        let Ok(file) = File::open(&path) else { continue };
        let mut r = BufReader::with_capacity(READ_BUF, file);
        if is_legacy(&mut r) {
            continue;
        }
        while let Ok(Some((mut b, len))) = batch::read_header(&mut r) {
            let mut lines = vec![0u8; len];
            if !matches!(batch::read_full(&mut r, &mut lines), Ok(true)) {
                break;
            }
            b.lines = lines.into();
            if !f(b) {
                return;
            }
        }
    }
}

/// Whether a batch's header lets some of its lines match.
fn wanted(q: &Query, b: &Batch) -> bool {
    q.process.as_ref().is_none_or(|p| **p == *b.process)
        && q.since_ms.is_none_or(|s| b.ts_ms >= s)
        && q.until_ms.is_none_or(|u| b.ts_ms <= u)
        && q.after_seq.is_none_or(|a| b.seq + b.count as u64 > a + 1)
}

/// Whether a line matches (everything a header cannot say).
fn matches(q: &Query, l: &LogLine) -> bool {
    q.process.as_ref().is_none_or(|p| *p == l.process)
        && q.since_ms.is_none_or(|s| l.ts_ms >= s)
        && q.until_ms.is_none_or(|u| l.ts_ms <= u)
        && q.after_seq.is_none_or(|a| l.seq > a)
        && q.level.as_ref().is_none_or(|v| l.level.as_deref() == Some(v.as_str()))
        && q.q.as_ref().is_none_or(|r| r.is_match(&l.line))
}

/// Walks a file of batches; true when the query is done.
fn batches(mut r: BufReader<File>, q: &Query, out: &mut Kept) -> bool {
    // A batch being written (cut short at the end) ends the walk, as bytes that are no header.
    while let Ok(Some((mut b, len))) = batch::read_header(&mut r) {
        if !wanted(q, &b) {
            if r.seek_relative(len as i64).is_err() {
                return false;
            }
            continue;
        }
        let mut lines = vec![0u8; len];
        if !matches!(batch::read_full(&mut r, &mut lines), Ok(true)) {
            return false;
        }
        b.lines = lines.into();
        for (i, text) in b.texts().enumerate() {
            if q.q.as_ref().is_some_and(|re| !re.is_match(&text)) || q.after_seq.is_some_and(|a| b.seq + i as u64 <= a) {
                continue;
            }
            let l = b.record(i as u64, text.into_owned());
            if matches(q, &l) && out.keep(l) {
                return true;
            }
        }
    }
    false
}

/// Walks a file of the earlier format; true when the query is done.
fn legacy(r: BufReader<File>, q: &Query, out: &mut Kept) -> bool {
    let needle = q.process.as_ref().map(|p| format!("\"process\":{}", serde_json::Value::String(p.clone())));
    for raw in r.lines() {
        let Ok(raw) = raw else { break };
        if needle.as_ref().is_some_and(|n| !raw.contains(n.as_str())) {
            continue;
        }
        let Ok(l) = serde_json::from_str::<LogLine>(&raw) else { continue };
        if matches(q, &l) && out.keep(l) {
            return true;
        }
    }
    false
}

/// What the scan of a file found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Its length.
    pub len: u64,
    /// Bytes up to the end of its last whole batch (`len` for the earlier format).
    pub good: u64,
    /// The `seq` of its last line (0 for none).
    pub last_seq: u64,
    /// Whether it is of the earlier format (JSON lines).
    pub legacy: bool,
}

/// Scans the file at `path` (none: an empty scan).
pub fn scan(path: &Path) -> io::Result<Scan> {
    let file = match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Scan::default()),
        f => f?,
    };
    let len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(READ_BUF, file);
    if is_legacy(&mut r) {
        let last = r.lines().map_while(Result::ok).last().and_then(|l| serde_json::from_str::<LogLine>(&l).ok()).map_or(0, |l| l.seq);
        return Ok(Scan { len, good: len, last_seq: last, legacy: true });
    }
    let mut s = Scan { len, ..Default::default() };
    while let Ok(Some((b, n))) = batch::read_header(&mut r) {
        let end = s.good + b.disk_len() + n as u64;
        if end > len || r.seek_relative(n as i64).is_err() {
            break;
        }
        s.good = end;
        if b.count > 0 {
            s.last_seq = b.seq + b.count as u64 - 1;
        }
    }
    Ok(s)
}
