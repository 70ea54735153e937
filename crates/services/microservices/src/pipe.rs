//! The reader of a supervised process's stdout or stderr: reads its pipe in large chunks
//! and hands the complete lines of each read, raw, to the site's log as one
//! [`Batch`] (one header: the time of the read, process, instance, stream, count). No
//! record is built here: splitting is a `memchr` count of the newlines.
//!
//! - The pipe is widened to [`PIPE_BYTES`] (`F_SETPIPE_SZ`; the kernel's default when
//!   refused), so a fast writer is not stopped while the reader's batch is in the queue.
//! - After a read that brought less than [`LINGER_BELOW`], the reader waits [`LINGER`]
//!   before the next one, so that a process writing a little at a time is read a few
//!   hundred times a second rather than once per `write`: a line reaches the store at
//!   most that much later. A full pipe makes the process wait in its own `write`, as
//!   when the store's queue is full (back-pressure; nothing is dropped).
//! - A line longer than [`MAX_LINE`] bytes is cut there; the rest is the next line. A
//!   last line without a newline (the process ended) is kept with one.
//! - Every line of a batch has the batch's time, the moment its read returned.

use crate::logstore::{Batch, LogStore, Stream, BATCH_BYTES};
use bytes::BytesMut;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest line kept (longer ones are cut there; the rest is the next line).
pub const MAX_LINE: usize = 64 * 1024;
/// The size asked for each pipe.
pub const PIPE_BYTES: i32 = 1024 * 1024;
/// A read that brought less than this is followed by a pause of [`LINGER`].
pub const LINGER_BELOW: usize = 64 * 1024;
/// The pause after a small read.
pub const LINGER: Duration = Duration::from_millis(5);

/// Asks the kernel for a pipe of [`PIPE_BYTES`] (ignored when refused: a full pipe only
/// makes the process wait sooner).
pub fn widen(fd: &impl AsRawFd) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
}

/// Who wrote the lines a reader reads.
pub struct Source {
    /// The instance.
    pub instance: Arc<str>,
    /// The process.
    pub process: Arc<str>,
    /// Its stream.
    pub stream: Stream,
}

/// Reads `r` to its end into `store`, a batch per read (see the module's comment).
pub async fn read(mut r: impl AsyncRead + Unpin, src: Source, store: LogStore) {
    let mut buf = BytesMut::with_capacity(BATCH_BYTES);
    loop {
        if buf.capacity() - buf.len() < BATCH_BYTES / 2 {
            buf.reserve(BATCH_BYTES - buf.len());
        }
        let old = buf.len();
        // At most BATCH_BYTES in the buffer, so a batch is never larger.
        let room = (BATCH_BYTES - old) as u64;
        let n = match (&mut r).take(room).read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    let (lines, count) = split_long(&buf);
                    store.push_batch(batch(&src, lines.into(), count)).await;
                }
                return;
            }
            Ok(n) => n,
        };
        let end = match memchr::memrchr(b'\n', &buf[old..]) {
            Some(i) => old + i + 1,
            None if buf.len() >= MAX_LINE => buf.len() / MAX_LINE * MAX_LINE,
            None => continue,
        };
        let whole = buf.split_to(end).freeze();
        let b = match count(&whole) {
            Some(count) if whole.ends_with(b"\n") => batch(&src, whole, count),
            _ => {
                let (lines, count) = split_long(&whole);
                batch(&src, lines.into(), count)
            }
        };
        store.push_batch(b).await;
        if n < LINGER_BELOW {
            tokio::time::sleep(LINGER).await;
        }
    }
}

fn batch(src: &Source, lines: bytes::Bytes, count: u32) -> Batch {
    Batch {
        ts_ms: mware_config::now_ms(),
        seq: 0,
        process: src.process.clone(),
        instance: src.instance.clone(),
        stream: src.stream,
        count,
        lines,
    }
}

/// The number of lines of `lines` (which ends with a newline), or `None` when one of
/// them is longer than [`MAX_LINE`].
fn count(lines: &[u8]) -> Option<u32> {
    let (mut n, mut start) = (0u32, 0usize);
    for i in memchr::memchr_iter(b'\n', lines) {
        if i - start > MAX_LINE {
            return None;
        }
        n += 1;
        start = i + 1;
    }
    Some(n)
}

/// `lines` with every line cut into pieces of at most [`MAX_LINE`] bytes, each ending
/// with a newline (a last one without gets one), and their number.
fn split_long(lines: &[u8]) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(lines.len() + lines.len() / MAX_LINE + 1);
    let mut n = 0;
    for line in lines.split_inclusive(|b| *b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        for piece in text.chunks(MAX_LINE) {
            out.extend_from_slice(piece);
            out.push(b'\n');
            n += 1;
        }
        if text.is_empty() {
            out.push(b'\n');
            n += 1;
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_and_long_ones_cut() {
        assert_eq!(count(b"a\n\nbc\n"), Some(3));
        let long = [vec![b'x'; MAX_LINE + 5], b"\nok\n".to_vec()].concat();
        assert_eq!(count(&long), None);
        let (cut, n) = split_long(&long);
        assert_eq!(n, 3);
        let parts: Vec<&[u8]> = cut.split(|b| *b == b'\n').collect();
        assert_eq!((parts[0].len(), parts[1], parts[2]), (MAX_LINE, &b"xxxxx"[..], &b"ok"[..]));
        assert_eq!(split_long(b"no newline"), (b"no newline\n".to_vec(), 1));
        assert_eq!(split_long(b"\n"), (b"\n".to_vec(), 1));
    }
}
