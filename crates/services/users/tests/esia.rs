//! Login through the ESIA profile against a provider the test runs that speaks ESIA's
//! shapes (`/aas/oauth2/ac` with a signed client secret, UUID state, timestamp and
//! `access_type=online`; `/aas/oauth2/te` answering the state it was sent and an ID token
//! naming the user by `urn:esia:sbj_id`, signed RS256 by a key made with openssl). The
//! signing hook is base64 itself, so the provider checks exactly what was signed; the
//! verification hook is `openssl dgst -verify` with the provider's public key. The login
//! is started, the service run again with nothing in memory (a failover), and the login
//! finishes; a replayed callback, a tampered ID token and a token signed by another key
//! are refused and make no account.

mod common;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{Env, D1, D2};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

const CLIENT: &str = "MWARE01";
const SUBJECT: i64 = 1_000_299_654;
/// What the provider does to its next ID tokens.
const HONEST: u8 = 0;
const TAMPER: u8 = 1;
const OTHER_KEY: u8 = 2;

struct Idp {
    issuer: String,
    key: PathBuf,
    other_key: PathBuf,
    codes: Mutex<HashSet<String>>,
    mode: AtomicU8,
    problems: Mutex<Vec<String>>,
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut c = std::process::Command::new("/usr/bin/openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    c.stdin.take().unwrap().write_all(input).unwrap();
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.to_str().unwrap()], b"");
    openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()], b"");
    (key, public)
}

impl Idp {
    /// The client secret must be the signature (here: base64) of scope + timestamp +
    /// client_id + state, as ESIA's guidelines say.
    fn check(&self, q: &HashMap<String, String>, endpoint: &str) -> bool {
        let get = |k: &str| q.get(k).cloned().unwrap_or_default();
        let signed = URL_SAFE_NO_PAD.decode(get("client_secret")).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
        let want = format!("{}{}{}{}", get("scope"), get("timestamp"), get("client_id"), get("state"));
        let mut bad = vec![];
        if get("client_id") != CLIENT {
            bad.push("client_id");
        }
        if signed != want {
            bad.push("client_secret");
        }
        if !get("scope").starts_with("openid ") {
            bad.push("scope");
        }
        if get("state").len() != 36 || get("state").chars().nth(14) != Some('4') {
            bad.push("state");
        }
        if chrono::NaiveDateTime::parse_from_str(get("timestamp").get(..19).unwrap_or(""), "%Y.%m.%d %H:%M:%S").is_err() {
            bad.push("timestamp");
        }
        if !get("redirect_uri").ends_with("/oidc/esia/callback") {
            bad.push("redirect_uri");
        }
        for b in &bad {
            self.problems.lock().unwrap().push(format!("{endpoint}: {b}"));
        }
        bad.is_empty()
    }

    fn id_token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let header = json!({"alg": "RS256", "typ": "JWT", "sbt": "id", "ver": 0});
        let claims = json!({"iss": format!("{}/", self.issuer), "aud": CLIENT, "sub": SUBJECT, "urn:esia:sbj_id": SUBJECT,
                            "urn:esia:sid": "abc123", "exp": now + 3600, "iat": now, "nbf": now, "amr": "PWD"});
        let data = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mode = self.mode.load(Ordering::SeqCst);
        let key = if mode == OTHER_KEY { &self.other_key } else { &self.key };
        let sig = openssl(&["dgst", "-sha256", "-binary", "-sign", key.to_str().unwrap()], data.as_bytes());
        let mut token = format!("{data}.{}", URL_SAFE_NO_PAD.encode(sig));
        if mode == TAMPER {
            let mut c = claims.clone();
            c["urn:esia:sbj_id"] = json!(666);
            let parts: Vec<&str> = token.split('.').collect();
            token = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(c.to_string()), parts[2]);
        }
        token
    }
}

