//! The group's database: a bounded pool of connections through `mware-pg` (the DSN's
//! `sslmode` up to `verify-full`, the section's `ca_file`), and the schema migrated by
//! refinery from the SQL files in `migrations/` (embedded in the binary; the history
//! table `refinery_schema_history` says what ran). Migrations run under a PostgreSQL
//! advisory lock, so two instances starting together do not race.

use crate::error::{Result, UsersError};
use crate::section::Database;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

/// The SQL files of `migrations/`, embedded (refinery's generated module).
mod embedded {
    #![allow(missing_docs)]
    refinery::embed_migrations!("migrations");
}
use embedded::migrations;

/// The advisory lock key of the migrations ("mwusers" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_7775_7365_7273;

/// Opens the pool for `cfg` (the DSN from its environment variable); connects lazily.
pub fn pool(cfg: &Database) -> Result<Pool> {
    let dsn = std::env::var(&cfg.dsn_env).map_err(|_| UsersError::Setup {
        what: "users.database.dsn_env".into(),
        expected: format!("the environment variable {} set to a PostgreSQL connection string", cfg.dsn_env),
        found: "it unset or not UTF-8".into(),
    })?;
    let bad = |found: String| UsersError::Setup {
        what: format!("the connection string in {}", cfg.dsn_env),
        expected: "a connection string libpq reads".into(),
        found,
    };
    let split = mware_pg::split(&dsn).map_err(|e| bad(e.to_string()))?;
    let mut pg: tokio_postgres::Config = split.rest.parse().map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
    pg.application_name("mware-users");
    pg.ssl_mode(match split.mode {
        mware_pg::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        mware_pg::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    let ca = cfg.ca_file.clone().or(split.root_cert);
    let tls = mware_pg::connector_for(split.mode, ca.as_deref(), "users.database.ca_file").map_err(|e| bad(e.to_string()))?;
    let mgr = Manager::from_config(pg, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(mgr)
        .max_size(cfg.pool_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .build()
        .map_err(|e| UsersError::Pool(e.to_string()))
}

/// Creates or migrates the schema; returns the versions applied now.
pub async fn migrate(pool: &Pool) -> Result<Vec<u32>> {
    let mut c = pool.get().await?;
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let report = migrations::runner().run_async(&mut **c).await;
    c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    let report = report.map_err(|e| UsersError::Migrate(e.to_string()))?;
    Ok(report.applied_migrations().iter().map(|m| m.version()).collect())
}
