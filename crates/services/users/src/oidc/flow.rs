//! The relying party's side of a login through an OpenID Connect provider, with the
//! `openidconnect` crate: discovery (metadata and JWKS, kept 10 minutes), the
//! authorization URL with PKCE (S256), `state` and `nonce`, and at the callback the code
//! exchanged with the PKCE verifier and the ID token checked (signature by the JWKS,
//! issuer, audience, expiry, nonce). Flows waiting for their callback are kept on the
//! active instance (at most 10,000, 10 minutes each) and taken once: a replayed callback
//! finds nothing.

use crate::section::OidcProvider;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use std::collections::HashMap;
use std::sync::Mutex;
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
    at: Instant,
}

/// What a login through a provider found out.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The value of the provider's `user_claim`.
    pub value: String,
    /// The e-mail address, when the provider says it is verified.
    pub verified_email: Option<String>,
}

/// Discovered providers and waiting flows.
#[derive(Default)]
pub struct Flows {
    pending: Mutex<HashMap<String, Pending>>,
    metadata: tokio::sync::Mutex<HashMap<String, (CoreProviderMetadata, Instant)>>,
}

fn http() -> Result<reqwest::Client, String> {
    // No redirects: openidconnect's advice against SSRF through the provider's answers.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the HTTP client cannot be set up: {e}"))
}

impl Flows {
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
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, f| f.at.elapsed() < PENDING_TTL);
        if pending.len() >= MAX_PENDING {
            return Err("too many logins are waiting for their provider; try again later".into());
        }
        let f = Pending { domain: domain.to_string(), provider: p.name.clone(), nonce, verifier, at: Instant::now() };
        pending.insert(state.secret().clone(), f);
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Takes the flow of `state` (once).
    pub fn take(&self, state: &str) -> Option<Pending> {
        let f = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(state)?;
        (f.at.elapsed() < PENDING_TTL).then_some(f)
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
