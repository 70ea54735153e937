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
        // A target still holding an older certificate that close to its expiry (the alarm
        // period shortened as for the held one, by the lifetime of the certificates issued).
        let window = alarm_ms.min(i.not_after_ms.saturating_sub(i.not_before_ms) / 6);
        for t in &cert.targets {
            if let Some(d) = rec.deploys.get(&t.name) {
                if d.serial.as_deref() != Some(&i.serial) && d.not_after_ms.is_some_and(|n| now_ms >= n.saturating_sub(window)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeployRec, Issued};

    fn section() -> Acme {
        serde_json::from_value(json!({"certificates": [{"name": "web", "names": ["www.example.ru"],
            "targets": [{"name": "web1", "host": "192.0.2.1", "user": "u", "key_file": "/k", "dir": "/d"}]}]}))
        .unwrap()
    }

    fn rec(not_before_ms: u64, not_after_ms: u64) -> CertRec {
        let issued = Issued {
            names: vec!["www.example.ru".into()],
            key_type: "ecdsa-p256".into(),
            chain_pem: String::new(),
            key_pem: "-----BEGIN PRIVATE KEY-----".into(),
            serial: "02".into(),
            not_before_ms,
            not_after_ms,
            issued_ms: not_before_ms,
        };
        let mut r = CertRec { issued: Some(issued), ..Default::default() };
        r.deploys.insert("web1".into(), DeployRec { serial: Some("02".into()), not_after_ms: Some(not_after_ms), ..Default::default() });
        r
    }

    #[test]
    fn health_is_ok_then_failing_within_the_alarm_period_and_warning_on_a_failed_deploy() {
        let a = section();
        let c = &a.certificates[0];
        let r = rec(0, 90 * DAY_MS);
        assert_eq!(health(&a, c, &r, 10 * DAY_MS).0, Health::Ok);
        assert_eq!(health(&a, c, &r, 70 * DAY_MS).0, Health::Ok, "renewal due, not yet alarming");
        let (h, why) = health(&a, c, &r, 77 * DAY_MS);
        assert_eq!(h, Health::Failing, "{why}");
        assert!(why.contains("its renewal has not succeeded"), "{why}");
        let mut r2 = r.clone();
        r2.deploys.get_mut("web1").unwrap().error = Some("ssh refused".into());
        let (h, why) = health(&a, c, &r2, 10 * DAY_MS);
        assert_eq!((h, why.as_str()), (Health::Warning, "deploy failed to web1: ssh refused"));
        let v = view(&a, c, &r2, 10 * DAY_MS);
        assert_eq!(v["targets"][0]["state"], "failing");
        assert!(!v.to_string().contains("PRIVATE KEY"), "never a key: {v}");
    }

    #[test]
    fn an_old_certificate_left_on_a_target_near_its_expiry_is_failing() {
        let a = section();
        let c = &a.certificates[0];
        let mut r = rec(60 * DAY_MS, 150 * DAY_MS);
        let d = r.deploys.get_mut("web1").unwrap();
        (d.serial, d.not_after_ms) = (Some("01".into()), Some(90 * DAY_MS));
        assert_eq!(health(&a, c, &r, 70 * DAY_MS).0, Health::Ok);
        let (h, why) = health(&a, c, &r, 80 * DAY_MS);
        assert_eq!(h, Health::Failing, "{why}");
        assert!(why.starts_with("target web1 still has a certificate"), "{why}");
    }
}
