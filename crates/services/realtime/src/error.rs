//! The one error type of this crate. Messages are lowercase and say what was
//! expected and what was found; none of them carries a DSN or a password.

use thiserror::Error;

/// Everything that can go wrong in provisioning and in the rtcache sidecar.
#[derive(Debug, Error)]
pub enum RealtimeError {
    /// A `%` escape that is not `%XX`, or decoded bytes that are not UTF-8.
    #[error("expected %XX escapes of utf-8 text, found {found:?}")]
    BadEncoding {
        /// The offending piece.
        found: String,
    },
    /// The family in the URL is not configured.
    #[error("expected a configured family ({known}), found {found:?}")]
    UnknownFamily {
        /// Configured families, comma separated.
        known: String,
        /// What the request named.
        found: String,
    },
    /// A field name that is not a column of the family's table.
    #[error("expected a column of table {table}, found field {found:?}")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The field name as sent (operator removed).
        found: String,
    },
    /// An operator after the field name that is not supported.
    #[error("expected an operator among = != <> < <= > >= LIKE NOT LIKE, found {found:?}")]
    BadOperator {
        /// The operator as sent.
        found: String,
    },
    /// A request that lacks something the operation needs.
    #[error("expected {expected}, found {found}")]
    BadRequest {
        /// What the operation needs.
        expected: String,
        /// What came.
        found: String,
    },
    /// The body is larger than `max_body_bytes`.
    #[error("expected a body of at most {limit} bytes, found a larger one")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The configured table name is not a plain identifier.
    #[error("expected a table name of letters, digits and _ (optionally schema.table), found {found:?}")]
    BadTableName {
        /// The configured name.
        found: String,
    },
    /// The table does not exist in the database.
    #[error("expected table {table} in the provisioning database, found none")]
    NoTable {
        /// The table.
        table: String,
    },
    /// A row written for another tenant than the caller's.
    #[error("expected a domain the caller may see ({expected}), found {found:?}")]
    WrongDomain {
        /// The caller's domains, comma separated.
        expected: String,
        /// The value sent.
        found: String,
    },
    /// An operator in an `update` lookup or a `destroy` condition.
    #[error("expected exact matches (column=value) in update lookups and destroy conditions, found field {field:?}: a pattern or comparison could change or delete every row the caller sees")]
    InexactMatch {
        /// The field name as sent (with its operator).
        field: String,
    },
    /// A value PostgreSQL refused for its column (SQLSTATE class 22, data exception, or
    /// class 23, integrity constraint violation): the request's fault.
    #[error("expected values that fit their columns, found: {0}")]
    BadValue(String),
    /// The family's table has no `domain` column and the site does not mark it shared.
    #[error("expected family {family:?} to be scoped by a domain column or listed in provisioning.shared_families, found table {table} without a domain column")]
    Unscoped {
        /// The family.
        family: String,
        /// Its table.
        table: String,
    },
    /// The service is not running on this instance.
    #[error("expected the provisioning service to be running, found it stopped")]
    NotRunning,
    /// PostgreSQL failed (connection or query). The message never holds the DSN.
    #[error("expected postgresql to answer, found: {0}")]
    Db(String),
    /// The cache database (redb) failed.
    #[error("expected the cache database to work, found: {0}")]
    Cache(String),
    /// A file or socket error.
    #[error("expected {what} to work, found: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Bad sidecar settings.
    #[error("expected {expected}, found {found}")]
    Config {
        /// What is expected.
        expected: String,
        /// What was found.
        found: String,
    },
}

impl RealtimeError {
    /// True for errors caused by the request (answered 400), false for the server's own (5xx).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            RealtimeError::BadEncoding { .. }
                | RealtimeError::UnknownFamily { .. }
                | RealtimeError::UnknownColumn { .. }
                | RealtimeError::BadOperator { .. }
                | RealtimeError::BadRequest { .. }
                | RealtimeError::BodyTooLarge { .. }
                | RealtimeError::WrongDomain { .. }
                | RealtimeError::InexactMatch { .. }
                | RealtimeError::BadValue(_)
        )
    }
}

impl From<tokio_postgres::Error> for RealtimeError {
    fn from(e: tokio_postgres::Error) -> Self {
        // tokio-postgres errors never include the connection string.
        match e.as_db_error() {
            Some(db) if db.code().code().starts_with("22") || db.code().code().starts_with("23") => {
                RealtimeError::BadValue(format!("{}: {}", db.code().code(), db.message()))
            }
            Some(db) => RealtimeError::Db(format!("{}: {}", db.code().code(), db.message())),
            None => {
                // The causes too (a TLS handshake says why: an unknown issuer, another name).
                let mut text = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                RealtimeError::Db(text)
            }
        }
    }
}
