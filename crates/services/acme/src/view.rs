//! What the API, the CLI, status and monitoring show of a certificate, built from the
//! site file and its stored record (never its keys): its state, the next step in words,
//! and each target's deploy state with the expiry read back there. Pure.

use crate::decide::{decide, when};
use crate::section::{Acme, Certificate, Challenge};
use crate::store::{snapshot, CertRec};
use mware_host::Health;
use serde_json::{json, Value};

const DAY_MS: u64 = 86_400_000;

/// The health of a certificate as monitoring shows it, with the reason: `failing` when it
/// expires within `alarm_before_days` (a sixth of its lifetime for a short-lived one) and
/// its renewal has not succeeded, or a target still has an older one that close to
/// expiry; `warning` when issuing or a deploy failed last, or none is held yet; else `ok`.
pub fn health(acme: &Acme, cert: &Certificate, rec: &CertRec, now_ms: u64) -> (Health, String) {
    let alarm_ms = u64::from(acme.alarm_before_days) * DAY_MS;
    if let Some(i) = &rec.issued {
        if now_ms >= crate::store::held(i).alarm_at(alarm_ms) {
            let err = rec.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            return (
                Health::Failing,
                format!(
                    "expires at {} (within the alarm period of {} days) and its renewal has not succeeded{err}",
                    when(i.not_after_ms),
                    acme.alarm_before_days
                ),
            );
        }
        for t in &cert.targets {
            if let Some(d) = rec.deploys.get(&t.name) {
                if d.serial.as_deref() != Some(&i.serial) && d.not_after_ms.is_some_and(|n| n <= now_ms + alarm_ms) {
                    return (
                        Health::Failing,
                        format!("target {} still has a certificate that expires within {} days", t.name, acme.alarm_before_days),
                    );
                }
            }
        }
    }
    if let Some(e) = &rec.last_error {
        return (Health::Warning, format!("issuing failed: {e}"));
    }
    let Some(i) = &rec.issued else { return (Health::Warning, "no certificate issued yet".into()) };
    let failed: Vec<String> = cert
        .targets
        .iter()
        .filter_map(|t| rec.deploys.get(&t.name).and_then(|d| d.error.as_ref().map(|e| format!("{}: {e}", t.name))))
        .collect();
    if !failed.is_empty() {
        return (Health::Warning, format!("deploy failed to {}", failed.join("; ")));
    }
    (Health::Ok, format!("valid until {}", when(i.not_after_ms)))
}

/// One certificate as `GET /api/v1/certificates` shows it.
pub fn view(acme: &Acme, cert: &Certificate, rec: &CertRec, now_ms: u64) -> Value {
    let (h, why) = health(acme, cert, rec, now_ms);
    let next = decide(&snapshot(acme, cert, rec, now_ms)).to_string();
    let issued = rec.issued.as_ref().map(|i| {
        json!({
            "serial": i.serial, "names": i.names, "key_type": i.key_type,
            "not_before": when(i.not_before_ms), "not_after": when(i.not_after_ms), "not_after_ms": i.not_after_ms,
            "expires_in_s": (i.not_after_ms as i64 - now_ms as i64) / 1000, "issued_at": when(i.issued_ms),
        })
    });
    let targets: Vec<Value> = cert
        .targets
        .iter()
        .map(|t| {
            let d = rec.deploys.get(&t.name).cloned().unwrap_or_default();
            let current = rec.issued.as_ref().is_some_and(|i| d.serial.as_deref() == Some(&i.serial));
            json!({
                "name": t.name, "host": t.host, "port": t.port, "dir": t.dir,
                "serial": d.serial, "current": current,
                "not_after": d.not_after_ms.map(when), "not_after_ms": d.not_after_ms,
                "deployed_at": (d.at_ms > 0).then(|| when(d.at_ms)),
                "state": if d.error.is_some() { "failing" } else if current { "ok" } else { "pending" },
                "error": d.error, "failures": d.failures,
                "retry_at": (d.retry_at_ms > now_ms).then(|| when(d.retry_at_ms)),
            })
        })
        .collect();
    json!({
        "name": cert.name,
        "names": cert.names,
        "key_type": crate::keys::key_type_name(cert.key_type),
        "challenge": match cert.challenge { Challenge::Http01 => "http-01", Challenge::Dns01 => "dns-01" },
        "renew_before_days": acme.renew_days(cert),
        "state": h.as_str(),
        "reason": why,
        "next": next,
        "certificate": issued,
        "order": rec.order.as_ref().map(|o| json!({"url": o.url, "started_at": when(o.started_ms), "by": o.by})),
        "last_error": rec.last_error,
        "failures": rec.failures,
        "retry_at": (rec.retry_at_ms > now_ms).then(|| when(rec.retry_at_ms)),
        "renew_requested": rec.renew_requested,
        "targets": targets,
    })
}
