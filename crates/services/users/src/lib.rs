//! mware-users: the user services of a domain (seed: "User password recovery service",
//! "Service for sending invitations to new users", "User self-registration service"):
//! login, password recovery, invitations and self-registration, with the accounts in the
//! group's PostgreSQL behind a small [`Directory`] interface, Argon2id hashes, one-time
//! tokens stored only as hashes, a durable mail outbox sent over SMTP, and abuse limits
//! on every endpoint. This is the part of mware that faces the Internet: every answer
//! that could tell whether a login exists is the same either way.
//!
//! Layout: `section` (the site file), [`db`] (pool and migrations), [`directory`],
//! [`store`] (tokens, outbox), [`password`], [`token`], [`decide`] (pure: token
//! verdicts, mail retries), [`outbox`] (the sender), [`limits`], [`trips`] (tripped limits kept across a failover), [`templates`], [`address`],
//! `flows` (one module per flow), `api`, `pages` (the server-rendered pages), [`oidc`] (identity providers, ESIA's profile), `cli` (`mware users`), [`metrics`], `service`.
#![deny(missing_docs)]

pub mod address;
mod api;
mod cli;
pub mod db;
pub mod decide;
pub mod directory;
mod error;
mod flows;
mod handle;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod outbox;
mod pages;
pub mod password;
mod section;
mod service;
pub mod store;
pub mod templates;
pub mod token;
pub mod trips;

pub use directory::{Directory, NewUser, PgDirectory, User};
pub use error::UsersError;
pub use handle::UsersService;
pub use section::{
    Argon2Params, Database, DomainUsers, Lifetimes, Limits, OidcProfile, OidcProvider, PasswordPolicy, SelfRegistration, Smtp, SmtpTls,
    Users,
};

/// The service and its section (`users`), for the binary's registry.
pub fn plugin() -> mware_host::Plugin {
    mware_host::Plugin {
        name: "users",
        sections: vec![mware_config::section::<section::Users>()],
        build: |registry| std::sync::Arc::new(UsersService::new(registry)),
        cli: cli::subcommands(),
    }
}
