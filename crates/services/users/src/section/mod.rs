//! (new) The `users` section of a group: the user services of its domains (login,
//! password recovery, invitations, self-registration), the group's database where the
//! accounts live, the SMTP relay of their mail, the password hashing and policy, and the
//! abuse limits.
//!
//! The section's type and its check live here, in the service that runs it; what the
//! check passes parses.

use mware_config::{Check, SectionConfig, SiteInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod check;

/// (new) The `users` section.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// The group's database where the accounts, tokens, sessions and the mail outbox live.
    pub database: Database,
    /// The public base URL of the pages (`https://id.example.ru`): every mailed link is
    /// `<public_url>/users/<domain>/<page>?token=…`.
    pub public_url: String,
    /// The SMTP relay that sends the mail.
    pub smtp: Smtp,
    /// Argon2id parameters of new password hashes (OWASP's current advice by default).
    #[serde(default)]
    pub argon2: Argon2Params,
    /// Password policy of every new password.
    #[serde(default)]
    pub password_policy: PasswordPolicy,
    /// Lifetimes of tokens and sessions.
    #[serde(default)]
    pub lifetimes: Lifetimes,
    /// Abuse limits on every endpoint.
    #[serde(default)]
    pub limits: Limits,
    /// The domains served, each with its own settings (a domain of this group's part of the
    /// tree; a domain not listed gets 404 from every route).
    pub domains: Vec<DomainUsers>,
}

impl SectionConfig for Users {
    const KEY: &'static str = "users";
    fn check(cx: &mut Check, v: &Value, at: &str, _site: &SiteInfo) {
        check::users(cx, v, at)
    }
}

/// (new) The group's database.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The environment variable holding the PostgreSQL connection string (libpq's
    /// key=value or URL form, `sslmode` up to `verify-full`); never in the site file.
    pub dsn_env: String,
    /// A PEM file of CA certificates the server's certificate is checked against (wins over
    /// the DSN's `sslrootcert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Connections kept open at most (default 8).
    #[serde(default = "default_pool")]
    pub pool_size: usize,
}

/// (new) The SMTP relay.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    /// Host name or address of the relay.
    pub host: String,
    /// Port (default 587).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// `starttls` (default: required, never plain), `tls` (implicit TLS, port 465) or
    /// `none` (plain: only for a relay on loopback).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The environment variable holding the SMTP user name (absent: no authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_env: Option<String>,
    /// The environment variable holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The sender address (`From:`), one address.
    pub from: String,
    /// Seconds one SMTP conversation may take (default 20).
    #[serde(default = "default_smtp_timeout")]
    pub timeout_s: u64,
    /// Attempts of one mail before it is given up and shown failed (default 12; the
    /// pause between attempts doubles from 5 s up to 10 min).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

/// TLS to the relay.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// Implicit TLS.
    Tls,
    /// Plain text (loopback relays only).
    None,
}

/// (new) Argon2id parameters (OWASP: m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory, KiB (default 19456).
    #[serde(default = "default_m")]
    pub memory_kib: u32,
    /// Iterations (default 2).
    #[serde(default = "default_t")]
    pub iterations: u32,
    /// Lanes (default 1).
    #[serde(default = "default_p")]
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params { memory_kib: default_m(), iterations: default_t(), parallelism: default_p() }
    }
}

/// (new) What a new password must be.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Shortest length, characters (default 12).
    #[serde(default = "default_min_len")]
    pub min_length: usize,
    /// Longest length, characters (default 128).
    #[serde(default = "default_max_len")]
    pub max_length: usize,
    /// A file of breached passwords, one a line (absent: no such check); read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breached_file: Option<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy { min_length: default_min_len(), max_length: default_max_len(), breached_file: None }
    }
}

/// (new) Lifetimes, seconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    /// A recovery link (default 1800).
    #[serde(default = "default_recovery_s")]
    pub recovery_s: u64,
    /// An invitation (default 604800, a week).
    #[serde(default = "default_invitation_s")]
    pub invitation_s: u64,
    /// A registration's confirmation link (default 86400).
    #[serde(default = "default_registration_s")]
    pub registration_s: u64,
    /// A session after login (default 43200).
    #[serde(default = "default_session_s")]
    pub session_s: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            recovery_s: default_recovery_s(),
            invitation_s: default_invitation_s(),
            registration_s: default_registration_s(),
            session_s: default_session_s(),
        }
    }
}

