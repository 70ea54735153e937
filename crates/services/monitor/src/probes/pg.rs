//! `postgres`: a connection to the DSN opens and the query answers. The DSN is a secret:
//! it is never part of a reason (errors carry PostgreSQL's words and their causes).
//! TLS through `mware-pg`: the DSN's `sslmode` (`disable` … `verify-full`) and
//! `sslrootcert` as libpq means them.

use mware_config::Secret;

/// A `postgres` probe.
pub struct Postgres {
    /// Connection string.
    pub dsn: Secret,
    /// The query.
    pub query: String,
}

impl Postgres {
    /// Connects, runs the query, disconnects.
    pub async fn check(&self) -> Result<String, String> {
        let (client, conn) = mware_pg::connect(self.dsn.expose(), None, "the dsn's sslrootcert").await.map_err(|e| match e {
            mware_pg::ConnectError::Db(e) => format!("cannot connect: {}", words(&e)),
            mware_pg::ConnectError::Setup(e) => format!("cannot connect: {e}"),
        })?;
        let driver = tokio::spawn(conn);
        let r = client.simple_query(&self.query).await;
        drop(client);
        let _ = driver.await;
        match r {
            Ok(msgs) => {
                let rows = msgs.iter().filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))).count();
                Ok(format!("connected; {:?} answered {rows} row(s)", self.query))
            }
            Err(e) => Err(format!("connected, but {:?} failed: {}", self.query, words(&e))),
        }
    }
}

/// PostgreSQL's error with its causes (never the DSN: tokio-postgres does not echo it).
fn words(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
