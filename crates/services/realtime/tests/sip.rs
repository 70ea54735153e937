//! A real SIP server as the client of the rtcache sidecar: Kamailio 5.6
//! (`http_client` + `auth`) looks up each REGISTERing user's `auth` object
//! through the sidecar in front of the provisioning service and PostgreSQL,
//! as Asterisk would: the seed's entity id in the path and the entity's
//! credential in the URL (HTTP Basic), and SIPp registers users with digest
//! authentication. A lookup with a wrong credential is refused (401) and the
//! user is not registered. When the provisioning
//! server is stopped, the users fetched before the outage still register (the
//! sidecar serves its cache) while a user never fetched gets 404: the cache is
//! what serves.
//!
//! Needs the Debian packages `kamailio kamailio-utils-modules sip-tester`
//! (installed by `scripts/setup.sh`); without them the test fails, it never
//! skips.

mod common;

use common::{bounded, cred, ProvServer, TestDb, E1};
use mware_realtime::rtcache::{serve, RtcacheArgs};
use mware_testkit::Child;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DOMAIN: &str = "tenant1.example.ru";
/// Users registered before the outage: (id, password). One password needs
/// %-decoding in the registrar (`@` and `+` are sent as %40 and %2B).
const USERS: &[(&str, &str)] = &[("1001", "Secr3t1001"), ("1002", "p@ss+1002"), ("1003", "Secr3t1003")];
/// In the database but never asked for before the outage.
const NEVER_FETCHED: (&str, &str) = ("1004", "Secr3t1004");

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip")
}

/// The absolute path of a program, or a failure that says how to install it.
fn require(program: &str, candidates: &[&str]) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    for d in dirs {
        for c in candidates {
            let p = d.join(c);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "{program} is not installed: run scripts/setup.sh \
         (Debian packages: kamailio kamailio-utils-modules sip-tester)"
    );
}

/// Kamailio's module directory (Debian multiarch or a plain /usr/lib).
fn module_dir() -> PathBuf {
    let found = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
        "/usr/local/lib/kamailio/modules",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|d| d.join("http_client.so").is_file());
    found.unwrap_or_else(|| {
        panic!(
            "kamailio's http_client module is not installed: run scripts/setup.sh \
             (Debian packages: kamailio kamailio-utils-modules sip-tester)"
        )
    })
}

/// A free UDP port on 127.0.0.1 (bind to 0, read, release).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free udp port")
}

/// The PIDs whose parent is `ppid` (from /proc/*/stat).
fn children_of(ppid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok()) == Some(ppid)
        })
        .collect()
}

/// Kamailio in the foreground with its worker processes; dropping it stops
/// the main process (SIGTERM, then SIGKILL) and kills its workers by PID.
struct Kamailio {
    main: Child,
    port: u16,
    log: PathBuf,
}

impl Kamailio {
    fn start(dir: &Path, sidecar: &str) -> Kamailio {
        let (user, pass) = cred(E1).expect("E1 has a credential");
        let bin = require("kamailio", &["kamailio"]);
        let port = free_udp_port();
        let cfg = std::fs::read_to_string(scenario_dir().join("kamailio.cfg.in"))
            .expect("kamailio.cfg.in")
            .replace("@MPATH@", &module_dir().to_string_lossy())
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@SIDECAR@", sidecar)
            .replace("@ENTITY@", E1)
            .replace("@CRED@", &format!("{user}:{pass}"))
            .replace("@BADCRED@", &format!("{user}:not-{pass}"));
        let cfg_path = dir.join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let log = dir.join("kamailio.log");
        let mut cmd = Command::new(bin);
        cmd.arg("-DD")
            .arg("-E")
            .arg("-f")
            .arg(&cfg_path)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(&run)
            .arg("-w")
            .arg(dir)
            .args(["-m", "32", "-M", "8"]);
        let main = Child::spawn("kamailio", cmd, &log).expect("kamailio starts");
        let mut k = Kamailio { main, port, log };
        k.wait_ready(Duration::from_secs(15));
        k
    }

