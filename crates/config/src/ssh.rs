//! (new) The site's SSH settings: where the pinned host keys are and whether an unknown
//! host's key may be learned on first contact. Every SSH connection mware makes (pg
//! controller, backups, device jobs) checks the server's key against them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default known_hosts file, relative to the working directory of `mware run` (next to
/// the embedded coordinator's `var/coord.sqlite`).
pub const DEFAULT_KNOWN_HOSTS: &str = "var/known_hosts";

/// (new) SSH host key checking for every SSH connection mware makes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// OpenSSH known_hosts file with the pinned host keys (`host key-type base64`, or
    /// `[host]:port ...` for ports other than 22; `ssh-keyscan` output works). Default
    /// `var/known_hosts`, relative to the working directory of `mware run`; an absolute
    /// path is safer. A server whose key is not in it is refused, and one whose key
    /// differs is always refused.
    #[serde(default = "default_known_hosts")]
    pub known_hosts: String,
    /// Learn the key of a host that has no entry yet (written to `known_hosts`, logged at
    /// warn with its fingerprint) instead of refusing it. Default false.
    #[serde(default)]
    pub trust_on_first_use: bool,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings { known_hosts: default_known_hosts(), trust_on_first_use: false }
    }
}

fn default_known_hosts() -> String {
    DEFAULT_KNOWN_HOSTS.to_string()
}