async fn ac(State(idp): State<Arc<Idp>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let ok = idp.check(&q, "ac")
        && q.get("response_type").map(String::as_str) == Some("code")
        && q.get("access_type").map(String::as_str) == Some("online");
    if !ok {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = format!("{:032x}", rand::random::<u128>());
    idp.codes.lock().unwrap().insert(code.clone());
    let to = format!("{}?code={code}&state={}", q["redirect_uri"], q["state"]);
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn te(State(idp): State<Arc<Idp>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let code_ok = f.get("code").is_some_and(|c| idp.codes.lock().unwrap().remove(c));
    let ok = idp.check(&f, "te")
        && code_ok
        && f.get("grant_type").map(String::as_str) == Some("authorization_code")
        && f.get("token_type").map(String::as_str) == Some("Bearer");
    if !ok {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let idp2 = idp.clone();
    let id_token = tokio::task::spawn_blocking(move || idp2.id_token()).await.unwrap();
    Json(json!({"access_token": "opaque-access", "id_token": id_token, "state": f["state"], "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "opaque-refresh"}))
    .into_response()
}

async fn provider(dir: &Path) -> (Arc<Idp>, PathBuf) {
    let (key, public) = keypair(dir, "esia");
    let (other_key, _) = keypair(dir, "other");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp =
        Arc::new(Idp { issuer, key, other_key, codes: Default::default(), mode: AtomicU8::new(HONEST), problems: Default::default() });
    let app = axum::Router::new()
        .route("/aas/oauth2/ac", axum::routing::get(ac))
        .route("/aas/oauth2/te", axum::routing::post(te))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, public)
}

fn cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or("").to_string()).filter(|v| !v.is_empty())
    })
}

/// Start → provider → callback; the callback's answer.
async fn login(env: &mut Env, http: &reqwest::Client, issuer: &str, failover: bool) -> (u16, String, Option<String>, String) {
    let r = http.get(format!("{}/users/{D1}/oidc/esia/start", env.base)).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let state = cookie(&r, "mw_oidc").expect("the state cookie");
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{issuer}/aas/oauth2/ac?")), "{to}");
    for k in ["client_secret=", "timestamp=", "access_type=online", "scope=openid+fullname+email", &format!("state={state}")] {
        assert!(to.contains(k), "{k} in {to}");
    }
    if failover {
        assert_eq!(env.sql("SELECT count(*) FROM oidc_flows"), "1", "the login in progress is in the database");
        env.rerun().await;
    }
    let r = http.get(&to).send().await.unwrap();
    assert_eq!(r.status(), 302, "the provider took the authorization request");
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let r = http.get(&back).header(header::COOKIE, format!("mw_oidc={state}")).send().await.unwrap();
    let session = cookie(&r, "mw_session");
    (r.status().as_u16(), r.text().await.unwrap(), session, back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_esia_login_survives_a_failover_and_tampered_or_foreign_tokens_are_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (idp, public) = provider(keys.path()).await;
    let issuer = idp.issuer.clone();
    let verify = json!(["/usr/bin/openssl", "dgst", "-sha256", "-verify", public, "-signature", "{signature}", "{data}"]);
    let mut env = Env::start_at("esia1", |base| {
        json!({
            "public_url": base,
            "domains": [
                {"name": D1, "oidc": [{"name": "esia", "profile": "esia", "issuer": issuer, "client_id": CLIENT,
                                       "scopes": ["fullname", "email"], "sign_command": ["/usr/bin/base64", "-w0"], "verify_command": verify}]},
                {"name": D2}
            ]
        })
    })
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let (s, text, session, callback) = login(&mut env, &http, &issuer, true).await;
    assert_eq!(s, 200, "{text}\nprovider saw: {:?}", idp.problems.lock().unwrap());
    assert!(text.contains(&SUBJECT.to_string()), "{text}");
    let session = session.expect("a session cookie");
    let (s, me) = env.get("/api/users/v1/session", Some(&session)).await;
    assert_eq!((s, me["login"].as_str()), (200, Some("1000299654")), "{me}");
    assert_eq!(env.sql("SELECT login FROM users"), "1000299654", "the account is named by urn:esia:sbj_id");
    assert!(idp.problems.lock().unwrap().is_empty(), "{:?}", idp.problems.lock().unwrap());

    // The same callback again: refused.
    let r = http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // A second login finds the same account.
    let (s, _, _, _) = login(&mut env, &http, &issuer, false).await;
    assert_eq!(s, 200);
    assert_eq!(env.sql("SELECT count(*) FROM users"), "1");

    // A payload changed after signing, and a token signed by a key that is not ESIA's:
    // the verification hook refuses both, no account is made.
    for (mode, what) in [(TAMPER, "tampered"), (OTHER_KEY, "signed by another key")] {
        idp.mode.store(mode, Ordering::SeqCst);
        let (s, text, session, _) = login(&mut env, &http, &issuer, false).await;
        assert_eq!(s, 400, "a token {what}: {text}");
        assert!(text.contains("verification hook"), "{text}");
        assert!(session.is_none());
    }
    assert_eq!(env.sql("SELECT count(*) FROM users"), "1", "no account for the tampered subject");
    env.stop().await;
}
