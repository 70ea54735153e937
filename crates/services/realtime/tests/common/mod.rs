//! Test support: a throwaway PostgreSQL database with Asterisk realtime
//! tables, the provisioning server on a loopback port, and a client that
//! builds requests exactly as Asterisk's res_config_curl does.
#![allow(dead_code)]

use mware_config::Secret;
use mware_realtime::codec::encode;
use mware_realtime::{provisioning_routes, ProvisioningHandle};
use mware_realtime::{Provisioning, ProvisioningEntity};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Asterisk realtime tables (columns from Asterisk's alembic scripts; `domain` is mware's
/// tenant column: ps_endpoints and ps_auths are scoped by it, ps_aors is shared).
pub const SCHEMA: &str = r#"
CREATE TYPE yesno_values AS ENUM ('yes', 'no');
CREATE TABLE ps_endpoints (
    id varchar(40) NOT NULL, domain varchar(80) NOT NULL,
    transport varchar(40), aors varchar(200), auth varchar(40), context varchar(40),
    disallow varchar(200), allow varchar(200), direct_media yesno_values,
    callerid varchar(40), max_audio_streams integer,
    PRIMARY KEY (domain, id));
CREATE TABLE ps_auths (
    id varchar(40) NOT NULL, domain varchar(80) NOT NULL,
    auth_type varchar(40), password varchar(80), username varchar(40),
    PRIMARY KEY (domain, id));
CREATE TABLE ps_aors (
    id varchar(40) PRIMARY KEY, max_contacts integer, remove_existing yesno_values,
    qualify_frequency integer);
CREATE TABLE ast_config (
    id serial PRIMARY KEY, cat_metric integer NOT NULL DEFAULT 0, var_metric integer NOT NULL DEFAULT 0,
    commented integer NOT NULL DEFAULT 0, filename varchar(128) NOT NULL, category varchar(128) NOT NULL,
    var_name varchar(128) NOT NULL, var_val varchar(128) NOT NULL);
"#;

/// The seed's SIP server: entity `12:34:56:78:9a:bc`, tenant t1.example.ru, may write.
pub const E1: &str = "12:34:56:78:9a:bc";
/// Another tenant's SIP server (t2.example.ru), may write.
pub const E2: &str = "12:34:56:78:9a:bd";
/// A read-only SIP server of t1.example.ru.
pub const RO: &str = "12:34:56:78:9a:be";
/// A SIP server of two tenants (t1 and t3), may write.
pub const MULTI: &str = "12:34:56:78:9a:bf";

/// Test entities: (id, domains, user, password, write).
pub const ENTITIES: &[(&str, &[&str], &str, &str, bool)] = &[
    (E1, &["t1.example.ru"], "ast1", "pw-ast1-Secret", true),
    (E2, &["t2.example.ru"], "ast2", "pw-ast2-Secret", true),
    (RO, &["t1.example.ru"], "ro1", "pw-ro1-Secret", false),
    (MULTI, &["t1.example.ru", "t3.example.ru"], "multi", "pw-multi-Secret", true),
];

/// The credential of a test entity.
pub fn cred(entity: &str) -> Option<(String, String)> {
    ENTITIES.iter().find(|e| e.0 == entity).map(|e| (e.2.to_string(), e.3.to_string()))
}

/// A database created for one test and dropped when the guard goes.
pub struct TestDb {
    pub name: String,
}

fn admin_dsn(db: &str) -> String {
    format!("host=127.0.0.1 port=5432 user=postgres dbname={db}")
}

pub async fn client(db: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&admin_dsn(db), tokio_postgres::NoTls).await.expect("connect to postgres");
    tokio::spawn(conn);
    c
}

