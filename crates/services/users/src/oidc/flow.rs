//! The relying party's side of a login through an OpenID Connect provider, with the
//! `openidconnect` crate: discovery (metadata and JWKS, kept 10 minutes), the
//! authorization URL with PKCE (S256), `state` and `nonce`, and at the callback the code
//! exchanged with the PKCE verifier and the ID token checked (signature by the JWKS,
//! issuer, audience, expiry, nonce). Flows waiting for their callback (state, nonce, PKCE
//! verifier) are kept in the group's database (`oidc_flows`, found by the state's hash; at
//! most 10,000, 10 minutes each), so a login started on one instance finishes on the next
//! after a failover; each is taken once (deleted): a replayed callback finds nothing.

use crate::section::OidcProvider;
use deadpool_postgres::Pool;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Flows waiting at most.
const MAX_PENDING: usize = 10_000;
/// How long a flow waits for its callback.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long discovered metadata is kept.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// A flow waiting for its callback.
pub struct Pending {
    /// Its domain.
    pub domain: String,
    /// Its provider's name.
    pub provider: String,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

/// What a login through a provider found out.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The value of the provider's `user_claim`.
    pub value: String,
    /// The e-mail address, when the provider says it is verified.
    pub verified_email: Option<String>,
}

/// Discovered providers, and the waiting flows in the group's database.
pub struct Flows {
    pool: Pool,
    metadata: tokio::sync::Mutex<HashMap<String, (CoreProviderMetadata, Instant)>>,
}

fn state_hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}

/// The client for providers' endpoints.
pub(crate) fn http() -> Result<reqwest::Client, String> {
    // No redirects: openidconnect's advice against SSRF through the provider's answers.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the HTTP client cannot be set up: {e}"))
}

impl Flows {
    /// Flows kept in the database of `pool`.
    pub fn new(pool: Pool) -> Flows {
        Flows { pool, metadata: Default::default() }
    }

    /// Keeps a flow waiting for the callback of `state` (`nonce` and `verifier` may be
    /// empty for a profile that has none).
    pub async fn keep(&self, state: &str, domain: &str, provider: &str, nonce: &str, verifier: &str) -> Result<(), String> {
        let db = |e: String| {
            tracing::warn!(error = %e, "oidc: a login could not be kept in the database");
            "the user directory cannot be reached now".to_string()
        };
        let c = self.pool.get().await.map_err(|e| db(e.to_string()))?;
        c.execute("DELETE FROM oidc_flows WHERE expires_at <= now()", &[]).await.map_err(|e| db(e.to_string()))?;
        let ttl = PENDING_TTL.as_secs_f64();
        let max = MAX_PENDING as i64;
        let n = c
            .execute(
                "INSERT INTO oidc_flows (state_hash, domain, provider, nonce, verifier, expires_at)                  SELECT $1, $2, $3, $4, $5, now() + make_interval(secs => $6) WHERE (SELECT count(*) FROM oidc_flows) < $7",
                &[&state_hash(state), &domain, &provider, &nonce, &verifier, &ttl, &max],
            )
            .await
            .map_err(|e| db(e.to_string()))?;
        if n == 0 {
            return Err("too many logins are waiting for their provider; try again later".into());
        }
        Ok(())
    }

    /// Takes the flow of `state` (once, on any instance of the group); `None` when unknown,
    /// used or expired.
    pub async fn take(&self, state: &str) -> Result<Option<Pending>, String> {
        let db = |e: String| {
            tracing::warn!(error = %e, "oidc: a waiting login could not be read from the database");
            "the user directory cannot be reached now".to_string()
        };
        let c = self.pool.get().await.map_err(|e| db(e.to_string()))?;
        let row = c
            .query_opt(
                "DELETE FROM oidc_flows WHERE state_hash = $1 RETURNING domain, provider, nonce, verifier, expires_at > now()",
                &[&state_hash(state)],
            )
            .await
            .map_err(|e| db(e.to_string()))?;
        Ok(row.filter(|r| r.get::<_, bool>(4)).map(|r| Pending {
            domain: r.get(0),
            provider: r.get(1),
            nonce: Nonce::new(r.get(2)),
            verifier: PkceCodeVerifier::new(r.get(3)),
        }))
    }

