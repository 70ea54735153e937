//! One-time tokens (recovery, invitation, registration) and the mail outbox in the
//! group's PostgreSQL. A token is issued in the same transaction as its mail, so a token
//! exists exactly when its mail is queued (durably: a failover loses neither); a newer
//! recovery request revokes the older links of the same account in that transaction.

use crate::decide::TokenRow;
use crate::error::Result;
use crate::token;
use deadpool_postgres::Pool;
use serde_json::{json, Value};

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The domain it is sent for.
    pub domain: String,
    /// One checked address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub body: String,
}

/// A token to issue.
#[derive(Debug, Clone)]
pub struct Issue {
    /// `recovery`, `invitation` or `registration`.
    pub kind: &'static str,
    /// Its domain.
    pub domain: String,
    /// The account it is for (recovery).
    pub user_id: Option<i64>,
    /// The address it was sent to (invitation, registration).
    pub email: Option<String>,
    /// The role it gives (invitation).
    pub role: Option<String>,
    /// The password hash chosen at registration.
    pub secret_hash: Option<String>,
    /// Lifetime, seconds.
    pub ttl_s: u64,
}

/// A token found by its text.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its id.
    pub id: i64,
    /// What the decision needs.
    pub row: TokenRow,
    /// Its account.
    pub user_id: Option<i64>,
    /// Its address.
    pub email: Option<String>,
    /// Its role.
    pub role: Option<String>,
    /// Its password hash (registration).
    pub secret_hash: Option<String>,
}

/// Tokens and outbox over the pool.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// A store over `pool`.
    pub fn new(pool: Pool) -> Self {
        Store { pool }
    }

    /// The pool (the outbox's sender uses it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Issues a token and queues its mail (made by `mail` from the token's text) in one
    /// transaction; with `replace`, older live tokens of the same kind and account (or
    /// address) are revoked. Returns the token's id.
    pub async fn issue(&self, i: Issue, replace: bool, mail: impl FnOnce(&str) -> Mail) -> Result<i64> {
        let (text, hash) = token::new();
        let m = mail(&text);
        let mut c = self.pool.get().await?;
        let t = c.transaction().await?;
        if replace {
            t.execute(
                "UPDATE tokens SET revoked_at = now() WHERE kind = $1 AND domain = $2 AND used_at IS NULL AND revoked_at IS NULL \
                 AND ((user_id IS NOT NULL AND user_id = $3) OR (email IS NOT NULL AND email = $4))",
                &[&i.kind, &i.domain, &i.user_id, &i.email],
            )
            .await?;
        }
        let ttl = i.ttl_s as f64;
        let id: i64 = t
            .query_one(
                "INSERT INTO tokens (token_hash, kind, domain, user_id, email, role, secret_hash, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8)) RETURNING id",
                &[&hash, &i.kind, &i.domain, &i.user_id, &i.email, &i.role, &i.secret_hash, &ttl],
            )
            .await?
            .get(0);
        t.execute(
            "INSERT INTO outbox (domain, recipient, subject, body) VALUES ($1, $2, $3, $4)",
            &[&m.domain, &m.recipient, &m.subject, &m.body],
        )
        .await?;
        t.commit().await?;
        Ok(id)
    }

    /// The token `text` (not used up: see [`Store::consume`]).
    pub async fn peek(&self, text: &str) -> Result<Option<Found>> {
        if !token::well_formed(text) {
            return Ok(None);
        }
        let c = self.pool.get().await?;
        let r = c
            .query_opt(
                "SELECT id, kind, domain, EXTRACT(EPOCH FROM (expires_at - now()))::float8, used_at IS NOT NULL, \
                 revoked_at IS NOT NULL, user_id, email, role, secret_hash FROM tokens WHERE token_hash = $1",
                &[&token::hash(text)],
            )
            .await?;
        Ok(r.map(|r| Found {
            id: r.get(0),
            row: TokenRow { kind: r.get(1), domain: r.get(2), expires_in_s: r.get::<_, f64>(3) as i64, used: r.get(4), revoked: r.get(5) },
            user_id: r.get(6),
            email: r.get(7),
            role: r.get(8),
            secret_hash: r.get(9),
        }))
    }

    /// Uses token `id` up, atomically: false when it was used, revoked or expired since.
    pub async fn consume(&self, id: i64) -> Result<bool> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Revokes a live token of `kind` in `domain`; false when there is none such.
    pub async fn revoke(&self, id: i64, kind: &str, domain: &str) -> Result<bool> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND kind = $2 AND domain = $3 AND used_at IS NULL AND revoked_at IS NULL",
                &[&id, &kind, &domain],
            )
            .await?;
        Ok(n == 1)
    }

    /// One token of `kind` in `domain`, for an operator: `{id, email, role, state, …}`.
    pub async fn get(&self, id: i64, kind: &str, domain: &str) -> Result<Option<Value>> {
        Ok(self.list(kind, domain, Some(id)).await?.into_iter().next())
    }

    /// The tokens of `kind` in `domain`, newest first (at most 1000), with their state
    /// (`pending`, `used`, `revoked`, `expired`); never the token itself.
    pub async fn list(&self, kind: &str, domain: &str, id: Option<i64>) -> Result<Vec<Value>> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT id, email, role, created_at::text, expires_at::text, \
                 CASE WHEN used_at IS NOT NULL THEN 'used' WHEN revoked_at IS NOT NULL THEN 'revoked' \
                 WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END \
                 FROM tokens WHERE kind = $1 AND domain = $2 AND ($3::bigint IS NULL OR id = $3) ORDER BY id DESC LIMIT 1000",
                &[&kind, &domain, &id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({"id": r.get::<_, i64>(0), "email": r.get::<_, Option<String>>(1), "role": r.get::<_, Option<String>>(2),
                       "created_at": r.get::<_, String>(3), "expires_at": r.get::<_, String>(4), "state": r.get::<_, String>(5)})
            })
            .collect())
    }

    /// The newest live invitation of `email` in `domain`, used up now: its role (a login
    /// through a provider with that verified address takes the invitation).
    pub async fn take_invitation(&self, domain: &str, email: &str) -> Result<Option<String>> {
        let c = self.pool.get().await?;
        let r = c
            .query_opt(
                "UPDATE tokens SET used_at = now() WHERE id = (SELECT id FROM tokens WHERE kind = 'invitation' AND domain = $1 \
                 AND lower(email) = lower($2) AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now() ORDER BY id DESC LIMIT 1) \
                 AND used_at IS NULL RETURNING role",
                &[&domain, &email],
            )
            .await?;
        Ok(r.map(|r| r.get::<_, Option<String>>(0).unwrap_or_else(|| "user".into())))
    }

    /// Queues a mail without a token.
    pub async fn enqueue(&self, m: &Mail) -> Result<i64> {
        let c = self.pool.get().await?;
        let r = c
            .query_one(
                "INSERT INTO outbox (domain, recipient, subject, body) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&m.domain, &m.recipient, &m.subject, &m.body],
            )
            .await?;
        Ok(r.get(0))
    }

    /// Mails waiting, sent and given up.
    pub async fn outbox_counts(&self) -> Result<(i64, i64, i64)> {
        let c = self.pool.get().await?;
        let r = c
            .query_one(
                "SELECT count(*) FILTER (WHERE sent_at IS NULL AND failed_at IS NULL), count(*) FILTER (WHERE sent_at IS NOT NULL), \
                 count(*) FILTER (WHERE failed_at IS NOT NULL) FROM outbox",
                &[],
            )
            .await?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }
}
