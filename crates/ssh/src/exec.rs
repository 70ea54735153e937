//! A remote command as streams: its stdin as a tokio `AsyncWrite`, its stdout as an
//! `AsyncRead`, and its exit status (with the tail of its stderr) at the end. Nothing is
//! held in memory beyond a small buffer, so gigabytes can flow through it (a backup
//! written with `cat > file` on a storage server, pg_basebackup's tar output read from a
//! database host).
//!
//! A task pumps the channel's messages: stdout data into a bounded in-memory pipe read by
//! [`ExecStdout`], stderr into a bounded tail, the exit status into [`Exit`]. Once the
//! command has ended, writes to [`ExecStdin`] fail with `BrokenPipe` (as on a local pipe)
//! instead of waiting forever for window space the server will never give. Read stdout
//! to its end (or drop it) before [`ExitWaiter::wait`]: a full pipe holds the pump, and
//! with it the exit status. When a command both reads stdin and writes stdout, write and
//! read side by side (e.g. `tokio::join!`), as with any pipe.

use crate::error::{Result, SshError};
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Bytes of stdout buffered between the channel and the reader.
const PIPE: usize = 256 * 1024;
/// Bytes of stderr kept (the last ones).
const STDERR_TAIL: usize = 16 * 1024;

/// A running remote command. Take the parts apart: `let Exec { stdin, stdout, exit } = ...`.
pub struct Exec {
    /// The command's stdin; `shutdown()` sends end-of-file (the command sees its input end).
    pub stdin: ExecStdin,
    /// The command's stdout; ends when the command closes it.
    pub stdout: ExecStdout,
    /// The exit status, once the command ended.
    pub exit: ExitWaiter,
}

/// The remote command's stdin.
pub struct ExecStdin {
    inner: Pin<Box<dyn AsyncWrite + Send>>,
    /// Ready once the command has ended (exit status, signal or channel closed).
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
}

/// The remote command's stdout.
pub struct ExecStdout(DuplexStream);

/// Waits for the remote command's end.
pub struct ExitWaiter {
    task: JoinHandle<Exit>,
    label: String,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// Exit code; `None` when the server sent none (killed by a signal, connection lost).
    pub code: Option<u32>,
    /// The signal that ended it, if the server said so.
    pub signal: Option<String>,
    /// The last lines of its stderr.
    pub stderr: String,
}

impl Exit {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit code 3: <last stderr lines>` or `killed by signal TERM`, for messages.
    pub fn describe(&self) -> String {
        let how = match (&self.code, &self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "no exit status (connection lost?)".into(),
        };
        let tail: Vec<&str> = self.stderr.trim().lines().collect();
        let tail = tail[tail.len().saturating_sub(4)..].join(" | ");
        if tail.is_empty() {
            how
        } else {
            format!("{how}: {tail}")
        }
    }
}

impl ExitWaiter {
    /// Waits until the command ended and the channel closed.
    pub async fn wait(self) -> Result<Exit> {
        self.task.await.map_err(|e| SshError::Session { target: self.label, reason: format!("the stream task failed: {e}") })
    }
}

pub(crate) fn start(ch: Channel<Msg>, label: String) -> Exec {
    let ended = CancellationToken::new();
    let stdin = ExecStdin { inner: Box::pin(ch.make_writer()), ended: Box::pin(ended.clone().cancelled_owned()) };
    let (reader, writer) = tokio::io::duplex(PIPE);
    let task = tokio::spawn(pump(ch, writer, ended));
    Exec { stdin, stdout: ExecStdout(reader), exit: ExitWaiter { task, label } }
}

async fn pump(mut ch: Channel<Msg>, writer: DuplexStream, ended: CancellationToken) -> Exit {
    let mut out = Some(writer);
    let mut exit = Exit { code: None, signal: None, stderr: String::new() };
    let mut tail: Vec<u8> = Vec::new();
    while let Some(msg) = ch.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if let Some(w) = out.as_mut() {
                    if w.write_all(&data).await.is_err() {
                        out = None; // the reader is gone: drain and drop the rest
                    }
                }
            }
            ChannelMsg::ExtendedData { data, .. } => {
                tail.extend_from_slice(&data);
                if tail.len() > STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            ChannelMsg::Eof => {
                if let Some(mut w) = out.take() {
                    let _ = w.shutdown().await;
                }
            }
            ChannelMsg::ExitStatus { exit_status } => {
                exit.code = Some(exit_status);
                ended.cancel();
            }
            ChannelMsg::ExitSignal { signal_name, .. } => {
                exit.signal = Some(format!("{signal_name:?}"));
                ended.cancel();
            }
            _ => {}
        }
    }
    ended.cancel();
    drop(out);
    exit.stderr = String::from_utf8_lossy(&tail).into_owned();
    exit
}

impl ExecStdin {
    fn has_ended(&mut self, cx: &mut Context<'_>) -> bool {
        self.ended.as_mut().poll(cx).is_ready()
    }
}

impl AsyncWrite for ExecStdin {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.has_ended(cx) {
            let e = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the remote command ended before reading all its input");
            return Poll::Ready(Err(e));
        }
        self.inner.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.has_ended(cx) {
            return Poll::Ready(Ok(()));
        }
        self.inner.as_mut().poll_shutdown(cx)
    }
}

impl AsyncRead for ExecStdout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}
