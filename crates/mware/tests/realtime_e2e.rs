//! End-to-end: Asterisk-style realtime requests through `mware rtcache` to a real
//! `mware run` site whose group for the tenant hosts the provisioning service on a
//! real PostgreSQL. The request enters at an instance of another group and is
//! forwarded. Then the provisioning instance is killed -9: the sidecar keeps serving
//! what it fetched (single and multi), and writes answer `-1`.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const DB_PWD_MARK: &str = "rt-e2e";

fn psql(db: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

fn post(url: &str, body: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        match reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) => {
                let c = r.status().as_u16();
                (c, r.text().await.unwrap_or_default())
            }
            Err(e) => (0, e.to_string()),
        }
    })
}

struct DropDb(String);
impl Drop for DropDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAtc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0)])
            .output();
    }
}

#[test]
fn sidecar_serves_through_forwarding_and_survives_the_source_outage() {
    let db = format!("rte2e_{}", std::process::id());
    psql("postgres", &format!("CREATE DATABASE {db}"));
    let _guard = DropDb(db.clone());
    psql(
        &db,
        "CREATE TABLE ps_endpoints (id varchar(40) NOT NULL, domain varchar(80) NOT NULL, transport varchar(40), aors varchar(200), \
         auth varchar(40), context varchar(40), PRIMARY KEY (domain, id));
         INSERT INTO ps_endpoints VALUES ('1001', 'tenant1.example.ru', 'transport-udp', '1001', '1001', 'from internal'),
                                         ('1002', 'tenant1.example.ru', 'transport-udp', '1002', '1002', 'internal'),
                                         ('2001', 'other.example.ru', 'transport-udp', '2001', '2001', 'internal');",
    );
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb, pc) = (mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port());
    let site = json!({
        "site": "rt", "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite").to_str().unwrap()},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "front", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": pa},
            {"name": "prov", "roletype": "mware", "iface": "lo", "group": 2, "order": 10, "api_port": pb,
             "include_domains": ["tenant1.example.ru"],
             "provisioning": {"dsn": format!("host=127.0.0.1 port=5432 user=postgres dbname={db} application_name={DB_PWD_MARK}")}}
        ]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let front = Daemon::start(&cfg, "front", &format!("127.0.0.1:{pa}"), dir.path().join("front.log"), &[]);
    let mut prov = Daemon::start(&cfg, "prov", &format!("127.0.0.1:{pb}"), dir.path().join("prov.log"), &[]);
    front.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    prov.wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active" && v["services"].as_array().map(|s| s.iter().any(|s| s["name"] == "provisioning" && s["state"] == "running")).unwrap_or(false)
    });

    // The sidecar in front of the site's first instance (which forwards to group 2).
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["rtcache", "--listen", &format!("127.0.0.1:{pc}"), "--upstream", &front.api, "--object-lifetime-maximum", "120", "--object-lifetime-stale", "1", "--cache-dir"])
        .arg(dir.path().join("cache"));
    let _side = mware_testkit::Child::spawn("rtcache", cmd, &dir.path().join("rtcache.log")).unwrap();
    mware_testkit::wait_for_port(&format!("127.0.0.1:{pc}"), Duration::from_secs(20)).unwrap();
    let base = format!("http://127.0.0.1:{pc}/provision/asterisk/tenant1.example.ru/endpoint");

    let (c, single) = post(&format!("{base}/single"), "id=1001");
    assert_eq!(c, 200, "{single}");
    assert!(single.starts_with("id=1001&") && single.contains("context=from%20internal"), "{single}");
    let (c, multi) = post(&format!("{base}/multi"), "id%20LIKE=10%25");
    assert_eq!(c, 200);
    assert_eq!(multi.lines().count(), 2, "{multi}");
    assert!(!multi.contains("2001"), "tenant isolation: {multi}");
    let (c, missing) = post(&format!("{base}/single"), "id=9999");
    assert_eq!((c, missing.as_str()), (200, ""), "not found is an empty body");

    // The source goes down hard.
    prov.child.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        let (c, s) = post(&format!("{base}/single"), "id=1001");
        assert_eq!((c, s.as_str()), (200, single.as_str()), "cached single must keep resolving");
        let (c, m) = post(&format!("{base}/multi"), "id%20LIKE=10%25");
        assert_eq!((c, m.as_str()), (200, multi.as_str()), "cached multi must keep resolving");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (c, w) = post(&format!("{base}/store"), "id=1003&transport=transport-udp");
    assert_eq!(w.trim(), "-1", "a write during the outage answers -1 (status {c})");
    // Nothing was written.
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-qAtc", "SELECT count(*) FROM ps_endpoints WHERE id = '1003'"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    drop(front);
}
