//! A zip archive made in a blocking thread and streamed into `cat > tmp` on the storage
//! server, its sha256 and size computed while it is sent. Nothing of it is kept in
//! memory beyond the buffers, nor written on a local disk.

use crate::error::{BackupError, Result};
use crate::zipper::Zipper;
use mware_ssh::{Exec, Session};
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::io::SyncIoBridge;

/// What was sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Archive size in bytes.
    pub bytes: u64,
    /// Its sha256, hex.
    pub sha256: String,
}

/// A writer computing the sha256 and counting bytes (into `progress` too) of what
/// passes through it.
pub struct HashWriter<W: Write> {
    inner: W,
    sha: Sha256,
    bytes: u64,
    progress: Arc<AtomicU64>,
}

impl<W: Write> HashWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, progress: Arc<AtomicU64>) -> Self {
        HashWriter { inner, sha: Sha256::new(), bytes: 0, progress }
    }
    /// The inner writer, the hex sha256 and the byte count.
    pub fn into_parts(self) -> (W, String, u64) {
        (self.inner, hex(&self.sha.finalize()), self.bytes)
    }
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The zip writer handed to a producer.
pub type ZipOut = Zipper<HashWriter<BufWriter<SyncIoBridge<mware_ssh::ExecStdin>>>>;

/// Uploads the archive `produce` writes into `tmp` (a path in `dir`) on the storage session `s`.
/// `Err` carries the storage server's own failure (disk full, connection lost) before
/// the producer's. The temporary file is left for the caller to commit or remove.
pub async fn zip_to_storage<F>(s: &Session, dir: &str, tmp: &str, level: u32, progress: Arc<AtomicU64>, produce: F) -> Result<Sent>
where
    F: FnOnce(&mut ZipOut) -> io::Result<()> + Send + 'static,
{
    let Exec { stdin, stdout, exit } = crate::storage::begin_upload(s, dir, tmp).await?;
    drop(stdout);
    let bridge = SyncIoBridge::new(stdin);
    let job = tokio::task::spawn_blocking(move || -> io::Result<Sent> {
        let w = HashWriter::new(BufWriter::with_capacity(256 * 1024, bridge), progress);
        let mut z = Zipper::new(w, level);
        produce(&mut z)?;
        let w = z.finish()?;
        let (buf, sha256, bytes) = w.into_parts();
        let mut bridge = buf.into_inner().map_err(|e| e.into_error())?;
        bridge.shutdown()?;
        Ok(Sent { bytes, sha256 })
    });
    let produced = job.await.map_err(|e| BackupError::io("the archive thread", e))?;
    let failed = |ended: mware_ssh::Exit| BackupError::Remote {
        what: format!("writing {tmp} on the storage server {}", s.label()),
        found: ended.describe(),
    };
    match produced {
        Ok(sent) => {
            let ended = exit.wait().await.map_err(|e| BackupError::Ssh { what: "the upload".into(), source: e })?;
            if !ended.success() {
                return Err(failed(ended));
            }
            Ok(sent)
        }
        // The storage side's own failure (disk full, connection lost) says more than the
        // broken pipe the writer saw; a producer's failure leaves `cat` waiting (the
        // caller closes the session).
        Err(e) => match tokio::time::timeout(std::time::Duration::from_secs(3), exit.wait()).await {
            Ok(Ok(ended)) if !ended.success() => Err(failed(ended)),
            _ => Err(BackupError::io(format!("streaming the archive to {tmp} on {}", s.label()), e)),
        },
    }
}
