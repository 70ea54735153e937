//! Connecting to etcd, with TLS: turns the site file's `coordination.tls` into the
//! client's TLS options once (the reconnect paths reuse them), checking each file first
//! (PEM of the right kind that parses as a certificate or key) so that an operator reads
//! which file is wrong and how; opens clients; probes a new TLS
//! client so that a refused handshake is an error at connect; describes etcd errors down
//! to their cause. Key material is never printed: only file names and the kind of PEM
//! block found.

use super::unavailable;
use crate::api::{CoordError, Settings};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use mware_config::TlsFiles;
use std::time::Duration;

/// Connects (and authenticates, if a user is set) to the configured endpoints.
pub(super) async fn new_client(settings: &Settings, tls: Option<&etcd_client::TlsOptions>) -> Result<Client, CoordError> {
    let c = &settings.coordination;
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(1))
        .with_keep_alive_while_idle(true);
    if let (Some(u), Some(p)) = (&c.user, &c.password) {
        opts = opts.with_user(u.clone(), p.expose().to_string());
    }
    if let Some(t) = tls {
        opts = opts.with_tls(t.clone());
    }
    tokio::time::timeout(Duration::from_secs(10), Client::connect(c.endpoints.clone(), Some(opts)))
        .await
        .map_err(|_| CoordError::Unavailable(format!("etcd {:?} did not answer within 10 s", c.endpoints)))?
        .map_err(unavailable)
}

/// One request over a fresh TLS client: a TLS problem is an error, an etcd that does not
/// answer yet is only logged (the client keeps trying, as without TLS). With TLS 1.3 a
/// server that refuses the client's certificate may just hang up after the handshake (the
/// client then sees the connection closed or reset, or a broken pipe), so three hang-ups
/// in a row count as refused too.
pub(super) async fn probe(client: Client, endpoints: &[String], has_identity: bool) -> Result<(), CoordError> {
    let mut described = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let r = tokio::time::timeout(Duration::from_secs(10), client.clone().status()).await;
        described = match r {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => describe(&e),
            Err(_) => "no answer within 10 s".to_string(),
        };
        if !is_hang_up(&described) {
            break;
        }
    }
    if is_tls_problem(&described) || is_hang_up(&described) {
        return Err(CoordError::Unavailable(format!(
            "the TLS connection to etcd {endpoints:?} failed: {described}{}",
            hint(&described, has_identity)
        )));
    }
    tracing::warn!(error = %described, "etcd does not answer over TLS yet; will keep trying");
    Ok(())
}

/// What a PEM file must hold.
#[derive(Clone, Copy, PartialEq)]
enum Pem {
    Certificate,
    PrivateKey,
}

