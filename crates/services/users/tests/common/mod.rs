//! Test support: a real PostgreSQL (testkit, its own port), a real SMTP sink (Debian's
//! aiosmtpd, `support/smtp_sink.py`, its own port, killed by PID), the users service run
//! with a test context, and its routes served on a loopback port with the peer's address.
#![allow(dead_code)]

use mware_config::{Backend, Coordination, Site};
use mware_coord::{Coordinator, EmbeddedCoordinator, Fence, Settings};
use mware_host::{Service, ServiceContext, ServiceState};
use mware_testkit::pg::PgInstance;
use mware_testkit::{free_port, wait_for_port, Child};
use mware_users::UsersService;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const D1: &str = "tenant1.example.ru";
pub const D2: &str = "tenant2.example.ru";
pub const PASSWORD: &str = "an old long password";

/// The SMTP sink.
pub struct Sink {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Sink {
    pub fn start(port: u16, dir: &Path) -> Sink {
        let mut s = Sink { port, dir: dir.join("mail"), child: None, log: dir.join("smtp.log") };
        s.up();
        s
    }
    pub fn up(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut c = std::process::Command::new("/usr/bin/python3");
        c.arg(script).arg(self.port.to_string()).arg(&self.dir);
        self.child = Some(Child::spawn("smtp sink", c, &self.log).expect("start the smtp sink"));
        wait_for_port(&format!("127.0.0.1:{}", self.port), Duration::from_secs(15)).expect("smtp sink listening");
    }
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill9();
        }
    }
    /// Every mail received so far: (envelope recipients, whole text).
    pub fn mails(&self) -> Vec<(String, String)> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let t = std::fs::read_to_string(f).unwrap_or_default();
                let to = t.lines().next().unwrap_or("").trim_start_matches("X-Envelope-To: ").to_string();
                (to, t)
            })
            .collect()
    }
    /// Mails to `to`.
    pub fn to(&self, to: &str) -> Vec<String> {
        self.mails().into_iter().filter(|(r, _)| r == to).map(|(_, t)| t).collect()
    }
    /// Waits until `n` mails to `to` arrived; returns them.
    pub async fn wait(&self, to: &str, n: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.to(to);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{n} mails to {to} within {secs} s: got {}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The token in the link of a mail (`…?token=<43 characters>`), and the link.
pub fn link_of(mail: &str) -> (String, String) {
    let body = mail.split("--decoded body--").nth(1).expect("the decoded body");
    let at = body.find("https://id.test/users/").expect("a link in the mail");
    let link: String = body[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    let token = link.split("token=").nth(1).expect("token parameter").to_string();
    assert_eq!(token.len(), 43, "{link}");
    (token, link)
}

/// The section of the tests: both domains, the sink, small Argon2 parameters unless
/// `section` says otherwise (merged over the defaults).
pub fn section(dsn_env: &str, smtp_port: u16, extra: Value) -> Value {
    let mut s = json!({
        "database": {"dsn_env": dsn_env, "pool_size": 4},
        "public_url": "https://id.test",
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "none", "from": "noreply@example.ru", "timeout_s": 5},
        "argon2": {"memory_kib": 8192, "iterations": 1, "parallelism": 1},
        "limits": {"per_ip_per_min": 100000, "per_login_per_hour": 100000, "per_address_per_hour": 100000},
        "domains": [{"name": D1}, {"name": D2, "self_registration": {"enabled": true, "allowed_email_domains": ["example.ru"], "approval": true}}]
    });
    if let (Some(m), Value::Object(e)) = (s.as_object_mut(), extra) {
        for (k, v) in e {
            m.insert(k, v);
        }
    }
    s
}

pub fn site(section: Value) -> Site {
    let v = json!({
        "site": "t",
        "servers": [{"name": "s1", "ifaces": {"eth0": "127.0.0.1"}, "roles": [
            {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10, "users": section}
        ]}]
    });
    mware_config::validate(&v.to_string(), &mware_users::plugin().sections).expect("test site").site
}

/// Everything one test runs against.
pub struct Env {
    pub pg: PgInstance,
    pub sink: Sink,
    pub svc: UsersService,
    pub registry: Registry,
    pub ctx: ServiceContext,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    server: tokio::task::JoinHandle<()>,
    _site: watch::Sender<Arc<Site>>,
}

impl Env {
    /// PostgreSQL, the sink and the service with `extra` section keys.
    pub async fn start(name: &str, extra: Value) -> Env {
        Self::start_at(name, move |_| extra).await
    }

    /// The same with section keys made from the base URL the routes will be served at.
    pub async fn start_at(name: &str, extra: impl FnOnce(&str) -> Value) -> Env {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let extra = extra(&base);
        let dir = tempfile::tempdir().unwrap();
        let pg = PgInstance::new_primary(name).expect("postgres");
        pg.psql("CREATE DATABASE users").unwrap();
        let dsn_env = format!("MWARE_USERS_TEST_DSN_{}", pg.port);
        std::env::set_var(&dsn_env, format!("host=127.0.0.1 port={} user=postgres dbname=users sslmode=disable", pg.port));
        let sink = Sink::start(free_port(), dir.path());
        let site = site(section(&dsn_env, sink.port, extra));
        Self::run(pg, sink, dir, site, listener).await
    }

    /// Stops the service and runs a new one on the same database and relay (a failover's
    /// new active instance does the same).
    pub async fn restart(self) -> Env {
        let site = (*self._site.borrow()).as_ref().clone();
        self.ctx.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        self.server.abort();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::run(self.pg, self.sink, self.dir, site, listener).await
    }

    /// Stops the service and runs it again behind the same server and address, with
    /// nothing kept in memory (a failover's new active instance starts the same way: only
    /// the group's database carries over). The browser's connections stay usable.
    pub async fn rerun(&mut self) {
        self.ctx.cancel.cancel();
        let old = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        let _ = tokio::time::timeout(Duration::from_secs(30), old).await;
        assert!(self.svc.running().is_none(), "the stopped service has no running state");
        let c = Coordination {
            backend: Backend::Embedded,
            path: self.dir.path().join("coord.sqlite").display().to_string(),
            ..Default::default()
        };
        let coord: Arc<dyn Coordinator> =
            Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.unwrap());
        let ctx = ServiceContext::new(
            "users",
            "mware1",
            Fence { group: 1, epoch: 2 },
            coord,
            self._site.subscribe(),
            CancellationToken::new(),
            Arc::new(Default::default()),
        );
        let (s, c) = (self.svc.clone(), ctx.clone());
        self.task = tokio::spawn(async move { s.run(c).await });
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctx.status.get().state != ServiceState::Running {
            assert!(!self.task.is_finished(), "the service ended: {:?}", ctx.status.get());
            assert!(Instant::now() < deadline, "service did not start again: {:?}", ctx.status.get());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.ctx = ctx;
    }

    async fn run(pg: PgInstance, sink: Sink, dir: tempfile::TempDir, site: Site, listener: tokio::net::TcpListener) -> Env {
        let mut registry = Registry::default();
        let svc = UsersService::new(&mut registry);
        let c =
            Coordination { backend: Backend::Embedded, path: dir.path().join("coord.sqlite").display().to_string(), ..Default::default() };
        let coord: Arc<dyn Coordinator> =
            Arc::new(EmbeddedCoordinator::open(Settings { site: "t".into(), coordination: c }).await.unwrap());
        let (site_tx, site_rx) = watch::channel(Arc::new(site));
        let ctx = ServiceContext::new(
            "users",
            "mware1",
            Fence { group: 1, epoch: 1 },
            coord,
            site_rx,
            CancellationToken::new(),
            Arc::new(Default::default()),
        );
        let (s, c) = (svc.clone(), ctx.clone());
        let task = tokio::spawn(async move { s.run(c).await });
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctx.status.get().state != ServiceState::Running {
            assert!(!task.is_finished(), "the service ended: {:?}", ctx.status.get());
            assert!(Instant::now() < deadline, "service did not start: {:?}", ctx.status.get());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = svc.routes().into_router();
        let server = tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
        });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Env { pg, sink, svc, registry, ctx, base, http, dir, task, server, _site: site_tx }
    }

    /// POSTs `body` to `path`: status, JSON and the `Retry-After` header.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        self.post_with(path, body, None).await
    }

    /// POSTs with an optional bearer token.
    pub async fn post_with(&self, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value, Option<String>) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let ra = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        (status, r.json().await.unwrap_or(Value::Null), ra)
    }

    /// GETs `path` with an optional bearer token.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Creates an active account `login` (its address too) in `domain` with `password`.
    pub async fn user(&self, domain: &str, login: &str, password: &str) {
        let pool = mware_users::db::pool(&self.svc_section().database).unwrap();
        let hasher = mware_users::password::Hasher::new(&self.svc_section().argon2).unwrap();
        let dir = mware_users::PgDirectory::new(pool);
        let hash = hasher.hash(password.into()).await.unwrap();
        use mware_users::Directory;
        dir.create(mware_users::NewUser {
            domain: domain.into(),
            login: login.into(),
            email: Some(login.into()),
            role: "user".into(),
            state: "active".into(),
            password_hash: Some(hash),
        })
        .await
        .unwrap()
        .expect("a new account");
    }

    pub fn svc_section(&self) -> mware_users::Users {
        self.ctx.role().and_then(|r| r.section::<mware_users::Users>()).unwrap()
    }

    /// SQL in the `users` database.
    pub fn sql(&self, q: &str) -> String {
        let out = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &mware_testkit::pg::bin("psql")])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.pg.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "users",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                q,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The metrics text.
    pub fn metrics(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry).unwrap();
        s
    }

    /// Stops the service (cancel), then the server.
    pub async fn stop(self) {
        self.ctx.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        self.server.abort();
    }
}
