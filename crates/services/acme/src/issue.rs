//! Issuing (the act step of `Issue` and `Resume`): the account, created once and kept in
//! the coordinator; then one order per certificate, its URL and the key of its CSR stored
//! (fenced) before any challenge is answered, so the instance after a failover finishes
//! that order instead of starting another; authorizations by HTTP-01 or DNS-01;
//! finalization with our CSR; the download, read back.

use crate::dns01::Dns;
use crate::error::AcmeError;
use crate::http01::Tokens;
use crate::keys;
use crate::section::{Acme, Certificate, Challenge};
use crate::store::{self, AccountRec, CertRec, Issued, OrderRec};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use mware_coord::{Coordinator, Fence};
use std::sync::Arc;
use std::time::Duration;

/// How long the order is polled for its authorizations, then for its certificate.
const POLL: RetryPolicy = RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(Duration::from_secs(90));

/// What issuing needs.
pub struct IssueCx<'a> {
    /// The account.
    pub account: &'a Account,
    /// The HTTP-01 answers.
    pub tokens: &'a Tokens,
    /// The DNS-01 updater (when the section has `dns01`).
    pub dns: Option<&'a Dns>,
    /// The coordinator.
    pub coord: &'a Arc<dyn Coordinator>,
    /// The activity's fence.
    pub fence: Fence,
    /// This instance.
    pub instance: &'a str,
}

/// The account for the section's directory: the stored one, or a new one created and
/// stored (fenced) once.
pub async fn account(acme: &Acme, coord: &Arc<dyn Coordinator>, fence: &Fence) -> Result<Account, AcmeError> {
    let now = mware_config::now_ms();
    let builder = || match &acme.ca_file {
        Some(f) => Account::builder_with_root(f).map_err(|e| AcmeError::Ca(format!("ca_file {f}: {e}"))),
        None => Account::builder().map_err(|e| AcmeError::Ca(e.to_string())),
    };
    if let Some(v) = coord.kv_get(fence.group, store::ACCOUNT_KEY).await? {
        let rec: AccountRec = serde_json::from_slice(&v.value).map_err(|e| AcmeError::Store(format!("account: {e}")))?;
        if rec.directory_url == acme.directory_url {
            let creds: AccountCredentials =
                serde_json::from_value(rec.credentials).map_err(|e| AcmeError::Store(format!("account credentials: {e}")))?;
            return builder()?.from_credentials(creds).await.map_err(|e| AcmeError::from_acme(e, now));
        }
        tracing::warn!(stored = %rec.directory_url, wanted = %acme.directory_url, "the stored ACME account belongs to another directory; creating one");
    }
    let contact: Vec<&str> = acme.contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, creds) = builder()?.create(&new, acme.directory_url.clone(), None).await.map_err(|e| AcmeError::from_acme(e, now))?;
    let rec = AccountRec {
        directory_url: acme.directory_url.clone(),
        credentials: serde_json::to_value(&creds).map_err(|e| AcmeError::Store(e.to_string()))?,
        created_ms: now,
    };
    let value = serde_json::to_vec(&rec).map_err(|e| AcmeError::Store(e.to_string()))?;
    mware_coord::kv_put(coord.as_ref(), fence, store::ACCOUNT_KEY, value).await?;
    tracing::info!(account = %account.id(), directory = %acme.directory_url, "ACME account created and stored");
    Ok(account)
}

