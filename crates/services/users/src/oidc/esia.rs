//! The ESIA profile (Gosuslugi), from its public guidelines ("Методические рекомендации по
//! использованию ЕСИА"): the authorization endpoint `<issuer>/aas/oauth2/ac`, the token
//! endpoint `<issuer>/aas/oauth2/te`, scopes such as `openid fullname email`, the user
//! named by the ID token's `urn:esia:sbj_id`, and a client secret that is not a shared
//! secret but a detached signature (GOST R 34.10-2012, by the system's key) of
//! `scope + timestamp + client_id + state`, base64url, sent with `timestamp` (`yyyy.MM.dd
//! HH:mm:ss +0300`) and `access_type=online`. mware cannot sign GOST itself: the signing
//! hook is a command (`sign_command`) that reads the text on stdin and prints the
//! signature in base64 (standard or url-safe) on stdout; the result is sent url-safe
//! without padding.
//!
//! This module builds the parameters of both requests; ESIA cannot be reached from here,
//! so the flow does not use it yet (a provider with `profile: esia` is refused at start
//! of a login with that reason).

use crate::section::OidcProvider;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use std::io::Write;
use std::process::{Command, Stdio};

/// ESIA's production issuer.
pub const PRODUCTION: &str = "https://esia.gosuslugi.ru";
/// ESIA's test issuer.
pub const TEST: &str = "https://esia-portal1.test.gosuslugi.ru";
/// The claim that names the user.
pub const SUBJECT_CLAIM: &str = "urn:esia:sbj_id";

/// The authorization endpoint of `issuer`.
pub fn authorization_endpoint(issuer: &str) -> String {
    format!("{}/aas/oauth2/ac", issuer.trim_end_matches('/'))
}

/// The token endpoint of `issuer`.
pub fn token_endpoint(issuer: &str) -> String {
    format!("{}/aas/oauth2/te", issuer.trim_end_matches('/'))
}

/// ESIA's timestamp: `yyyy.MM.dd HH:mm:ss +0000`.
pub fn timestamp(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.format("%Y.%m.%d %H:%M:%S %z").to_string()
}

/// Signs `text` with the hook; the signature url-safe without padding.
pub fn sign(argv: &[String], text: &str) -> Result<String, String> {
    let (prog, args) = argv.split_first().ok_or("expected a sign_command, found an empty one")?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the signing hook {prog} cannot be started: {e}"))?;
    child.stdin.take().ok_or("no stdin")?.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the signing hook {prog} failed ({})", out.status));
    }
    let b64: String = String::from_utf8_lossy(&out.stdout).chars().filter(|c| !c.is_whitespace()).collect();
    let raw = STANDARD
        .decode(&b64)
        .or_else(|_| URL_SAFE.decode(&b64))
        .or_else(|_| URL_SAFE_NO_PAD.decode(&b64))
        .map_err(|_| format!("expected a base64 signature from the signing hook {prog}, found something else"))?;
    if raw.is_empty() {
        return Err(format!("expected a signature from the signing hook {prog}, found nothing"));
    }
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// The scopes sent (space-separated, `openid` first).
pub fn scope(p: &OidcProvider) -> String {
    std::iter::once("openid").chain(p.scopes.iter().map(String::as_str).filter(|s| *s != "openid")).collect::<Vec<_>>().join(" ")
}

/// The query of the authorization request.
pub fn authorize_params(p: &OidcProvider, state: &str, redirect_uri: &str, ts: &str) -> Result<Vec<(String, String)>, String> {
    let scope = scope(p);
    let secret = sign(p.sign_command.as_deref().unwrap_or_default(), &format!("{scope}{ts}{}{state}", p.client_id))?;
    Ok([
        ("client_id", p.client_id.clone()),
        ("client_secret", secret),
        ("redirect_uri", redirect_uri.to_string()),
        ("scope", scope),
        ("response_type", "code".into()),
        ("state", state.to_string()),
        ("timestamp", ts.to_string()),
        ("access_type", "online".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

/// The form of the token request for `code` (a new state and signature: ESIA asks for
/// them on this request too).
pub fn token_params(p: &OidcProvider, code: &str, state: &str, redirect_uri: &str, ts: &str) -> Result<Vec<(String, String)>, String> {
    let scope = scope(p);
    let secret = sign(p.sign_command.as_deref().unwrap_or_default(), &format!("{scope}{ts}{}{state}", p.client_id))?;
    Ok([
        ("client_id", p.client_id.clone()),
        ("code", code.to_string()),
        ("grant_type", "authorization_code".into()),
        ("client_secret", secret),
        ("state", state.to_string()),
        ("redirect_uri", redirect_uri.to_string()),
        ("scope", scope),
        ("timestamp", ts.to_string()),
        ("token_type", "Bearer".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::section::OidcProfile;

    fn esia(sign: &[&str]) -> OidcProvider {
        OidcProvider {
            name: "esia".into(),
            profile: OidcProfile::Esia,
            issuer: TEST.into(),
            client_id: "MWARE01".into(),
            client_secret_env: None,
            scopes: vec!["fullname".into(), "email".into()],
            user_claim: "sub".into(),
            allowed_values: vec![],
            sign_command: Some(sign.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn the_profile_has_esias_endpoints_timestamp_and_a_signed_secret_over_the_documented_text() {
        assert_eq!(authorization_endpoint(TEST), "https://esia-portal1.test.gosuslugi.ru/aas/oauth2/ac");
        assert_eq!(token_endpoint(&format!("{PRODUCTION}/")), "https://esia.gosuslugi.ru/aas/oauth2/te");
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:05:09+03:00").unwrap();
        assert_eq!(timestamp(t), "2026.12.07 10:05:09 +0300");
        // The hook here is base64 itself: the "signature" is the signed text, so the test
        // sees exactly what was given to sign, and in which order.
        let p = esia(&["/usr/bin/base64", "-w0"]);
        let q = authorize_params(&p, "st4te", "https://id.test/cb", "2026.12.07 10:05:09 +0300").unwrap();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("scope"), "openid fullname email");
        assert_eq!(get("access_type"), "online");
        let signed = URL_SAFE_NO_PAD.decode(get("client_secret")).unwrap();
        assert_eq!(String::from_utf8(signed).unwrap(), "openid fullname email2026.12.07 10:05:09 +0300MWARE01st4te");
        let t = token_params(&p, "c0de", "st4te2", "https://id.test/cb", "2026.12.07 10:05:10 +0300").unwrap();
        assert!(t.contains(&("grant_type".into(), "authorization_code".into())) && t.contains(&("token_type".into(), "Bearer".into())));
        assert_eq!(SUBJECT_CLAIM, "urn:esia:sbj_id");
    }

    #[test]
    fn a_failing_or_silent_hook_is_an_error_not_an_empty_secret() {
        assert!(sign(&["/bin/false".into()], "x").unwrap_err().contains("failed"));
        assert!(sign(&["/bin/true".into()], "x").unwrap_err().contains("found nothing"));
        assert!(sign(&["/nonexistent/signer".into()], "x").unwrap_err().contains("cannot be started"));
    }
}
