//! The outbox's sender: takes the oldest due mail with a row lock (`FOR UPDATE SKIP
//! LOCKED`, so two senders never take the same mail), hands it to the relay, and records
//! what [`crate::decide::mail`] decides in the same transaction. A mail is marked sent
//! right after the relay accepts it; a sender killed between the two (a kill -9 of the
//! active instance) leaves it unsent and the next active sends it again with the same
//! `Message-ID`, so a receiver can tell the copy. A mail that fails waits its pause while
//! the others go on: one bad recipient blocks no one.

use crate::decide::{mail, Attempt, MailDecision, Outcome};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::section::{Smtp, SmtpTls};
use backon::{BackoffBuilder, ExponentialBuilder};
use deadpool_postgres::Pool;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Pauses between attempts of one mail: 5 s doubling to 10 min, with jitter.
const RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(5))
    .with_max_delay(Duration::from_secs(600))
    .with_factor(2.0)
    .with_jitter()
    .without_max_times();

/// The relay as lettre drives it.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
    max_attempts: u32,
}

impl Mailer {
    /// The relay of `cfg`, credentials read from their environment variables.
    pub fn new(cfg: &Smtp) -> Result<Mailer> {
        let bad = |e: String| crate::UsersError::Setup { what: "users.smtp".into(), expected: "a relay lettre can use".into(), found: e };
        let b = match cfg.tls {
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(|e| bad(e.to_string()))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(|e| bad(e.to_string()))?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        };
        let mut b = b.port(cfg.port).timeout(Some(Duration::from_secs(cfg.timeout_s)));
        if let (Some(u), Some(p)) = (&cfg.username_env, &cfg.password_env) {
            let get = |v: &String| {
                std::env::var(v).map_err(|_| crate::UsersError::Setup {
                    what: "users.smtp".into(),
                    expected: format!("the environment variable {v} set"),
                    found: "it unset".into(),
                })
            };
            b = b.credentials(Credentials::new(get(u)?, get(p)?));
        }
        Ok(Mailer { transport: b.build(), from: cfg.from.clone(), max_attempts: cfg.max_attempts })
    }

    async fn send(&self, id: i64, to: &str, subject: &str, body: &str) -> Outcome {
        let host = crate::address::domain_of(&self.from).to_string();
        let (Ok(from), Ok(rcpt)) = (self.from.parse::<Mailbox>(), to.parse::<Mailbox>()) else {
            return Outcome::Permanent("an address the mailer cannot read".into());
        };
        let built = Message::builder()
            .from(from)
            .to(rcpt)
            .subject(subject)
            .message_id(Some(format!("<mware-users-{id}@{host}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string());
        let msg = match built {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("the message cannot be built: {e}")),
        };
        match self.transport.send(msg).await {
            Ok(_) => Outcome::Accepted,
            Err(e) if e.is_permanent() => Outcome::Permanent(e.to_string()),
            Err(e) => Outcome::Transient(e.to_string()),
        }
    }
}

/// Sends due mails until `cancel` (checked between mails: a mail being handed over is
/// finished and recorded first). `wake` is notified when a mail is queued.
pub async fn run(pool: Pool, mailer: Arc<Mailer>, metrics: Metrics, wake: Arc<Notify>, cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        let idle = match one(&pool, &mailer, &metrics).await {
            Ok(sent_one) => !sent_one,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: the database cannot be used; trying again");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Sends the oldest due mail, if any; true when one was tried.
async fn one(pool: &Pool, mailer: &Mailer, metrics: &Metrics) -> Result<bool> {
    let mut c = pool.get().await?;
    let t = c.transaction().await?;
    let Some(r) = t
        .query_opt(
            "SELECT id, recipient, subject, body, attempts FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
             AND next_at <= now() ORDER BY next_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?
    else {
        let pending: i64 = t.query_one("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL", &[]).await?.get(0);
        metrics.outbox_pending.set(pending);
        return Ok(false);
    };
    let (id, to, subject, body, attempts): (i64, String, String, String, i32) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    let attempts = attempts as u32 + 1;
    let outcome = mailer.send(id, &to, &subject, &body).await;
    let pause = RETRY.build().nth(attempts.saturating_sub(1) as usize).unwrap_or(Duration::from_secs(600));
    let d = mail(&Attempt { outcome, attempts, max_attempts: mailer.max_attempts, pause });
    let n = attempts as i32;
    match &d {
        MailDecision::Sent => {
            t.execute("UPDATE outbox SET sent_at = now(), attempts = $2, last_error = NULL WHERE id = $1", &[&id, &n]).await?;
            metrics.mail("sent");
        }
        MailDecision::Retry { after, reason } => {
            let secs = after.as_secs_f64();
            t.execute(
                "UPDATE outbox SET attempts = $2, last_error = $3, next_at = now() + make_interval(secs => $4) WHERE id = $1",
                &[&id, &n, reason, &secs],
            )
            .await?;
            metrics.mail("retry");
        }
        MailDecision::GiveUp(reason) => {
            t.execute("UPDATE outbox SET attempts = $2, last_error = $3, failed_at = now() WHERE id = $1", &[&id, &n, reason]).await?;
            metrics.mail("failed");
        }
    }
    t.commit().await?;
    tracing::info!(mail = id, decision = %d, "outbox");
    Ok(true)
}
