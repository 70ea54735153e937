//! The one error type of mware-users: lowercase messages that say what was expected and
//! what was found; never a secret (a DSN or a password is named by its variable only).

/// What can go wrong outside a request's own validation.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// A setting cannot be used (an environment variable missing, a file unreadable).
    #[error("{what}: expected {expected}, found {found}")]
    Setup {
        /// The setting.
        what: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The database refused or could not be reached.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("database pool: {0}")]
    Pool(String),
    /// The schema could not be migrated.
    #[error("database schema migration: {0}")]
    Migrate(String),
    /// A password hash could not be made or read.
    #[error("password hash: {0}")]
    Hash(String),
}

impl From<deadpool_postgres::PoolError> for UsersError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        UsersError::Pool(e.to_string())
    }
}

/// The result of this crate.
pub type Result<T> = std::result::Result<T, UsersError>;