/// The TLS options for `endpoints`, or `None` without a `tls` section. `tls` needs
/// `https://` endpoints (and `https://` endpoints need `tls`: the CA to trust).
pub(super) fn options(tls: Option<&TlsFiles>, endpoints: &[String]) -> Result<Option<TlsOptions>, CoordError> {
    let Some(t) = tls else {
        if let Some(e) = endpoints.iter().find(|e| e.starts_with("https://")) {
            return Err(CoordError::Invalid(format!(
                "expected coordination.tls with a ca_file for the https endpoint {e}, found no tls section"
            )));
        }
        return Ok(None);
    };
    if let Some(e) = endpoints.iter().find(|e| !e.starts_with("https://")) {
        return Err(CoordError::Invalid(format!("expected https:// etcd endpoints with coordination.tls, found {e}")));
    }
    let ca = read_pem("ca_file", &t.ca_file, Pem::Certificate)?;
    let mut o = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
    match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => {
            let cert = read_pem("cert_file", c, Pem::Certificate)?;
            let key = read_pem("key_file", k, Pem::PrivateKey)?;
            o = o.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(CoordError::Invalid(
                "expected coordination.tls.key_file beside cert_file (mutual TLS needs both), found only cert_file".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(CoordError::Invalid(
                "expected coordination.tls.cert_file beside key_file (mutual TLS needs both), found only key_file".into(),
            ))
        }
    }
    Ok(Some(o))
}

/// Reads `path` (the setting `coordination.tls.<field>`) and checks that it holds PEM of
/// the wanted kind. Errors name the field, the file and the kinds of block found.
fn read_pem(field: &str, path: &str, want: Pem) -> Result<Vec<u8>, CoordError> {
    let bytes = std::fs::read(path).map_err(|e| CoordError::Invalid(format!("cannot read coordination.tls.{field} {path}: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    // Labels of the PEM blocks, e.g. "CERTIFICATE", "EC PRIVATE KEY" (never their content).
    let labels: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----")).collect();
    let found = if labels.is_empty() {
        "no PEM block".to_string()
    } else {
        format!("PEM blocks {}", labels.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", "))
    };
    let ok = match want {
        Pem::Certificate => labels.contains(&"CERTIFICATE"),
        Pem::PrivateKey => labels.iter().any(|l| matches!(*l, "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY")),
    };
    if !ok {
        let expected = match want {
            Pem::Certificate => "PEM certificates (-----BEGIN CERTIFICATE-----)",
            Pem::PrivateKey if labels.contains(&"ENCRYPTED PRIVATE KEY") => {
                "an unencrypted PEM private key (an encrypted key is not supported: decrypt it with `openssl pkey`)"
            }
            Pem::PrivateKey => "a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
        };
        return Err(CoordError::Invalid(format!("expected {expected} in coordination.tls.{field} {path}, found {found}")));
    }
    if let Err(problem) = parse_pem(&bytes, want) {
        return Err(CoordError::Invalid(format!(
            "expected PEM blocks that hold a valid {} in coordination.tls.{field} {path}, found {problem}",
            if want == Pem::Certificate { "certificate" } else { "private key" }
        )));
    }
    Ok(bytes)
}

/// Parses what the TLS library will use: every certificate as X.509, or the private key
/// as a key the client can sign with. The TLS library would skip an unparsable CA
/// certificate without a word (every handshake then fails as if the server were
/// untrusted), so a bad block is found here. The problem never quotes the file.
fn parse_pem(bytes: &[u8], want: Pem) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    match want {
        Pem::Certificate => {
            for (i, cert) in CertificateDer::pem_slice_iter(bytes).enumerate() {
                let cert = cert.map_err(|e| format!("certificate {} that does not decode ({e})", i + 1))?;
                rustls::RootCertStore::empty().add(cert).map_err(|e| format!("certificate {} that does not parse ({e})", i + 1))?;
            }
        }
        Pem::PrivateKey => {
            let key = PrivateKeyDer::from_pem_slice(bytes).map_err(|e| format!("a key that does not decode ({e})"))?;
            rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("a key that does not parse ({e})"))?;
        }
    }
    Ok(())
}

/// An etcd error in words, with the chain of causes (a TLS handshake refused by either
/// side shows up only in the causes).
pub(super) fn describe(e: &etcd_client::Error) -> String {
    let (mut out, source): (String, Option<&(dyn std::error::Error + 'static)>) = match e {
        etcd_client::Error::TransportError(t) => (t.to_string(), std::error::Error::source(t)),
        // The status's own Display adds details and metadata that tell an operator nothing.
        etcd_client::Error::GRpcStatus(s) => (format!("{:?}: {}", s.code(), s.message()), std::error::Error::source(s)),
        e => (e.to_string(), None),
    };
    let mut next = source;
    while let Some(s) = next {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        next = s.source();
    }
    out
}

/// The error for TLS files that look like PEM but that the TLS library cannot parse
/// (`described` is the client's error), naming the files; `None` for other errors.
pub(super) fn unparsable(described: &str, t: &TlsFiles) -> Option<CoordError> {
    let files = if described.contains("Error parsing TLS certificate") {
        let mut f = format!("coordination.tls.ca_file {}", t.ca_file);
        if let Some(c) = &t.cert_file {
            f.push_str(&format!(" or cert_file {c}"));
        }
        f
    } else if described.contains("Error parsing TLS private key") {
        format!("coordination.tls.key_file {}", t.key_file.as_deref().unwrap_or("?"))
    } else {
        return None;
    };
    Some(CoordError::Invalid(format!(
        "expected PEM blocks that hold a valid certificate or key in {files}, found one that does not parse ({described})"
    )))
}

/// A hint for the usual causes of a refused handshake, or "".
pub(super) fn hint(described: &str, has_identity: bool) -> &'static str {
    if described.contains("UnknownIssuer") {
        " (the server's certificate is not signed by coordination.tls.ca_file)"
    } else if described.contains("NotValidForName") {
        " (the server's certificate does not name the endpoint's host or IP in its subjectAltName)"
    } else if (described.contains("alert") || is_hang_up(described)) && !has_identity {
        " (the server may want a client certificate: set coordination.tls.cert_file and key_file)"
    } else if described.contains("alert") || is_hang_up(described) {
        " (the server did not accept the client certificate coordination.tls.cert_file)"
    } else {
        ""
    }
}

/// Whether the error (as described) is about TLS or certificates rather than an
/// unreachable etcd.
pub(super) fn is_tls_problem(described: &str) -> bool {
    let d = described.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "http/2 was not negotiated", "alert", "private key"].iter().any(|w| d.contains(w))
}

/// Whether the server hung up on a connection it had accepted (after the TLS handshake,
/// this is how a TLS 1.3 server may refuse a client certificate).
pub(super) fn is_hang_up(described: &str) -> bool {
    let d = described.to_ascii_lowercase();
    ["connection closed", "broken pipe", "connection reset"].iter().any(|w| d.contains(w))
}
