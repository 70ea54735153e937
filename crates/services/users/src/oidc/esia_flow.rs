//! A login through ESIA ([`super::esia`]'s profile), its two requests made here: the
//! start redirects the browser to `<issuer>/aas/oauth2/ac` with a signed client secret and
//! a UUID `state` (kept in the group's database like any flow, so a login started before
//! a failover finishes after it); the callback posts the code to `<issuer>/aas/oauth2/te`
//! with a new state and signature, checks that the answer carries that state, has the ID
//! token's signature checked by the verification hook and its claims by
//! [`esia::decide_claims`]. ESIA's ID token carries no e-mail address, so an account made
//! through ESIA is not linked to an invitation.

use super::esia;
use super::flow::{Flows, Identity};
use crate::section::OidcProvider;
use serde_json::Value;

/// A random UUID (version 4), the state shape ESIA asks for.
fn uuid() -> String {
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn now_ts() -> String {
    esia::timestamp(chrono::Utc::now().fixed_offset())
}

/// Runs the signing hook off the runtime's threads.
async fn signed<F>(f: F) -> Result<Vec<(String, String)>, String>
where
    F: FnOnce() -> Result<Vec<(String, String)>, String> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| format!("the signing hook did not finish: {e}"))?
}

/// Starts a login: ESIA's authorization URL and the `state` to bind to the browser.
pub async fn start(flows: &Flows, domain: &str, p: &OidcProvider, redirect: &str) -> Result<(String, String), String> {
    let state = uuid();
    let (pc, st, rd, ts) = (p.clone(), state.clone(), redirect.to_string(), now_ts());
    let params = signed(move || esia::authorize_params(&pc, &st, &rd, &ts)).await?;
    let url = reqwest::Url::parse_with_params(&esia::authorization_endpoint(&p.issuer), &params)
        .map_err(|e| format!("issuer {}: {e}", p.issuer))?;
    flows.keep(&state, domain, &p.name, "", "").await?;
    Ok((url.to_string(), state))
}

/// Exchanges `code` at ESIA's token endpoint and checks the ID token; the identity.
pub async fn finish(p: &OidcProvider, code: &str, redirect: &str) -> Result<Identity, String> {
    let state = uuid();
    let (pc, c, st, rd, ts) = (p.clone(), code.to_string(), state.clone(), redirect.to_string(), now_ts());
    let form = signed(move || esia::token_params(&pc, &c, &st, &rd, &ts)).await?;
    let resp = super::flow::http()?
        .post(esia::token_endpoint(&p.issuer))
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("the provider's token endpoint cannot be reached: {e}"))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("the code was refused by the provider (HTTP {})", status.as_u16()));
    }
    let body: Value = resp.json().await.map_err(|_| "expected a JSON answer from the token endpoint, found something else".to_string())?;
    if body.get("state").and_then(Value::as_str).is_some_and(|s| s != state) {
        return Err("expected the token endpoint to answer the state sent, found another".into());
    }
    let token = body.get("id_token").and_then(Value::as_str).ok_or("expected an ID token from the provider, found none")?;
    let jws = esia::split_jws(token)?;
    let argv = p.verify_command.as_deref().unwrap_or_default();
    if !esia::verify(argv, &jws.alg, jws.data.as_bytes(), &jws.signature).await? {
        return Err("the ID token was refused: its signature did not pass the verification hook".into());
    }
    let value = esia::decide_claims(&jws.claims, &p.issuer, &p.client_id, chrono::Utc::now().timestamp())
        .map_err(|e| format!("the ID token was refused: {e}"))?;
    Ok(Identity { value, verified_email: None })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_is_a_version_4_uuid() {
        let u = super::uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.chars().nth(14), Some('4'));
        assert!(u.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
        assert_ne!(u, super::uuid());
    }
}
