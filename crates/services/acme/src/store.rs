//! The service's durable state in the group's epoch-guarded KV: the ACME account
//! (`acme/account`) and one record per certificate (`acme/cert/<name>`): the certificate
//! held with its key, the order in flight with the key of its CSR, the backoff of issuing,
//! and each target's deploy state. Every write carries the activity's fence, so an
//! instance that lost its activity changes nothing, and the next one starts from here: an
//! order is finished or abandoned, never started twice.
//!
//! The private keys live here (the coordinator is the one place the group's instances
//! share); they are never shown: the API and status build their views from the other fields.

use crate::decide::{Held, Snapshot, TargetView};
use crate::section::{Acme, Certificate};
use mware_coord::{Coordinator, Fence, KvOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The account's key.
pub const ACCOUNT_KEY: &str = "acme/account";
/// Prefix of the certificates' records.
pub const CERT_PREFIX: &str = "acme/cert/";

/// The stored account: the directory it belongs to and instant-acme's credentials.
#[derive(Serialize, Deserialize)]
pub struct AccountRec {
    /// The directory URL it was created on.
    pub directory_url: String,
    /// The credentials (id, PKCS#8 key), as instant-acme serializes them.
    pub credentials: serde_json::Value,
    /// When it was created, ms.
    pub created_ms: u64,
}

/// One certificate's durable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CertRec {
    /// The certificate held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Issued>,
    /// The order in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderRec>,
    /// No new attempt at issuing before this time, ms.
    #[serde(default)]
    pub retry_at_ms: u64,
    /// Failures in a row of issuing.
    #[serde(default)]
    pub failures: u32,
    /// The last failure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// An operator asked for a renewal (`mware certs renew`).
    #[serde(default)]
    pub renew_requested: bool,
    /// Deploy state per target name.
    #[serde(default)]
    pub deploys: BTreeMap<String, DeployRec>,
}

/// A certificate held, with its key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Issued {
    /// Its names (sorted, lowercase).
    pub names: Vec<String>,
    /// Its key type (`ecdsa-p256` …).
    pub key_type: String,
    /// The certificate and its chain, PEM.
    pub chain_pem: String,
    /// Its private key, PEM (PKCS#8). Never shown.
    pub key_pem: String,
    /// Serial, hex.
    pub serial: String,
    /// Not before, ms.
    pub not_before_ms: u64,
    /// Not after, ms.
    pub not_after_ms: u64,
    /// When it was issued (downloaded), ms.
    pub issued_ms: u64,
}

/// An order in flight.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderRec {
    /// The order's URL at the CA.
    pub url: String,
    /// The names ordered.
    pub names: Vec<String>,
    /// The key type of its CSR's key.
    pub key_type: String,
    /// The key its CSR carries (made before the order, so a resumed order finalizes with
    /// it), PEM. Never shown.
    pub key_pem: String,
    /// Started at, ms.
    pub started_ms: u64,
    /// By which instance.
    pub by: String,
}

/// One target's deploy state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeployRec {
    /// The serial written there last (and read back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The expiry read back from the target's file, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_ms: Option<u64>,
    /// When it was last written, ms.
    #[serde(default)]
    pub at_ms: u64,
    /// The last failure, in words (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failures in a row.
    #[serde(default)]
    pub failures: u32,
    /// No new attempt before this time, ms.
    #[serde(default)]
    pub retry_at_ms: u64,
}

/// Reads the record of certificate `name` (default when absent).
pub async fn load(coord: &dyn Coordinator, group: u32, name: &str) -> Result<CertRec, crate::AcmeError> {
    let v = coord.kv_get(group, &format!("{CERT_PREFIX}{name}")).await?;
    match v {
        None => Ok(CertRec::default()),
        Some(v) => serde_json::from_slice(&v.value).map_err(|e| crate::AcmeError::Store(format!("record of {name}: {e}"))),
    }
}

/// Writes the record of certificate `name`, fenced.
pub async fn save(coord: &dyn Coordinator, fence: &Fence, name: &str, rec: &CertRec) -> Result<(), crate::AcmeError> {
    let value = serde_json::to_vec(rec).map_err(|e| crate::AcmeError::Store(e.to_string()))?;
    coord.kv_apply(fence, vec![KvOp::Put { key: format!("{CERT_PREFIX}{name}"), value }]).await?;
    Ok(())
}

/// The sorted, lowercase names of a certificate in the site file.
pub fn wanted_names(cert: &Certificate) -> Vec<String> {
    let mut n: Vec<String> = cert.names.iter().map(|s| s.to_ascii_lowercase()).collect();
    n.sort();
    n.dedup();
    n
}

/// The decision's view of a certificate held.
pub fn held(i: &Issued) -> Held {
    Held {
        names: i.names.clone(),
        key_type: i.key_type.clone(),
        serial: i.serial.clone(),
        not_before_ms: i.not_before_ms,
        not_after_ms: i.not_after_ms,
    }
}

/// The decision's view of `rec` for `cert` at `now_ms`.
pub fn snapshot(acme: &Acme, cert: &Certificate, rec: &CertRec, now_ms: u64) -> Snapshot {
    Snapshot {
        now_ms,
        names: wanted_names(cert),
        key_type: crate::keys::key_type_name(cert.key_type).into(),
        renew_before_ms: u64::from(acme.renew_days(cert)) * 86_400_000,
        issued: rec.issued.as_ref().map(held),
        order: rec.order.as_ref().map(|o| (o.started_ms, o.by.clone())),
        retry_at_ms: rec.retry_at_ms,
        last_error: rec.last_error.clone(),
        renew_requested: rec.renew_requested,
        targets: cert
            .targets
            .iter()
            .map(|t| {
                let d = rec.deploys.get(&t.name);
                TargetView { name: t.name.clone(), deployed: d.and_then(|d| d.serial.clone()), retry_at_ms: d.map_or(0, |d| d.retry_at_ms) }
            })
            .collect(),
    }
}
