//! A batch of the site log: the raw lines one read of a process's pipe gave, under one
//! header (time, process, instance, stream, count, `seq` of its first line). Writing a
//! batch copies bytes only; a line's record ([`LogLine`]: its text, JSON fields, level)
//! is built when the batch is read back ([`Batch::records`]).
//!
//! On disk a batch is its header then its lines, each ending with `\n`. Header, little
//! endian: `MWL1`, `len` u32 (bytes of lines), `count` u32, `seq` u64, `ts_ms` u64,
//! `stream` u8 (0 stdout, 1 stderr), process name length u16, instance name length u16,
//! then the two names (UTF-8).

use super::LogLine;
use bytes::Bytes;
use std::io::{self, Read};
use std::sync::Arc;

/// The first bytes of every batch.
pub const MAGIC: [u8; 4] = *b"MWL1";
/// Bytes of a header before the two names.
pub const FIXED: usize = 4 + 4 + 4 + 8 + 8 + 1 + 2 + 2;

/// Which of a process's outputs a line came from (the host's, as its `exec` uses).
pub use mware_host::exec::Stream;

/// The stream named `s` (anything but `stderr` is stdout).
fn stream_named(s: &str) -> Stream {
    if s == "stderr" {
        Stream::Stderr
    } else {
        Stream::Stdout
    }
}

/// Lines of one process's stream read at one time, as the store keeps them.
#[derive(Debug, Clone)]
pub struct Batch {
    /// When they were read, ms since the Unix epoch (the time of every line of it).
    pub ts_ms: u64,
    /// The `seq` of its first line (set by the store's writer; 0 before).
    pub seq: u64,
    /// The process that wrote them.
    pub process: Arc<str>,
    /// The instance they were read on.
    pub instance: Arc<str>,
    /// The stream they came from.
    pub stream: Stream,
    /// How many lines.
    pub count: u32,
    /// The lines, each ending with `\n` (bytes as written, not checked for UTF-8).
    pub lines: Bytes,
}

impl Batch {
    /// A batch of one line (its text, which must hold no newline, gets one).
    pub fn of_line(l: &LogLine) -> Self {
        let mut b = Vec::with_capacity(l.line.len() + 1);
        b.extend_from_slice(l.line.as_bytes());
        b.push(b'\n');
        Batch {
            ts_ms: l.ts_ms,
            seq: 0,
            process: l.process.as_str().into(),
            instance: l.instance.as_str().into(),
            stream: stream_named(&l.stream),
            count: 1,
            lines: b.into(),
        }
    }

    /// Its header, as written before its lines.
    pub fn header(&self) -> Vec<u8> {
        let (p, i) = (name(&self.process), name(&self.instance));
        let mut h = Vec::with_capacity(FIXED + p.len() + i.len());
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&(self.lines.len() as u32).to_le_bytes());
        h.extend_from_slice(&self.count.to_le_bytes());
        h.extend_from_slice(&self.seq.to_le_bytes());
        h.extend_from_slice(&self.ts_ms.to_le_bytes());
        h.push(u8::from(self.stream == Stream::Stderr));
        h.extend_from_slice(&(p.len() as u16).to_le_bytes());
        h.extend_from_slice(&(i.len() as u16).to_le_bytes());
        h.extend_from_slice(p);
        h.extend_from_slice(i);
        h
    }

    /// Bytes it takes on disk.
    pub fn disk_len(&self) -> u64 {
        (FIXED + name(&self.process).len() + name(&self.instance).len() + self.lines.len()) as u64
    }

    /// Its lines as records: text (invalid UTF-8 replaced, trailing `\r`s cut), `seq`,
    /// time, and the JSON fields and level of a line that is a JSON object.
    pub fn records(&self) -> impl Iterator<Item = LogLine> + '_ {
        self.texts().enumerate().map(|(i, t)| self.record(i as u64, t.into_owned()))
    }

    /// The text of each line (invalid UTF-8 replaced, the newline and `\r`s before it cut).
    pub fn texts(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> + '_ {
        self.lines.split_inclusive(|b| *b == b'\n').map(|l| {
            let mut l = l.strip_suffix(b"\n").unwrap_or(l);
            while let Some(t) = l.strip_suffix(b"\r") {
                l = t;
            }
            String::from_utf8_lossy(l)
        })
    }

    /// The record of its line number `i` (from 0), whose text is `text`.
    pub fn record(&self, i: u64, text: String) -> LogLine {
        LogLine::read(self.seq + i, self.ts_ms, &self.instance, &self.process, self.stream.as_str(), text)
    }
}

/// A name as written in a header (cut at 65,535 bytes; names are far shorter).
fn name(s: &str) -> &[u8] {
    &s.as_bytes()[..s.len().min(u16::MAX as usize)]
}

/// Reads the next batch's header from `r`: the batch without its lines (empty) and the
/// length of its lines; `Ok(None)` at the end of the file or at a header cut short (a
/// batch being written), an error at bytes that are no header.
pub fn read_header(r: &mut impl Read) -> io::Result<Option<(Batch, usize)>> {
    let mut f = [0u8; FIXED];
    if !read_full(r, &mut f)? {
        return Ok(None);
    }
    if f[..4] != MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a batch header (expected MWL1)"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(f[i..i + 8].try_into().expect("8 bytes"));
    let mut names = vec![0u8; u16_at(29) + u16_at(31)];
    if !read_full(r, &mut names)? {
        return Ok(None);
    }
    let (p, i) = names.split_at(u16_at(29));
    let batch = Batch {
        ts_ms: u64_at(20),
        seq: u64_at(12),
        process: String::from_utf8_lossy(p).into(),
        instance: String::from_utf8_lossy(i).into(),
        stream: if f[28] == 1 { Stream::Stderr } else { Stream::Stdout },
        count: u32_at(8),
        lines: Bytes::new(),
    };
    Ok(Some((batch, u32_at(4) as usize)))
}

/// Fills `buf` from `r`: false at an end of file before it is full.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => return Ok(false),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