impl TestDb {
    pub async fn create(tag: &str) -> TestDb {
        let name = format!("rt_{tag}_{}_{}", std::process::id(), mware_coord::now_ms() % 1_000_000);
        client("postgres").await.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        client(&name).await.batch_execute(SCHEMA).await.expect("create tables");
        TestDb { name }
    }
    pub fn dsn(&self) -> String {
        admin_dsn(&self.name)
    }
    pub async fn client(&self) -> tokio_postgres::Client {
        client(&self.name).await
    }
    pub fn config(&self) -> Provisioning {
        let families: BTreeMap<String, String> =
            [("endpoint", "ps_endpoints"), ("auth", "ps_auths"), ("aor", "ps_aors"), ("config", "ast_config")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        let entities = ENTITIES
            .iter()
            .map(|(id, domains, user, password, write)| {
                let e = ProvisioningEntity {
                    domains: domains.iter().map(|d| d.to_string()).collect(),
                    user: user.to_string(),
                    password: Secret::new(*password),
                    write: *write,
                };
                (id.to_string(), e)
            })
            .collect();
        Provisioning {
            dsn: Secret::new(self.dsn()),
            families,
            max_body_bytes: 4096,
            entities,
            shared_families: vec!["aor".into(), "config".into()],
            ..Default::default()
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // argv, no shell; WITH (FORCE) ends the sessions the test left open.
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .output();
    }
}

/// The provisioning server on a loopback port, stoppable.
pub struct ProvServer {
    pub addr: SocketAddr,
    pub handle: ProvisioningHandle,
    pub registry: std::sync::Arc<prometheus_client::registry::Registry>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ProvServer {
    /// Starts the service (connected to `cfg`'s database) and serves it on `port` (0: any).
    pub async fn start(cfg: &Provisioning, port: u16) -> ProvServer {
        let mut registry = prometheus_client::registry::Registry::default();
        let handle = ProvisioningHandle::new(&mut registry);
        handle.start(cfg).await.expect("provisioning starts");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = provisioning_routes(handle.clone()).into_router();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(s.cancelled_owned()).await.unwrap();
        });
        ProvServer { addr, handle, registry: std::sync::Arc::new(registry), stop, task: Some(task) }
    }
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The service's metrics in Prometheus text.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
    /// Closes the listening socket and every connection.
    pub async fn kill(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        self.handle.stop();
    }
}

/// A client building requests byte for byte as res_config_curl does
/// (`ast_uri_encode` with `ast_uri_http`, operators inside field names), with the
/// credential in the URL as extconfig.conf gives it (`http://USER:PASSWORD@HOST/...`,
/// which libcurl sends as HTTP Basic).
pub struct Ast {
    pub http: reqwest::Client,
    /// `http://[USER:PASSWORD@]HOST/provision/asterisk/ENTITY/FAMILY`
    pub base: String,
}

pub fn join(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

impl Ast {
    /// A client of a test entity with its own credential (none for an unknown one).
    pub fn new(server: &str, entity: &str, family: &str) -> Ast {
        Ast::with(server, entity, family, cred(entity))
    }
    /// A client sending the given credential (`None`: none at all).
    pub fn with(server: &str, entity: &str, family: &str, cred: Option<(String, String)>) -> Ast {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap();
        let server = match cred {
            Some((u, p)) => server.replacen("http://", &format!("http://{}:{}@", encode(&u), encode(&p)), 1),
            None => server.to_string(),
        };
        // ${ENTITYID} is substituted as is (its ':' unencoded), as Asterisk does.
        Ast { http, base: format!("{server}/provision/asterisk/{entity}/{family}") }
    }
    pub async fn post(&self, suffix: &str, body: String) -> (u16, String) {
        let r = self.post_full(suffix, body).await;
        (r.0, r.1)
    }
    /// Like [`Ast::post`], also returning the `WWW-Authenticate` header.
    pub async fn post_full(&self, suffix: &str, body: String) -> (u16, String, Option<String>) {
        let r = self
            .http
            .post(format!("{}/{suffix}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request sent");
        let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or("").to_string());
        (r.status().as_u16(), r.text().await.unwrap(), www)
    }
    /// `realtime_curl`: `${CURL(url/single,k=v&...)}`
    pub async fn single(&self, fields: &[(&str, &str)]) -> (u16, String) {
        self.post("single", join(fields)).await
    }
    /// `realtime_multi_curl`
    pub async fn multi(&self, fields: &[(&str, &str)]) -> (u16, String) {
        self.post("multi", join(fields)).await
    }
    /// `store_curl`
    pub async fn store(&self, fields: &[(&str, &str)]) -> (u16, String) {
        self.post("store", join(fields)).await
    }
    /// `update_curl`: `url/update?key=val` with the fields in the body.
    pub async fn update(&self, key: &str, lookup: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.post(&format!("update?{}={}", encode(key), encode(lookup)), join(fields)).await
    }
    /// `destroy_curl`: `key=val&` then the other fields.
    pub async fn destroy(&self, key: &str, lookup: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.post("destroy", format!("{}={}&{}", encode(key), encode(lookup), join(fields))).await
    }
    /// `require_curl`: `name=type%3Asize&...`
    pub async fn require(&self, fields: &[(&str, &str, i32)]) -> (u16, String) {
        let body = fields.iter().map(|(n, t, s)| format!("{}={t}%3A{s}", encode(n))).collect::<Vec<_>>().join("&");
        self.post("require", body).await
    }
    /// `config_curl`: a GET of `url/static?file=NAME`.
    pub async fn static_file(&self, file: &str) -> (u16, String) {
        let r = self.http.get(format!("{}/static?file={}", self.base, encode(file))).send().await.expect("sent");
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// Runs a test body with an overall time limit.
pub async fn bounded<F: std::future::Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(std::time::Duration::from_secs(secs), f).await.expect("test finished in time");
}
