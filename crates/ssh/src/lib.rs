//! mware-ssh: the one SSH client of mware's services (pg_controller today; backups and
//! device jobs next), over russh.
//!
//! - **Pinned host keys.** Every connection checks the server's key against an OpenSSH
//!   known_hosts file ([`HostKeyPolicy`], from the site's `ssh` section) during the key
//!   exchange, before anything of ours is sent: a key that differs from the pinned one is
//!   refused, naming both SHA256 fingerprints; an unknown host is refused with how to pin
//!   it, unless trust on first use is on (then its key is learned and logged at warn).
//! - **No shell injection.** Remote commands are built with [`sh_quote`] /
//!   [`command_line`], every argument quoted; a secret a command needs goes on its stdin,
//!   never on the command line.
//! - **Two ways to run a command**: [`Session::run`] collects stdout and stderr within a
//!   time limit; [`Session::exec`] streams, giving the remote stdin as an `AsyncWrite`,
//!   stdout as an `AsyncRead`, and the exit status at the end ([`Exec`]), for data that
//!   must not be held in memory (backups).
//! - **Looking at a key** without logging in: [`fetch_host_key`], and [`pin`] to add it
//!   to a known_hosts file (what `mware ssh show-key` and `mware ssh pin` do).
#![deny(missing_docs)]

mod client;
mod error;
mod exec;
mod hostkey;
mod quote;

pub use client::{fetch_host_key, Auth, Output, Session, Target};
pub use error::{Result, SshError};
pub use exec::{Exec, ExecStdin, ExecStdout, Exit, ExitWaiter};
pub use hostkey::{pin, HostKey, HostKeyPolicy, Pinned};
pub use quote::{command_line, sh_quote};
