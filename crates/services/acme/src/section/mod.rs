//! (new) The `acme` section of a group: the ACME directory and account, the certificates
//! the group's active instance issues and renews, how each proves its names (HTTP-01 on
//! the active instance, DNS-01 through an RFC 2136 update), and where each is deployed.
//!
//! The section's type and its check live here, in the service that runs it; what the
//! check passes parses.

use mware_config::{Check, Secret, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod check;

/// Let's Encrypt's production directory (the default).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (for trying a site out: untrusted certificates,
/// higher rate limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// (new) The `acme` section.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The CA's ACME directory URL (default: Let's Encrypt's production one; its staging
    /// one is `https://acme-staging-v02.api.letsencrypt.org/directory`).
    #[serde(default = "default_directory")]
    pub directory_url: String,
    /// A PEM file with the CA certificate to trust for the directory's HTTPS instead of
    /// the system's roots (a test CA such as pebble; absent: the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The account's contacts (`mailto:ops@example.ru`); may be empty.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Renew a certificate this many days before it expires (default 30); a
    /// certificate may set its own.
    #[serde(default = "default_renew_days")]
    pub renew_before_days: u32,
    /// Raise an alarm (a failing item in monitoring) this many days before a certificate
    /// expires when its renewal has not succeeded (default 14).
    #[serde(default = "default_alarm_days")]
    pub alarm_before_days: u32,
    /// HTTP-01: where the active instance answers the CA's challenge requests.
    #[serde(default)]
    pub http01: Http01,
    /// DNS-01: the DNS server taking RFC 2136 updates signed with a TSIG key (absent: no
    /// certificate may use `dns-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns01: Option<Dns01>,
    /// The certificates, in file order.
    #[serde(default)]
    pub certificates: Vec<Certificate>,
}

impl SectionConfig for Acme {
    const KEY: &'static str = "acme";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::acme(cx, v, at)
    }
}

/// HTTP-01 answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Http01 {
    /// TCP port on the address of the role's `iface` (default 80; another one when the
    /// site's web server redirects `/.well-known/acme-challenge/` to it).
    #[serde(default = "default_http_port")]
    pub port: u16,
}

impl Default for Http01 {
    fn default() -> Self {
        Http01 { port: default_http_port() }
    }
}

/// DNS-01 through RFC 2136 dynamic updates.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dns01 {
    /// The primary DNS server taking updates, `ADDRESS:PORT` (`192.0.2.53:53`).
    pub server: String,
    /// The zone updated (`example.ru`); every `dns-01` name must be in it.
    pub zone: String,
    /// The TSIG key's name as the server knows it.
    pub tsig_key_name: String,
    /// The TSIG algorithm: `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
    #[serde(default = "default_tsig_alg")]
    pub tsig_algorithm: String,
    /// The environment variable holding the TSIG secret (base64, as in BIND's `key`
    /// statement); the secret itself is never in the file.
    pub tsig_key_env: String,
    /// TTL of the `_acme-challenge` TXT records, seconds (default 60).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Seconds to wait after the update before telling the CA to look (default 2).
    #[serde(default = "default_propagation")]
    pub propagation_s: u64,
}

/// The key type of a certificate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256.
    #[default]
    EcdsaP256,
    /// RSA 2048 bits.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA 3072 bits.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
}

/// How the CA checks that we control a name.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
pub enum Challenge {
    /// An HTTP request to `http://NAME/.well-known/acme-challenge/TOKEN`, answered by the
    /// active instance on `http01.port`.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// A TXT record `_acme-challenge.NAME`, set through `dns01`.
    #[serde(rename = "dns-01")]
    Dns01,
}

/// One certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// Name, unique in the group: latin letters, digits, `_`, `-` and `.` (at most 64).
    pub name: String,
    /// The DNS names it covers (the first is its subject); `*.example.ru` with `dns-01` only.
    pub names: Vec<String>,
    /// `ecdsa-p256` (default), `rsa-2048` or `rsa-3072`.
    #[serde(default)]
    pub key_type: KeyType,
    /// `http-01` (default) or `dns-01`.
    #[serde(default)]
    pub challenge: Challenge,
    /// Renew this many days before expiry (default: the section's `renew_before_days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before_days: Option<u32>,
    /// Where the certificate and its key are written.
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// One deploy target: a server reached over SSH (its host key pinned in the site's
/// `ssh.known_hosts`), a folder, the files' names, modes and owner, and a reload command.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name, unique within the certificate (shown in status and monitoring).
    pub name: String,
    /// SSH host (a server's address or name).
    pub host: String,
    /// SSH port (default 22).
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// SSH password (or `key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Private key file, unencrypted (or `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// The folder on that server (absolute; it must exist).
    pub dir: String,
    /// File name of the certificate with its chain (default `fullchain.pem`).
    #[serde(default = "default_cert_file")]
    pub cert_file: String,
    /// File name of the private key (default `privkey.pem`).
    #[serde(default = "default_key_file")]
    pub key_file_name: String,
    /// Mode of the certificate file, octal (default `0644`).
    #[serde(default = "default_cert_mode")]
    pub cert_mode: String,
    /// Mode of the key file, octal (default `0600`).
    #[serde(default = "default_key_mode")]
    pub key_mode: String,
    /// Owner of both files, `user` or `user:group` (absent: the SSH user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Run after both files are in place (an argv, quoted for the remote command line;
    /// absent: none), e.g. `["systemctl", "reload", "nginx"]`.
    #[serde(default)]
    pub reload: Vec<String>,
}

impl Acme {
    /// The days before expiry at which `cert` is renewed.
    pub fn renew_days(&self, cert: &Certificate) -> u32 {
        cert.renew_before_days.unwrap_or(self.renew_before_days)
    }
}

fn default_directory() -> String {
    LETS_ENCRYPT.into()
}
fn default_renew_days() -> u32 {
    30
}
fn default_alarm_days() -> u32 {
    14
}
fn default_http_port() -> u16 {
    80
}
fn default_tsig_alg() -> String {
    "hmac-sha256".into()
}
fn default_ttl() -> u32 {
    60
}
fn default_propagation() -> u64 {
    2
}
fn default_ssh_port() -> u16 {
    22
}
fn default_cert_file() -> String {
    "fullchain.pem".into()
}
fn default_key_file() -> String {
    "privkey.pem".into()
}
fn default_cert_mode() -> String {
    "0644".into()
}
fn default_key_mode() -> String {
    "0600".into()
}

/// Parses an octal file mode (`0640`, `640`): at most `0o7777`.
pub fn mode(text: &str) -> Result<u32, String> {
    let ok = !text.is_empty() && text.len() <= 4 && text.chars().all(|c| ('0'..='7').contains(&c));
    if !ok {
        return Err("expected an octal file mode such as \"0640\"".into());
    }
    u32::from_str_radix(text, 8).map_err(|_| "expected an octal file mode such as \"0640\"".into())
}

/// Whether `name` is a DNS name a certificate may carry (`a.example.ru`, or
/// `*.example.ru` when `wildcard`): labels of letters, digits and `-`, two labels at least.
pub fn dns_name(name: &str, wildcard: bool) -> Result<(), String> {
    let rest = match name.strip_prefix("*.") {
        Some(r) if wildcard => r,
        Some(_) => return Err("expected a DNS name; a wildcard (*.) needs challenge \"dns-01\"".into()),
        None => name,
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if rest.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("expected a DNS name such as \"www.example.ru\" (ASCII: punycode for other scripts)".into());
    }
    Ok(())
}
