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
//! ESIA signs its ID token (a JWS) with GOST R 34.10-2012 too, which no Rust JOSE crate
//! checks: the verification hook (`verify_command`) gets the signed text and the
//! signature in two files and answers by its exit status ([`verify`]); mware then checks
//! the claims itself ([`decide_claims`]: issuer, audience, expiry, not-before, the
//! subject). This module builds the parameters of both requests and runs both hooks; the
//! requests are made by [`super::esia_flow`].

use crate::section::OidcProvider;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Longest wait for the verification hook (then it is killed and the token refused).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew allowed on `exp`, `nbf` and `iat`, seconds.
const SKEW_S: i64 = 60;

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
    // A hook that exits before reading its input closes the pipe: its exit status says
    // more than the broken pipe, so it is read first.
    let written = child.stdin.take().ok_or("no stdin")?.write_all(text.as_bytes());
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
    written.map_err(|e| format!("the signing hook {prog} did not take the text to sign: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// A JWS in compact form taken apart: its `alg`, the signed text, the signature and the
/// claims. Nothing in it is trusted yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Jws {
    /// The header's `alg` (letters, digits, `_` and `-`; at most 64).
    pub alg: String,
    /// `header.payload`, as signed.
    pub data: String,
    /// The signature's bytes.
    pub signature: Vec<u8>,
    /// The payload's JSON object.
    pub claims: Value,
}

/// Takes `token` apart (pure); the reason when it is not a compact JWS with a JSON header
/// and payload.
pub fn split_jws(token: &str) -> Result<Jws, String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [h, p, s] = parts[..] else {
        return Err(format!("expected an ID token of three dot-separated parts, found {}", parts.len()));
    };
    let json = |what: &str, part: &str| -> Result<Value, String> {
        let raw = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| format!("expected the ID token's {what} in base64url, found something else"))?;
        match serde_json::from_slice::<Value>(&raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(format!("expected the ID token's {what} to be a JSON object, found something else")),
        }
    };
    let header = json("header", h)?;
    let claims = json("payload", p)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default().to_string();
    if alg.is_empty() || alg.len() > 64 || !alg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') || alg == "none" {
        return Err("expected a signing alg in the ID token's header, found none or a strange one".into());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "expected the ID token's signature in base64url, found something else".to_string())?;
    if signature.is_empty() {
        return Err("expected a signature on the ID token, found none".into());
    }
    Ok(Jws { alg, data: format!("{h}.{p}"), signature, claims })
}

/// An issuer compared without its scheme, case or trailing slashes (ESIA writes
/// `http://esia.gosuslugi.ru/` in its tokens; the configured issuer is https).
fn same_issuer(a: &str, b: &str) -> bool {
    let n = |s: &str| {
        let s = s.trim();
        let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
        s.trim_end_matches('/').to_ascii_lowercase()
    };
    n(a) == n(b)
}

