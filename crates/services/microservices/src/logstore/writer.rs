//! The store's writer thread: gives each batch's lines their `seq`, appends batches
//! (header, then the raw lines) to `site.log` with one `writev` for what the queue holds
//! (at most [`FLUSH_BYTES`] or [`FLUSH_BATCHES`] at once), and rotates between batches
//! when the next one would pass `file_mb`. A write that fails (a full disk) counts its
//! lines as lost and cuts the file back to where it was, so every file stays a sequence
//! of whole batches.

use super::batch::Batch;
use super::{files, Counters, Limits};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes held before a write at most.
pub const FLUSH_BYTES: u64 = 1024 * 1024;
/// Batches held before a write at most (two slices each: well under `IOV_MAX`).
pub const FLUSH_BATCHES: usize = 64;

pub(super) struct Writer {
    dir: PathBuf,
    limits: Arc<Limits>,
    file: Option<File>,
    /// Bytes in `site.log`.
    size: u64,
    /// The `seq` of the last line given one.
    seq: u64,
    /// Headers and lines waiting for the next write.
    pending: Vec<(Vec<u8>, Bytes)>,
    pending_bytes: u64,
    pending_lines: u64,
    counters: Counters,
}

impl Writer {
    /// The writer of the store in `dir`: its last `seq` read from the files; a torn last
    /// batch cut off; a `site.log` of the earlier format rotated away.
    pub fn open(dir: &Path, limits: Arc<Limits>, counters: Counters) -> io::Result<Self> {
        let path = dir.join("site.log");
        let scan = files::scan(&path)?;
        if scan.good < scan.len {
            tracing::warn!(path = %path.display(), kept = scan.good, cut = scan.len - scan.good, "site log: a batch cut short at the end of the file (a crash while it was written) is removed");
            OpenOptions::new().write(true).open(&path)?.set_len(scan.good)?;
        }
        let mut seq = scan.last_seq;
        if seq == 0 {
            seq = files::scan(&dir.join("site.log.1")).map_or(0, |s| s.last_seq);
        }
        let mut w = Writer {
            dir: dir.to_path_buf(),
            limits,
            file: None,
            size: scan.good,
            seq,
            pending: Vec::with_capacity(FLUSH_BATCHES),
            pending_bytes: 0,
            pending_lines: 0,
            counters,
        };
        if scan.legacy {
            w.rotate();
        }
        Ok(w)
    }

    pub fn run(&mut self, mut rx: mpsc::Receiver<Batch>) {
        loop {
            let batch = match rx.try_recv() {
                Ok(b) => b,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.flush();
                    match rx.blocking_recv() {
                        Some(b) => b,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            self.add(batch);
        }
        self.flush();
    }

    fn add(&mut self, mut b: Batch) {
        if b.count == 0 {
            return;
        }
        b.seq = self.seq + 1;
        self.seq += b.count as u64;
        let len = b.disk_len();
        let held = self.size + self.pending_bytes;
        if held > 0 && held + len > self.limits.max.load(Ordering::Relaxed) {
            self.flush();
            self.rotate();
        }
        self.pending.push((b.header(), b.lines));
        self.pending_bytes += len;
        self.pending_lines += b.count as u64;
        if self.pending_bytes >= FLUSH_BYTES || self.pending.len() >= FLUSH_BATCHES {
            self.flush();
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let f = OpenOptions::new().create(true).append(true).mode(0o600).open(self.dir.join("site.log"))?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("just opened"))
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut slices: Vec<IoSlice> = pending.iter().flat_map(|(h, l)| [IoSlice::new(h), IoSlice::new(l)]).collect();
        let before = self.size;
        let result = self.file().and_then(|f| write_all_vectored(f, &mut slices));
        match result {
            Ok(()) => {
                self.size += self.pending_bytes;
                self.counters.written.inc_by(self.pending_lines);
            }
            Err(e) => {
                self.counters.lost.inc_by(self.pending_lines);
                tracing::warn!(error = %e, lines = self.pending_lines, "site log: lines could not be written and are lost");
                // What part of it was written goes: the file holds whole batches only.
                if let Some(f) = self.file.take() {
                    let _ = f.set_len(before);
                }
            }
        }
        drop(slices);
        self.pending = pending;
        self.pending.clear();
        (self.pending_bytes, self.pending_lines) = (0, 0);
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

/// Writes every slice (`write_vectored` until done).
fn write_all_vectored(f: &mut File, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !bufs.is_empty() {
        match f.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