    /// Sends OPTIONS until the registrar answers (its route refuses it with 405).
    fn wait_ready(&mut self, timeout: Duration) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let local = sock.local_addr().unwrap();
        let deadline = Instant::now() + timeout;
        let mut n = 0;
        while Instant::now() < deadline {
            assert!(self.main.is_running(), "kamailio exited at start:\n{}", self.log_text());
            n += 1;
            let probe = format!(
                "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{n}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag={n}\r\nTo: <sip:{DOMAIN}>\r\n\
                 Call-ID: probe-{n}@test\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = sock.send_to(probe.as_bytes(), ("127.0.0.1", self.port));
            let mut buf = [0u8; 2048];
            if let Ok((len, _)) = sock.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..len]);
                assert!(text.starts_with("SIP/2.0 405"), "probe answered: {text}");
                return;
            }
        }
        panic!("kamailio did not answer within {timeout:?}:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let workers = children_of(self.main.pid());
        self.main.signal(15); // SIGTERM: kamailio stops its workers itself
        if self.main.wait_timeout(Duration::from_secs(5)).is_none() {
            self.main.kill9();
        }
        for pid in workers {
            // Only the workers listed while their parent (our child) was alive;
            // argv, no shell. Already gone is fine.
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).output();
            }
        }
    }
}

/// What one SIPp run reported.
#[derive(Debug)]
struct SippRun {
    exit: Option<i32>,
    successful: u64,
    failed: u64,
}

/// Runs `scenario` once for `user` (injection file line: user;password;domain,
/// digest credentials from `-au`/`-ap`) against the registrar.
fn sipp(dir: &Path, tag: &str, scenario: &str, user: (&str, &str), kam: &Kamailio) -> SippRun {
    let bin = require("sipp", &["sipp"]);
    let (u, p) = user;
    let csv = dir.join(format!("{tag}.csv"));
    std::fs::write(&csv, format!("SEQUENTIAL\n{u};{p};{DOMAIN}\n")).unwrap();
    let stat = dir.join(format!("{tag}_stat.csv"));
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .arg("-sf")
        .arg(scenario_dir().join(scenario))
        .arg("-inf")
        .arg(&csv)
        .args(["-au", u, "-ap", p, "-s", u])
        .args(["-m", "1", "-l", "1"])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-nostdin", "-timeout", "10s", "-timeout_error", "-recv_timeout", "5000"])
        .args(["-trace_stat", "-stf"])
        .arg(&stat)
        .args(["-trace_err"])
        .arg(format!("127.0.0.1:{}", kam.port));
    let log = dir.join(format!("{tag}_sipp.log"));
    let mut child = Child::spawn("sipp", cmd, &log).expect("sipp starts");
    let exit = child.wait_timeout(Duration::from_secs(12));
    drop(child);
    let (successful, failed) = sipp_totals(&stat);
    SippRun { exit, successful, failed }
}

/// SuccessfulCall(C) and FailedCall(C) from the last row of SIPp's statistics file.
fn sipp_totals(stat: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return (0, 0);
    };
    let Some(last) = lines.next_back() else {
        return (0, 0);
    };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| cols.iter().position(|c| *c == name).and_then(|i| vals.get(i)?.trim().parse().ok()).unwrap_or(0);
    (get("SuccessfulCall(C)"), get("FailedCall(C)"))
}