/// The user the checked claims name (`urn:esia:sbj_id`, a number or a string), after
/// checking the issuer, the audience (`client_id`), the expiry and not-before against
/// `now` (Unix seconds, with a minute of skew). Pure.
pub fn decide_claims(claims: &Value, issuer: &str, client_id: &str, now: i64) -> Result<String, String> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    if !same_issuer(iss, issuer) {
        return Err(format!("expected the ID token of issuer {issuer}, found another issuer"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("expected the ID token for client {client_id}, found another audience"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or("expected exp in the ID token, found none")?;
    if exp + SKEW_S < now {
        return Err("expected an ID token not expired, found an expired one".into());
    }
    for k in ["nbf", "iat"] {
        if claims.get(k).and_then(Value::as_i64).is_some_and(|t| t > now + SKEW_S) {
            return Err(format!("expected an ID token already valid, found {k} in the future"));
        }
    }
    match claims.get(SUBJECT_CLAIM) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            Ok(s.clone())
        }
        _ => Err(format!("expected {SUBJECT_CLAIM} in the ID token, found none or a strange one")),
    }
}

/// A private directory for the hook's two files, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asks the verification hook whether `signature` signs `data` (by `alg`): `Ok(true)` on
/// exit status 0, `Ok(false)` on another; an error when it cannot be run or takes longer
/// than 10 s (then it is killed).
pub async fn verify(argv: &[String], alg: &str, data: &[u8], signature: &[u8]) -> Result<bool, String> {
    use std::os::unix::fs::DirBuilderExt;
    let (prog, args) = argv.split_first().ok_or("expected a verify_command, found an empty one")?;
    let dir = std::env::temp_dir().join(format!("mware-esia-{:032x}", rand::random::<u128>()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| format!("the verification hook's files cannot be made: {e}"))?;
    let scratch = Scratch(dir);
    let (d, s) = (scratch.0.join("data"), scratch.0.join("signature"));
    std::fs::write(&d, data)
        .and_then(|_| std::fs::write(&s, signature))
        .map_err(|e| format!("the verification hook's files cannot be written: {e}"))?;
    let (d, s) = (d.display().to_string(), s.display().to_string());
    let args: Vec<String> = args.iter().map(|a| a.replace("{data}", &d).replace("{signature}", &s)).collect();
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(&args).env("MWARE_JWS_ALG", alg).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
    let status = match tokio::time::timeout(VERIFY_TIMEOUT, cmd.status()).await {
        Err(_) => return Err(format!("the verification hook {prog} did not answer within {} s", VERIFY_TIMEOUT.as_secs())),
        Ok(Err(e)) => return Err(format!("the verification hook {prog} cannot be started: {e}")),
        Ok(Ok(st)) => st,
    };
    drop(scratch);
    Ok(status.success())
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
            verify_command: Some(vec!["/bin/true".into(), "{data}".into(), "{signature}".into()]),
        }
    }

    fn jws(header: &str, claims: &Value, sig: &[u8]) -> String {
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()), URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn a_jws_is_taken_apart_and_malformed_ones_say_why() {
        let c = serde_json::json!({"iss": "x"});
        let t = jws(r#"{"alg":"GOST3410_2012_256","typ":"JWT"}"#, &c, b"sig");
        let j = split_jws(&t).unwrap();
        assert_eq!((j.alg.as_str(), j.signature.as_slice(), &j.claims), ("GOST3410_2012_256", &b"sig"[..], &c));
        assert_eq!(j.data, t.rsplit_once('.').unwrap().0);
        assert!(split_jws("a.b").unwrap_err().contains("three"));
        assert!(split_jws(&jws(r#"{"alg":"none"}"#, &c, b"s")).unwrap_err().contains("alg"));
        assert!(split_jws(&jws(r#"{"alg":"RS256"}"#, &c, b"")).unwrap_err().contains("signature"));
        assert!(split_jws(&format!("{}.!!.x", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#))).unwrap_err().contains("payload"));
    }

    #[test]
    fn the_claims_are_checked_and_the_subject_is_esias_sbj_id() {
        let now = 1_800_000_000;
        let ok = serde_json::json!({"iss": "http://esia.gosuslugi.ru/", "aud": "MWARE01", "exp": now + 3600, "nbf": now, "iat": now,
                                    "urn:esia:sbj_id": 1000299654, "urn:esia:sid": "abc"});
        assert_eq!(decide_claims(&ok, PRODUCTION, "MWARE01", now).unwrap(), "1000299654");
        let with = |k: &str, v: Value| {
            let mut c = ok.clone();
            c[k] = v;
            decide_claims(&c, PRODUCTION, "MWARE01", now).unwrap_err()
        };
        assert!(with("iss", "https://evil.example/".into()).contains("issuer"));
        assert!(with("aud", "OTHER".into()).contains("audience"));
        assert!(with("exp", (now - 3600).into()).contains("expired"));
        assert!(with("nbf", (now + 3600).into()).contains("future"));
        assert!(with("urn:esia:sbj_id", Value::Null).contains("sbj_id"));
        assert!(with("urn:esia:sbj_id", "1; DROP".into()).contains("sbj_id"));
        let mut list = ok.clone();
        list["aud"] = serde_json::json!(["OTHER", "MWARE01"]);
        assert!(decide_claims(&list, PRODUCTION, "MWARE01", now).is_ok());
    }

    #[tokio::test]
    async fn the_verification_hook_answers_by_its_exit_status_and_gets_both_files() {
        assert!(verify(&["/bin/true".into()], "RS256", b"d", b"s").await.unwrap());
        assert!(!verify(&["/bin/false".into()], "RS256", b"d", b"s").await.unwrap());
        assert!(verify(&["/nonexistent/verifier".into()], "RS256", b"d", b"s").await.unwrap_err().contains("cannot be started"));
        // cmp exits 0 only when both files hold the same bytes: the placeholders are the files.
        let cmp: Vec<String> = ["/usr/bin/cmp", "-s", "{data}", "{signature}"].iter().map(|s| s.to_string()).collect();
        assert!(verify(&cmp, "RS256", b"same", b"same").await.unwrap());
        assert!(!verify(&cmp, "RS256", b"same", b"other").await.unwrap());
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