    async fn metadata(&self, p: &OidcProvider, refresh: bool) -> Result<CoreProviderMetadata, String> {
        let mut cache = self.metadata.lock().await;
        if let Some((m, at)) = cache.get(&p.issuer) {
            if !refresh && at.elapsed() < METADATA_TTL {
                return Ok(m.clone());
            }
        }
        let issuer = IssuerUrl::new(p.issuer.clone()).map_err(|e| format!("issuer {}: {e}", p.issuer))?;
        let m =
            CoreProviderMetadata::discover_async(issuer, &http()?).await.map_err(|e| format!("discovery at {} failed: {e}", p.issuer))?;
        cache.insert(p.issuer.clone(), (m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(
        p: &OidcProvider,
        m: CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let secret = match &p.client_secret_env {
            Some(v) => Some(ClientSecret::new(std::env::var(v).map_err(|_| format!("expected the client secret in {v}, found it unset"))?)),
            None => None,
        };
        let redirect = RedirectUrl::new(redirect.to_string()).map_err(|e| format!("redirect URL {redirect}: {e}"))?;
        Ok(CoreClient::from_provider_metadata(m, ClientId::new(p.client_id.clone()), secret).set_redirect_uri(redirect))
    }

    /// Starts a flow: the provider's authorization URL and the `state` to bind to the
    /// browser.
    pub async fn start(&self, domain: &str, p: &OidcProvider, redirect: &str) -> Result<(String, String), String> {
        let client = Self::client(p, self.metadata(p, false).await?, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for s in &p.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = req.url();
        self.keep(state.secret(), domain, &p.name, nonce.secret(), verifier.secret()).await?;
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Exchanges `code` and checks the ID token; the identity it names.
    pub async fn finish(&self, p: &OidcProvider, f: Pending, code: &str, redirect: &str) -> Result<Identity, String> {
        let client = Self::client(p, self.metadata(p, false).await?, redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(f.verifier)
            .request_async(&http()?)
            .await
            .map_err(|e| format!("the code was refused by the provider: {e}"))?;
        let id = tokens.id_token().ok_or("expected an ID token from the provider, found none")?;
        let claims = match id.claims(&client.id_token_verifier(), &f.nonce) {
            Ok(c) => c.clone(),
            Err(first) => {
                // A key the cached JWKS does not have: fetch the provider's keys once more.
                let client = Self::client(p, self.metadata(p, true).await?, redirect)?;
                let verifier = client.id_token_verifier();
                let c = id.claims(&verifier, &f.nonce).map_err(|_| format!("the ID token was refused: {first}"))?.clone();
                c
            }
        };
        let verified_email = claims.email().filter(|_| claims.email_verified() == Some(true)).map(|e| e.to_string());
        let value = match p.user_claim.as_str() {
            "sub" => Some(claims.subject().to_string()),
            "preferred_username" => claims.preferred_username().map(|u| u.to_string()),
            _ => verified_email.clone(),
        }
        .ok_or_else(|| format!("expected a (verified) {} claim in the ID token, found none", p.user_claim))?;
        Ok(Identity { value, verified_email })
    }
}

/// Whether `value` is allowed in by `allowed` (empty: any; `@domain`: any address there).
pub fn allowed(allowed: &[String], value: &str) -> bool {
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| if a.starts_with('@') { value.to_ascii_lowercase().ends_with(&a.to_ascii_lowercase()) } else { a == value })
}

#[cfg(test)]
mod tests {
    #[test]
    fn allowed_values_are_exact_or_a_mail_domain() {
        let a = vec!["boss@corp.ru".to_string(), "@example.ru".to_string()];
        assert!(super::allowed(&a, "boss@corp.ru"));
        assert!(super::allowed(&a, "Ann@Example.RU"));
        assert!(!super::allowed(&a, "ann@example.ru.evil.com"));
        assert!(!super::allowed(&a, "x@corp.ru"));
        assert!(super::allowed(&[], "anyone"));
    }
}
