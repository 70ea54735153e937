//! One way to open a PostgreSQL connection for every crate: the DSN's `sslmode` as
//! libpq means it (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`), the CA
//! from the caller's setting or the DSN's `sslrootcert`, TLS through rustls.

use crate::dsn::{split, SslMode};
use crate::{roots, Lenient, TlsError};
use rustls::client::WebPkiServerVerifier;
use rustls::ClientConfig;
use std::sync::Arc;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connection task tokio-postgres hands back; spawn it.
pub type Connection = tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Why a connection was not opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The DSN or the TLS settings cannot be used.
    #[error(transparent)]
    Setup(#[from] TlsError),
    /// PostgreSQL or the network refused.
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// The connector for `mode`: `verify-ca`/`verify-full` need a CA; `require` and
/// `prefer` check against the CA when one is given (as libpq does with a root
/// certificate), else only encrypt.
pub fn connector_for(mode: SslMode, ca_file: Option<&str>, what: &str) -> Result<MakeRustlsConnect, TlsError> {
    match (mode, ca_file) {
        (SslMode::VerifyCa, Some(path)) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(path, what)?), provider.clone())
                .build()
                .map_err(|e| TlsError { expected: format!("a usable CA in {what} {path}"), found: e.to_string() })?;
            let algs = provider.signature_verification_algorithms;
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError { expected: "a TLS setup rustls accepts".into(), found: e.to_string() })?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient { chain: Some(verifier), algs }))
                .with_no_client_auth();
            Ok(MakeRustlsConnect::new(config))
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => Err(TlsError {
            expected: format!("a CA file ({what} or the DSN's sslrootcert) for sslmode=verify-ca/verify-full"),
            found: "none".into(),
        }),
        _ => crate::connector(ca_file, what),
    }
}

/// Opens a connection for `dsn`, honouring its `sslmode` and `sslrootcert`; `ca_file`
/// (the caller's setting, named `what` in errors) wins over `sslrootcert`.
pub async fn connect(dsn: &str, ca_file: Option<&str>, what: &str) -> Result<(Client, Connection), ConnectError> {
    let s = split(dsn)?;
    let config: tokio_postgres::Config = s
        .rest
        .parse()
        .map_err(|e: tokio_postgres::Error| TlsError { expected: "a connection string libpq reads".into(), found: e.to_string() })?;
    let ca = ca_file.map(str::to_string).or(s.root_cert);
    connect_config(config, s.mode, ca.as_deref(), what).await
}

/// Opens a connection with a built `config` in `mode` (see [`connect`]).
pub async fn connect_config(
    mut config: tokio_postgres::Config,
    mode: SslMode,
    ca_file: Option<&str>,
    what: &str,
) -> Result<(Client, Connection), ConnectError> {
    let tls = connector_for(mode, ca_file, what)?;
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    Ok(config.connect(tls).await?)
}