/// Runs the order of `cert` to its end: a new one (stored before anything else) or the one
/// `rec` holds. `rec` is updated and saved at each step; on success the certificate is
/// returned and the order cleared.
pub async fn order(cx: &IssueCx<'_>, acme: &Acme, cert: &Certificate, rec: &mut CertRec) -> Result<Issued, AcmeError> {
    let now = mware_config::now_ms();
    let acme_err = |e| AcmeError::from_acme(e, mware_config::now_ms());
    let mut order = match &rec.order {
        Some(o) => match cx.account.order(o.url.clone()).await {
            Ok(ord) => ord,
            Err(instant_acme::Error::Api(p)) if p.status == Some(404) => {
                return abandon(cx, cert, rec, format!("the CA no longer knows the order: {p}")).await;
            }
            Err(e) => return Err(acme_err(e)),
        },
        None => {
            let names = store::wanted_names(cert);
            // RSA key generation takes CPU seconds: off the runtime's threads.
            let kt = cert.key_type;
            let key_pem = tokio::task::spawn_blocking(move || keys::generate(kt))
                .await
                .map_err(|e| AcmeError::Crypto(format!("key generation: {e}")))??;
            let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
            let ord = cx.account.new_order(&NewOrder::new(&ids)).await.map_err(acme_err)?;
            rec.order = Some(OrderRec {
                url: ord.url().to_string(),
                names,
                key_type: keys::key_type_name(cert.key_type).into(),
                key_pem,
                started_ms: now,
                by: cx.instance.to_string(),
            });
            rec.renew_requested = false;
            store::save(cx.coord.as_ref(), &cx.fence, &cert.name, rec).await?;
            tracing::info!(cert = %cert.name, url = %ord.url(), "ACME order created and stored");
            ord
        }
    };
    let o = rec.order.clone().ok_or_else(|| AcmeError::Store("order vanished".into()))?;
    loop {
        let status = order.state().status;
        match status {
            OrderStatus::Pending => {
                let mut added = Vec::new();
                let answered = authorize(cx, acme, cert, &mut order, &mut added).await;
                let polled = match answered {
                    Ok(()) => order.poll_ready(&POLL).await.map_err(acme_err),
                    Err(e) => Err(e),
                };
                for t in &added {
                    cx.tokens.remove(t);
                }
                if cert.challenge == Challenge::Dns01 {
                    cleanup(cx, &o.names).await;
                }
                polled?;
            }
            OrderStatus::Ready => {
                let kt = keys::key_type(&o.key_type).unwrap_or(cert.key_type);
                let csr = keys::csr(&o.names, &o.key_pem, kt)?;
                order.finalize_csr(&csr).await.map_err(acme_err)?;
            }
            OrderStatus::Processing | OrderStatus::Valid => {
                let chain = order.poll_certificate(&POLL).await.map_err(acme_err)?;
                let info = keys::info(&chain)?;
                return Ok(Issued {
                    names: o.names.clone(),
                    key_type: o.key_type.clone(),
                    chain_pem: chain,
                    key_pem: o.key_pem.clone(),
                    serial: info.serial,
                    not_before_ms: info.not_before_ms,
                    not_after_ms: info.not_after_ms,
                    issued_ms: mware_config::now_ms(),
                });
            }
            OrderStatus::Invalid => {
                let why = order_error(&mut order).await;
                return abandon(cx, cert, rec, why).await;
            }
        }
    }
}

/// Clears the order (fenced) and fails with `why`: the next attempt starts a new one
/// after the backoff.
async fn abandon(cx: &IssueCx<'_>, cert: &Certificate, rec: &mut CertRec, why: String) -> Result<Issued, AcmeError> {
    rec.order = None;
    store::save(cx.coord.as_ref(), &cx.fence, &cert.name, rec).await?;
    Err(AcmeError::Invalid(why))
}

/// The reasons an invalid order gives: the order's error and each failed challenge's.
async fn order_error(order: &mut instant_acme::Order) -> String {
    let mut why: Vec<String> = order.state().error.iter().map(|p| p.to_string()).collect();
    let mut authzs = order.authorizations();
    while let Some(Ok(a)) = authzs.next().await {
        for c in &a.challenges {
            if let Some(p) = &c.error {
                why.push(format!("{}: {p}", a.identifier()));
            }
        }
    }
    if why.is_empty() {
        "the CA gave no reason".into()
    } else {
        why.join("; ")
    }
}

/// Answers every pending authorization's challenge of the certificate's type and tells
/// the CA to look.
async fn authorize(
    cx: &IssueCx<'_>,
    acme: &Acme,
    cert: &Certificate,
    order: &mut instant_acme::Order,
    added: &mut Vec<String>,
) -> Result<(), AcmeError> {
    let acme_err = |e| AcmeError::from_acme(e, mware_config::now_ms());
    let kind = match cert.challenge {
        Challenge::Http01 => ChallengeType::Http01,
        Challenge::Dns01 => ChallengeType::Dns01,
    };
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.map_err(acme_err)?;
        match a.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(AcmeError::Invalid(format!("authorization of {} is {other:?}", a.identifier()))),
        }
        let ident = a.identifier().to_string();
        let mut ch = a.challenge(kind.clone()).ok_or_else(|| AcmeError::Ca(format!("the CA offers no {kind:?} challenge for {ident}")))?;
        let ka = ch.key_authorization();
        match cert.challenge {
            Challenge::Http01 => {
                if !cx.tokens.add(&ch.token, ka.as_str()) {
                    return Err(AcmeError::Http01("too many challenges in flight".into()));
                }
                added.push(ch.token.clone());
            }
            Challenge::Dns01 => {
                let dns = cx.dns.ok_or_else(|| AcmeError::Dns("no dns01 section".into()))?;
                dns.set_txt(&ident, &ka.dns_value()).await?;
                if let Some(d) = &acme.dns01 {
                    tokio::time::sleep(Duration::from_secs(d.propagation_s)).await;
                }
            }
        }
        // Told to look already (by the instance before a failover): answer, do not ask again.
        if ch.status == ChallengeStatus::Pending {
            ch.set_ready().await.map_err(acme_err)?;
        }
    }
    Ok(())
}

/// Removes the DNS-01 records of `names`.
async fn cleanup(cx: &IssueCx<'_>, names: &[String]) {
    if let Some(dns) = cx.dns {
        for n in names {
            if let Err(e) = dns.clear_txt(n).await {
                tracing::warn!(name = %n, error = %e, "could not remove the _acme-challenge record");
            }
        }
    }
}
