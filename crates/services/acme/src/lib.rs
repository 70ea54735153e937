//! mware-acme: certificates for the site's names issued and renewed through ACME (RFC
//! 8555) by the group's active instance, and deployed over SSH to the servers that use
//! them (seed: "ACME LetsEncrypt automatic SSL certificate generation service").
//!
//! A group's `acme` section names the CA's directory, the account's contacts and the
//! certificates (names, key type, HTTP-01 or DNS-01, renewal time, deploy targets). The
//! account is created once and kept in the coordinator; each order is stored (fenced)
//! before its challenges are answered, so the next instance after a failover finishes it
//! instead of starting another. The pure [`decide`] says what to do next for each
//! certificate with the reason in words; `run` acts on it.
//!
//! Layout: `section` (the site file), [`decide`], `store` (the coordinator's records),
//! `keys` (keys, CSRs, reading certificates), `issue` (account and orders), `http01` and
//! `dns01` (the challenges), `deploy` (SSH), `view` (what is shown), `run` (the loop),
//! `handle` ([`AcmeService`]), `service`, `api`, `cli` (`mware certs`), [`metrics`].
#![deny(missing_docs)]

mod api;
mod cli;
pub mod decide;
mod deploy;
mod dns01;
mod error;
mod handle;
mod http01;
mod issue;
pub mod keys;
pub mod metrics;
mod run;
mod section;
mod service;
pub mod store;
mod view;

pub use decide::{decide, Decision, Snapshot};
pub use deploy::write_line;
pub use error::AcmeError;
pub use handle::AcmeService;
pub use section::{dns_name, mode, Acme, Certificate, Challenge, Dns01, Http01, KeyType, Target, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};

/// The service and its section (`acme`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "acme",
        sections: vec![mware_config::section::<section::Acme>()],
        build: |registry| std::sync::Arc::new(AcmeService::new(registry)),
        cli: cli::subcommands(),
    }
}