struct Sidecar {
    url: String,
    addr: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn sidecar(upstream: String, dir: &Path) -> Sidecar {
    // Stale after 1 s: during the outage every read tries the dead source
    // first and falls back to the cache.
    let args = RtcacheArgs {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        upstream: vec![upstream],
        object_lifetime_maximum: Some(300),
        object_lifetime_stale: Some(1),
        cache_dir: Some(dir.to_path_buf()),
        upstream_timeout_ms: Some(1000),
        ..Default::default()
    };
    let cfg = args.resolve().expect("valid args");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move { serve(listener, cfg, s).await.expect("sidecar serves") });
    Sidecar { url: format!("http://{addr}"), addr, stop, task }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Runs blocking SIPp work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_registers_from_the_sidecar_cache_while_the_source_is_down() {
    // Fail (never skip) before touching anything when the tools are missing.
    require("kamailio", &["kamailio"]);
    require("sipp", &["sipp"]);
    module_dir();

    bounded(60, async {
        let db = TestDb::create("sip").await;
        let c = db.client().await;
        for (id, pw) in USERS.iter().chain([&NEVER_FETCHED]) {
            c.execute(
                "INSERT INTO ps_auths (id, domain, auth_type, username, password) \
                 VALUES ($1, $2, 'userpass', $1, $3)",
                &[id, &DOMAIN, pw],
            )
            .await
            .unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // The seed's SIP server sees the registrar's tenant.
        let mut cfg = db.config();
        cfg.entities.get_mut(E1).unwrap().domains = vec![DOMAIN.into()];
        for id in ["intruder"] {
            c.execute(
                "INSERT INTO ps_auths (id, domain, auth_type, username, password) VALUES ($1, $2, 'userpass', $1, 'x')",
                &[&id, &DOMAIN],
            )
            .await
            .unwrap();
        }
        let mut up = ProvServer::start(&cfg, 0).await;
        let sc = sidecar(up.url(), &dir.join("cache")).await;
        let addr = sc.addr.clone();
        let kam = std::sync::Arc::new(
            blocking({
                let dir = dir.clone();
                move || Kamailio::start(&dir, &addr)
            })
            .await,
        );

        let run = |tag: String, scenario: &'static str, user: (&'static str, &'static str)| {
            let (dir, kam) = (dir.clone(), kam.clone());
            blocking(move || sipp(&dir, &tag, scenario, user, &kam))
        };
        let explain = |tag: &str| {
            let sipp_log = std::fs::read_to_string(dir.join(format!("{tag}_sipp.log"))).unwrap_or_default();
            format!("sipp output:\n{}\nkamailio log:\n{}", sipp_log.lines().rev().take(40).collect::<Vec<_>>().join("\n"), kam.log_text())
        };

        // Source up: every user registers with digest auth.
        for &(id, pw) in USERS {
            let tag = format!("up_{id}");
            let r = run(tag.clone(), "register.xml", (id, pw)).await;
            assert!(
                r.exit == Some(0) && r.successful == 1 && r.failed == 0,
                "{id} registered (401 then 200) with the source up: {r:?}\n{}",
                explain(&tag)
            );
        }
        // A wrong password is challenged again, a user absent from the database is 404.
        let r = run("wrong".into(), "register_wrong.xml", ("1001", "NotThePassword")).await;
        assert!(r.exit == Some(0) && r.successful == 1, "wrong password: 401 again: {r:?}\n{}", explain("wrong"));
        let r = run("absent".into(), "register_404.xml", ("9999", "x")).await;
        assert!(r.exit == Some(0) && r.successful == 1, "absent user: 404: {r:?}\n{}", explain("absent"));
        // In the database, but looked up with a wrong credential: refused, not registered.
        let r = run("intruder".into(), "register_404.xml", ("intruder", "x")).await;
        assert!(r.exit == Some(0) && r.successful == 1, "wrong credential: 404: {r:?}\n{}", explain("intruder"));
        let log = kam.log_text();
        assert!(
            log.lines().any(|l| l.contains(&format!("register intruder@{DOMAIN}: sidecar answered 401"))),
            "the sidecar answered 401 for the wrong credential:\n{log}"
        );

        // The source goes down; wait past object_lifetime_stale so the sidecar
        // really tries the dead upstream before answering from its cache.
        up.kill().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for &(id, pw) in USERS {
            let tag = format!("down_{id}");
            let r = run(tag.clone(), "register.xml", (id, pw)).await;
            assert!(
                r.exit == Some(0) && r.successful == 1 && r.failed == 0,
                "{id} registered (401 then 200) with the source down: {r:?}\n{}",
                explain(&tag)
            );
        }
        // Never fetched before the outage: the sidecar has nothing to serve, so no 200.
        let r = run("never".into(), "register_404.xml", NEVER_FETCHED).await;
        assert!(r.exit == Some(0) && r.successful == 1, "a user never fetched before the outage gets 404: {r:?}\n{}", explain("never"));
        let m = reqwest::get(format!("{}/metrics", sc.url)).await.unwrap().text().await.unwrap();
        assert!(metric(&m, "rtcache_errors_served_from_cache") >= USERS.len() as f64, "{m}");
        assert!(metric(&m, "rtcache_upstream_errors") >= 1.0, "{m}");

        // The registrar saw the sidecar fail for the never-fetched user (no cached
        // object, source down), not a "not found".
        let log = kam.log_text();
        let never = format!("register {}@{DOMAIN}: sidecar answered", NEVER_FETCHED.0);
        assert!(
            log.lines().any(|l| l.contains(&never) && l.ends_with("answered 502")),
            "the sidecar answered 502 for {}:\n{log}",
            NEVER_FETCHED.0
        );
        // What the registrar saw, in order (shown with --nocapture).
        for line in kam.log_text().lines().filter(|l| l.contains("sidecar answered")) {
            eprintln!("{}", line.rsplit_once("register ").map_or(line, |(_, r)| r));
        }
        drop(kam);
        sc.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), sc.task).await;
    })
    .await;
}
