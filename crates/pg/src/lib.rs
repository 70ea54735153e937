//! mware-pg: TLS to PostgreSQL through rustls, for every crate that connects to a
//! database (provisioning, pg_controller's probe, device jobs' store), so none copies it.
//!
//! Without a CA file the connection is encrypted when the DSN's `sslmode` asks for it
//! (or `prefer` and the server offers it) but the server's certificate is not checked,
//! as libpq's `sslmode=require` does without a root certificate; the handshake's
//! signatures are still verified. With a CA file the chain and the host name are
//! verified (libpq's `verify-full`). [`connect`] opens a connection for a DSN with
//! every libpq `sslmode` (`disable` … `verify-full`) and `sslrootcert`.

#![deny(missing_docs)]

mod connect;
mod dsn;

pub use connect::{connect, connect_config, connector_for, ConnectError, Connection};
pub use dsn::{split, Split, SslMode};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// A verifier weaker than rustls's own: with no `chain` it accepts any certificate
/// (libpq's `require`); with one it checks the chain but not the host name (libpq's
/// `verify-ca`). Handshake signatures are always checked.
#[derive(Debug)]
pub(crate) struct Lenient {
    /// The chain check, when a CA is given.
    pub(crate) chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    /// The provider's signature algorithms.
    pub(crate) algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        mid: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end, mid, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.algs)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A TLS setup that cannot be used: what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct TlsError {
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

/// The connector for tokio-postgres: verifying against `ca_file` (PEM) when given, else
/// encrypting without checking the certificate (libpq's `require`). `what` names the
/// setting the file came from, for errors.
pub fn connector(ca_file: Option<&str>, what: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError { expected: "a TLS setup rustls accepts".into(), found: e.to_string() })?;
    let config = match ca_file {
        Some(path) => builder.with_root_certificates(roots(path, what)?).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient { chain: None, algs: provider_algorithms(&provider) }))
            .with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The CA certificates of the PEM file `path` (`what` names its setting).
fn roots(path: &str, what: &str) -> Result<RootCertStore, TlsError> {
    let bad = |found: String| TlsError { expected: format!("PEM certificates in {what} {path}"), found };
    let mut roots = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?.collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("none".into()));
    }
    for c in certs {
        roots.add(c).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

fn provider_algorithms(p: &CryptoProvider) -> WebPkiSupportedAlgorithms {
    p.signature_verification_algorithms
}
