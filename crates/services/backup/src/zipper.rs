//! Zip archives written as a stream (nothing seeks back, so the output can be an SSH
//! channel), with deflate on every core.
//!
//! The container (local headers with data descriptors, Zip64 where sizes or offsets
//! need it, the central directory) is `rawzip`'s. Each entry's data goes through
//! [`ParallelDeflate`]: the data is cut into 1 MiB chunks, each chunk is deflated on
//! its own in a worker thread (one per core) and ends byte-aligned on a sync flush, the
//! last one with the final block, so their concatenation is one valid deflate stream
//! (pigz's method, without the shared dictionary: a few hundred bytes per MiB more).
//! The results are written in order; at most a few chunks are in flight, so memory
//! stays bounded whatever the size of the file.

use flate2::{Compress, Compression, FlushCompress, Status};
use rawzip::time::UtcDateTime;
use rawzip::{CompressionMethod, ZipArchiveWriter, ZipDataWriter};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes of input per deflate job.
pub const CHUNK: usize = 1 << 20;
/// Jobs queued or running per entry before the writer waits for the oldest.
const IN_FLIGHT: usize = 6;

type Reply = SyncSender<io::Result<Vec<u8>>>;
struct Job {
    data: Vec<u8>,
    last: bool,
    reply: Reply,
}

/// Deflate worker threads, one per core (at least two).
pub struct Pool {
    tx: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts the workers, deflating at `level` (1..=9).
    pub fn new(level: u32) -> Pool {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
        let (tx, rx) = sync_channel::<Job>(IN_FLIGHT);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..n)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("mware-deflate-{i}"))
                    .spawn(move || {
                        let mut c = Compress::new(Compression::new(level), false);
                        loop {
                            let job = { rx.lock().unwrap_or_else(|e| e.into_inner()).recv() };
                            let Ok(job) = job else { return };
                            c.reset();
                            let _ = job.reply.send(deflate(&mut c, &job.data, job.last));
                        }
                    })
                    .expect("spawn a deflate worker")
            })
            .collect();
        Pool { tx: Some(tx), workers }
    }

    fn submit(&self, data: Vec<u8>, last: bool) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
        let (reply, rx) = sync_channel(1);
        let tx = self.tx.as_ref().ok_or_else(|| io::Error::other("the deflate pool is stopped"))?;
        tx.send(Job { data, last, reply }).map_err(|_| io::Error::other("the deflate workers are gone"))?;
        Ok(rx)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Deflates `data` as a raw deflate stream piece: sync-flushed, or final when `last`.
fn deflate(c: &mut Compress, data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    let start = c.total_in();
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let used = (c.total_in() - start) as usize;
        let status = c.compress_vec(&data[used..], &mut out, flush).map_err(io::Error::other)?;
        let used = (c.total_in() - start) as usize;
        let room = out.capacity() > out.len();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if !last && used == data.len() && room => return Ok(out),
            _ => {}
        }
    }
}

/// A `Write` taking an entry's uncompressed data and writing its deflate stream to `out`,
/// chunks deflated in the pool's threads. Call [`ParallelDeflate::finish`] at the end.
pub struct ParallelDeflate<'p, W: Write> {
    out: W,
    pool: &'p Pool,
    buf: Vec<u8>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<'p, W: Write> ParallelDeflate<'p, W> {
    /// Deflates into `out` with `pool`.
    pub fn new(out: W, pool: &'p Pool) -> Self {
        ParallelDeflate { out, pool, buf: Vec::with_capacity(CHUNK), pending: VecDeque::new() }
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let data = rx.recv().map_err(|_| io::Error::other("a deflate worker died"))??;
            self.out.write_all(&data)?;
        }
        Ok(())
    }

    fn send(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, if last { Vec::new() } else { Vec::with_capacity(CHUNK) });
        self.pending.push_back(self.pool.submit(data, last)?);
        while self.pending.len() >= IN_FLIGHT {
            self.write_oldest()?;
        }
        Ok(())
    }

    /// Deflates what is left with the final block, writes every chunk in order and
    /// returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.send(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelDeflate<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A zip archive being written to `W`.
pub struct Zipper<W: Write> {
    zip: ZipArchiveWriter<W>,
    pool: Pool,
    entries: u64,
    bytes_in: u64,
    mtime: UtcDateTime,
}

fn zerr(e: rawzip::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// A safe entry name: relative, `/`-separated, no `..`, no empty parts.
pub fn entry_name(raw: &str) -> io::Result<String> {
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() || parts.contains(&"..") || raw.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a relative file name, found {raw:?}")));
    }
    Ok(parts.join("/"))
}

impl<W: Write> Zipper<W> {
    /// An archive into `out`, deflating at `level` on every core.
    pub fn new(out: W, level: u32) -> Self {
        Zipper {
            zip: ZipArchiveWriter::new(out),
            pool: Pool::new(level),
            entries: 0,
            bytes_in: 0,
            mtime: UtcDateTime::from_unix(mware_coord::now_ms() as i64 / 1000),
        }
    }

    /// The modification time (seconds since the Unix epoch) of the entries added next
    /// (default: when the archive was started).
    pub fn set_mtime(&mut self, secs: i64) {
        self.mtime = UtcDateTime::from_unix(secs);
    }

    /// Adds a folder entry.
    pub fn add_dir(&mut self, name: &str, mode: u32) -> io::Result<()> {
        let name = format!("{}/", entry_name(name)?);
        self.zip.new_dir(&name).last_modified(self.mtime).unix_permissions(mode).create().map_err(zerr)?;
        self.entries += 1;
        Ok(())
    }

    /// Adds a file with the data read from `data`; returns its size.
    pub fn add_file(&mut self, name: &str, mode: u32, data: &mut dyn Read) -> io::Result<u64> {
        let name = entry_name(name)?;
        let (mut entry, config) = self
            .zip
            .new_file(&name)
            .compression_method(CompressionMethod::Deflate)
            .last_modified(self.mtime)
            .unix_permissions(mode)
            .start()
            .map_err(zerr)?;
        let mut w: ZipDataWriter<ParallelDeflate<'_, _>> = config.wrap(ParallelDeflate::new(&mut entry, &self.pool));
        let n = io::copy(data, &mut w)?;
        let (enc, desc) = w.finish().map_err(zerr)?;
        enc.finish()?;
        entry.finish(desc).map_err(zerr)?;
        self.entries += 1;
        self.bytes_in += n;
        Ok(n)
    }

    /// Entries and uncompressed bytes so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.entries, self.bytes_in)
    }

    /// Writes the central directory; returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.zip.finish().map_err(zerr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_deflated_apart_make_one_stream() {
        let pool = Pool::new(6);
        let data: Vec<u8> = (0..(3 * CHUNK + 12345)).map(|i| ((i * 7919) % 251) as u8 ^ (i / 4096) as u8).collect();
        let mut d = ParallelDeflate::new(Vec::new(), &pool);
        d.write_all(&data).unwrap();
        let z = d.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&z[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        let empty = ParallelDeflate::new(Vec::new(), &pool).finish().unwrap();
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&empty[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