/// (new) Abuse limits: requests allowed per key, with a burst; past them 429 with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute from one client IP, on every endpoint (default 60).
    #[serde(default = "default_per_ip")]
    pub per_ip_per_min: u32,
    /// Attempts per hour naming one login (login, recovery; default 10).
    #[serde(default = "default_per_login")]
    pub per_login_per_hour: u32,
    /// Mails per hour to one address (recovery, registration, invitation; default 5).
    #[serde(default = "default_per_address")]
    pub per_address_per_hour: u32,
    /// Refusals of one key within a minute that raise an alarm event (default 20).
    #[serde(default = "default_alarm_after")]
    pub alarm_after: u32,
    /// Keys remembered per kind at most (default 100000); past it the oldest are dropped.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_ip_per_min: default_per_ip(),
            per_login_per_hour: default_per_login(),
            per_address_per_hour: default_per_address(),
            alarm_after: default_alarm_after(),
            max_keys: default_max_keys(),
        }
    }
}

/// (new) One domain's user services.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DomainUsers {
    /// The domain (canonical: lowercase, punycode).
    pub name: String,
    /// Self-registration (off by default).
    #[serde(default)]
    pub self_registration: SelfRegistration,
    /// A folder of this domain's mail templates (`<kind>.<lang>.txt`, first line the
    /// subject); a template missing there is the built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<String>,
    /// Roles an invitation may give (default `["user", "admin"]`).
    #[serde(default = "default_roles")]
    pub roles: Vec<String>,
    /// Identity providers users may register and log in with (OpenID Connect).
    #[serde(default)]
    pub oidc: Vec<OidcProvider>,
}

/// (new) An identity provider of a domain.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// Its name in the URLs `/users/<domain>/oidc/<name>/start` and `…/callback`.
    pub name: String,
    /// `generic` (default: any OpenID Connect provider, by discovery) or `esia` (ESIA's
    /// endpoints and shapes, its GOST signatures made and checked by the hooks
    /// `sign_command` and `verify_command`; see docs/services/users.md).
    #[serde(default)]
    pub profile: OidcProfile,
    /// The issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The environment variable holding the client secret (`generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes asked for besides `openid` (default `["email"]`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that names the user: `email` (default, only when the provider
    /// says it is verified), `sub` or `preferred_username`. Not used by `esia`: ESIA's
    /// user is always `urn:esia:sbj_id`.
    #[serde(default = "default_claim")]
    pub user_claim: String,
    /// Values of that claim allowed in (exact, or `@domain` for any address there);
    /// empty (default): any.
    #[serde(default)]
    pub allowed_values: Vec<String>,
    /// `esia`: the signing hook, an argv that reads the text to sign on stdin and prints
    /// the detached signature (base64) on stdout (e.g. a CryptoPro or openssl-gost call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_command: Option<Vec<String>>,
    /// `esia`: the verification hook, an argv run for each ID token with `{data}` and
    /// `{signature}` in its arguments replaced by the paths of two files: the signed text
    /// (`header.payload` of the JWS) and the signature (raw bytes); exit status 0 means
    /// valid, any other invalid. The token's `alg` is in the environment variable
    /// `MWARE_JWS_ALG`. E.g. a CryptoPro `cryptcp` or openssl-gost call, or for an RS256
    /// test provider `openssl dgst -sha256 -verify pub.pem -signature {signature} {data}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_command: Option<Vec<String>>,
}

/// The kind of a provider.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OidcProfile {
    /// Any OpenID Connect provider.
    #[default]
    Generic,
    /// ESIA (Gosuslugi).
    Esia,
}

/// (new) Self-registration of a domain.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SelfRegistration {
    /// On or off (default off: `POST …/registrations` answers 403).
    #[serde(default)]
    pub enabled: bool,
    /// E-mail domains allowed to register (empty: any).
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// A confirmed registration waits for an administrator's approval (default false).
    #[serde(default)]
    pub approval: bool,
}

fn default_pool() -> usize {
    8
}
fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_timeout() -> u64 {
    20
}
fn default_attempts() -> u32 {
    12
}
fn default_m() -> u32 {
    19_456
}
fn default_t() -> u32 {
    2
}
fn default_p() -> u32 {
    1
}
fn default_min_len() -> usize {
    12
}
fn default_max_len() -> usize {
    128
}
fn default_recovery_s() -> u64 {
    1800
}
fn default_invitation_s() -> u64 {
    7 * 86_400
}
fn default_registration_s() -> u64 {
    86_400
}
fn default_session_s() -> u64 {
    43_200
}
fn default_per_ip() -> u32 {
    60
}
fn default_per_login() -> u32 {
    10
}
fn default_per_address() -> u32 {
    5
}
fn default_alarm_after() -> u32 {
    20
}
fn default_max_keys() -> usize {
    100_000
}
fn default_scopes() -> Vec<String> {
    vec!["email".into()]
}
fn default_claim() -> String {
    "email".into()
}
fn default_roles() -> Vec<String> {
    vec!["user".into(), "admin".into()]
}

impl Users {
    /// The settings of `domain`, when this section serves it.
    pub fn domain(&self, domain: &str) -> Option<&DomainUsers> {
        self.domains.iter().find(|d| d.name == domain)
    }
}
