//! PostgreSQL access for provisioning: a few pipelined connections used round
//! robin and reopened when they drop, and the column catalog of each table
//! (read from `pg_attribute`, kept for a short while).
//!
//! TLS goes through rustls (`mware-pg`): the DSN's `sslmode` (`disable`,
//! `prefer`, `require`) is honoured as libpq does without a root certificate
//! (encrypted, the server's certificate not verified); with `provisioning.ca_file`
//! TLS is required and the certificate and host name are verified (`verify-full`).

use crate::error::RealtimeError;
use crate::query::{quote_table, Column, Sql, Table};
use mware_config::Secret;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_postgres::Client;

/// How long a table's catalog is trusted before it is read again.
const CATALOG_TTL: Duration = Duration::from_secs(30);

/// A small pool of connections; each `tokio_postgres::Client` pipelines requests.
pub struct Pool {
    dsn: Secret,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    verify: bool,
    slots: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    catalog: Mutex<HashMap<String, (Instant, Arc<Table>)>>,
}

async fn connect(dsn: &Secret, tls: &tokio_postgres_rustls::MakeRustlsConnect, verify: bool) -> Result<Arc<Client>, RealtimeError> {
    let mut cfg: tokio_postgres::Config =
        dsn.expose().parse().map_err(|e: tokio_postgres::Error| RealtimeError::Db(format!("the provisioning dsn does not parse: {e}")))?;
    if verify {
        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    let (client, conn) = cfg.connect(tls.clone()).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %RealtimeError::from(e), "provisioning database connection closed");
        }
    });
    Ok(Arc::new(client))
}

impl Pool {
    /// Opens `size` connections (at least one); fails if the first cannot be opened.
    /// With `ca_file`, every connection is TLS verified against that CA.
    pub async fn open(dsn: Secret, ca_file: Option<&str>, size: usize) -> Result<Pool, RealtimeError> {
        let size = size.max(1);
        let tls = mware_pg::connector(ca_file, "provisioning.ca_file")
            .map_err(|e| RealtimeError::Config { expected: e.expected, found: e.found })?;
        let verify = ca_file.is_some();
        let first = connect(&dsn, &tls, verify).await?;
        let mut slots = vec![Mutex::new(Some(first))];
        for _ in 1..size {
            slots.push(Mutex::new(None));
        }
        Ok(Pool { dsn, tls, verify, slots, next: AtomicUsize::new(0), catalog: Mutex::new(HashMap::new()) })
    }

    async fn client(&self) -> Result<Arc<Client>, RealtimeError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        match slot.as_ref() {
            Some(c) if !c.is_closed() => Ok(c.clone()),
            _ => {
                let c = connect(&self.dsn, &self.tls, self.verify).await?;
                *slot = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Runs a query; every parameter is text.
    pub async fn query(&self, sql: &Sql) -> Result<Vec<tokio_postgres::Row>, RealtimeError> {
        let client = self.client().await?;
        let params = sql.param_refs();
        Ok(client.query(sql.text.as_str(), &params).await?)
    }

    /// Runs a statement and returns the number of rows it touched.
    pub async fn execute(&self, sql: &Sql) -> Result<u64, RealtimeError> {
        let client = self.client().await?;
        let params = sql.param_refs();
        Ok(client.execute(sql.text.as_str(), &params).await?)
    }

    /// The columns of `table`, from the catalog (cached for [`CATALOG_TTL`]).
    pub async fn table(&self, table: &str) -> Result<Arc<Table>, RealtimeError> {
        if let Some((at, t)) = self.catalog.lock().await.get(table) {
            if at.elapsed() < CATALOG_TTL {
                return Ok(t.clone());
            }
        }
        let quoted = quote_table(table)?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&quoted],
            )
            .await?;
        if rows.is_empty() {
            return Err(RealtimeError::NoTable { table: table.into() });
        }
        let columns = rows.iter().map(|r| Column { name: r.get(0), sql_type: r.get(1), is_string: r.get::<_, String>(2) == "S" }).collect();
        let t = Arc::new(Table { name: table.into(), columns });
        self.catalog.lock().await.insert(table.into(), (Instant::now(), t.clone()));
        Ok(t)
    }
}
