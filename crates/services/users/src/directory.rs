//! Where a domain's users live, behind a small interface ([`Directory`]) so a site can
//! point the services at its own user store later; [`PgDirectory`] keeps them in the
//! group's PostgreSQL (tables `users` and `sessions`). Every query is parameterised.

use crate::error::Result;
use crate::token;
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::Row;

/// One account.
#[derive(Debug, Clone)]
pub struct User {
    /// Its id in the directory.
    pub id: i64,
    /// Its domain.
    pub domain: String,
    /// Its login (an e-mail address for invited and registered users).
    pub login: String,
    /// Where its mail goes.
    pub email: Option<String>,
    /// Its role.
    pub role: String,
    /// `active`, `pending_approval` or `disabled`.
    pub state: String,
    /// Its Argon2id hash (none: it cannot log in with a password).
    pub password_hash: Option<String>,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Its domain.
    pub domain: String,
    /// Its login.
    pub login: String,
    /// Its address.
    pub email: Option<String>,
    /// Its role.
    pub role: String,
    /// `active` or `pending_approval`.
    pub state: String,
    /// Its hash.
    pub password_hash: Option<String>,
}

/// The user store the services use.
#[async_trait]
pub trait Directory: Send + Sync {
    /// The account `login` of `domain`.
    async fn find(&self, domain: &str, login: &str) -> Result<Option<User>>;
    /// Creates an account; `None` when the login is taken.
    async fn create(&self, user: NewUser) -> Result<Option<User>>;
    /// Sets the password hash of account `id` and ends all its sessions.
    async fn set_password(&self, id: i64, hash: &str) -> Result<()>;
    /// Sets the state of account `id` (`active` after an approval).
    async fn set_state(&self, id: i64, state: &str) -> Result<bool>;
    /// Opens a session of `ttl_s` seconds; returns its token.
    async fn open_session(&self, id: i64, ttl_s: u64) -> Result<String>;
    /// The account of a live session token.
    async fn session(&self, token: &str) -> Result<Option<User>>;
    /// Ends the session of `token`; false when there was none.
    async fn close_session(&self, token: &str) -> Result<bool>;
    /// The accounts of `domain` waiting for an administrator's approval, oldest first (at
    /// most 1000): (login, e-mail, created at).
    async fn awaiting_approval(&self, domain: &str) -> Result<Vec<(String, Option<String>, String)>>;
}

/// The directory in the group's PostgreSQL.
#[derive(Clone)]
pub struct PgDirectory {
    pool: Pool,
}

const COLUMNS: &str = "u.id, u.domain, u.login, u.email, u.role, u.state, u.password_hash";

fn user(r: &Row) -> User {
    User { id: r.get(0), domain: r.get(1), login: r.get(2), email: r.get(3), role: r.get(4), state: r.get(5), password_hash: r.get(6) }
}

impl PgDirectory {
    /// A directory over `pool` (the schema migrated by [`crate::db::migrate`]).
    pub fn new(pool: Pool) -> Self {
        PgDirectory { pool }
    }
}

#[async_trait]
impl Directory for PgDirectory {
    async fn find(&self, domain: &str, login: &str) -> Result<Option<User>> {
        let c = self.pool.get().await?;
        let q = format!("SELECT {COLUMNS} FROM users u WHERE u.domain = $1 AND u.login = $2");
        Ok(c.query_opt(&q, &[&domain, &login]).await?.as_ref().map(user))
    }

    async fn create(&self, u: NewUser) -> Result<Option<User>> {
        let c = self.pool.get().await?;
        let q = format!(
            "INSERT INTO users AS u (domain, login, email, role, state, password_hash) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (domain, login) DO NOTHING RETURNING {COLUMNS}"
        );
        let r = c.query_opt(&q, &[&u.domain, &u.login, &u.email, &u.role, &u.state, &u.password_hash]).await?;
        Ok(r.as_ref().map(user))
    }

    async fn set_password(&self, id: i64, hash: &str) -> Result<()> {
        let mut c = self.pool.get().await?;
        let t = c.transaction().await?;
        t.execute("UPDATE users SET password_hash = $2 WHERE id = $1", &[&id, &hash]).await?;
        t.execute("DELETE FROM sessions WHERE user_id = $1", &[&id]).await?;
        t.commit().await?;
        Ok(())
    }

    async fn set_state(&self, id: i64, state: &str) -> Result<bool> {
        let c = self.pool.get().await?;
        Ok(c.execute("UPDATE users SET state = $2 WHERE id = $1", &[&id, &state]).await? == 1)
    }

    async fn open_session(&self, id: i64, ttl_s: u64) -> Result<String> {
        let c = self.pool.get().await?;
        let (text, hash) = token::new();
        let ttl = ttl_s as f64;
        c.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
            &[&hash, &id, &ttl],
        )
        .await?;
        Ok(text)
    }

    async fn session(&self, text: &str) -> Result<Option<User>> {
        if !token::well_formed(text) {
            return Ok(None);
        }
        let c = self.pool.get().await?;
        let q =
            format!("SELECT {COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > now()");
        Ok(c.query_opt(&q, &[&token::hash(text)]).await?.as_ref().map(user))
    }

    async fn close_session(&self, text: &str) -> Result<bool> {
        if !token::well_formed(text) {
            return Ok(false);
        }
        let c = self.pool.get().await?;
        Ok(c.execute("DELETE FROM sessions WHERE token_hash = $1", &[&token::hash(text)]).await? == 1)
    }

    async fn awaiting_approval(&self, domain: &str) -> Result<Vec<(String, Option<String>, String)>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT login, email, created_at::text FROM users WHERE domain = $1 AND state = 'pending_approval' \
                 ORDER BY created_at, id LIMIT 1000",
                &[&domain],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
