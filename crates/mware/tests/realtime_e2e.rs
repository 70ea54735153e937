//! End-to-end: Asterisk's realtime requests, as the seed configures them
//! (`entityid=12:34:56:78:9a:bc`, `ps_endpoints => curl,http://HOST:PORT/provision/asterisk/${ENTITYID}/endpoint`,
//! with the entity's credential in the URL), through `mware rtcache` to a real `mware run`
//! site: the request enters at an instance of another group and is forwarded to the
//! active instance of the group whose provisioning section lists the entity, which answers
//! from a real PostgreSQL the rows of the entity's tenant. An unknown entity, a wrong
//! credential and a write by a read-only entity are refused. Then the provisioning
//! instance is killed -9: the sidecar keeps serving what it fetched (single and multi),
//! and writes answer `-1`. No password shows in any log, status or metrics.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const DB_PWD_MARK: &str = "rt-e2e";
/// The seed's entity id.
const EID: &str = "12:34:56:78:9a:bc";
const USER: &str = "ast1";
const PASS: &str = "e2e-Entity-Pw-7";
/// The password of an upstream URL's userinfo given to the sidecar.
const UPSTREAM_PASS: &str = "e2e-Upstream-Pw-9";

fn psql(db: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// POSTs as libcurl does for res_config_curl: userinfo in the URL becomes HTTP Basic.
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
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
            ])
            .output();
    }
}

#[test]
fn the_seeds_asterisk_lines_get_their_tenants_rows_through_rtcache_and_survive_the_outage() {
    let db = format!("rte2e_{}", std::process::id());
    psql("postgres", &format!("CREATE DATABASE {db}"));
    let _guard = DropDb(db.clone());
    psql(
        &db,
        "CREATE TABLE ps_endpoints (id varchar(40) NOT NULL, domain varchar(80) NOT NULL, transport varchar(40), aors varchar(200), \
         auth varchar(40), context varchar(40), PRIMARY KEY (domain, id));
         CREATE TABLE ps_auths (id varchar(40) NOT NULL, domain varchar(80) NOT NULL, auth_type varchar(40), password varchar(80), \
         username varchar(40), PRIMARY KEY (domain, id));
         CREATE TABLE ps_aors (id varchar(40) PRIMARY KEY, max_contacts integer);
         INSERT INTO ps_endpoints VALUES ('1001', 'tenant1.example.ru', 'transport-udp', '1001', '1001', 'from internal'),
                                         ('1002', 'tenant1.example.ru', 'transport-udp', '1002', '1002', 'internal'),
                                         ('1001', 'other.example.ru', 'transport-udp', '2001', '2001', 'other tenant'),
                                         ('2001', 'other.example.ru', 'transport-udp', '2001', '2001', 'internal');
         INSERT INTO ps_auths VALUES ('1001', 'tenant1.example.ru', 'userpass', 'Secr3t', '1001'),
                                     ('1001', 'other.example.ru', 'userpass', 'NotYours', '1001');
         INSERT INTO ps_aors VALUES ('1001', 1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb, pc) = (mware_testkit::free_port(), mware_testkit::free_port(), mware_testkit::free_port());
    let site = json!({
        "site": "rt", "coordination": {"backend": "embedded", "path": dir.path().join("coord.sqlite").to_str().unwrap()},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
            {"name": "front", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": pa},
            {"name": "prov", "roletype": "mware", "iface": "lo", "group": 2, "order": 10, "api_port": pb,
             "include_domains": ["tenant1.example.ru"],
             "provisioning": {
                 "dsn": format!("host=127.0.0.1 port=5432 user=postgres dbname={db} application_name={DB_PWD_MARK}"),
                 "shared_families": ["aor"],
                 "entities": {EID: {"domains": ["tenant1.example.ru"], "user": USER, "password": PASS, "write": false}}
             }}
        ]}]
    });
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let front = Daemon::start(&cfg, "front", &format!("127.0.0.1:{pa}"), dir.path().join("front.log"), &[]);
    let mut prov = Daemon::start(&cfg, "prov", &format!("127.0.0.1:{pb}"), dir.path().join("prov.log"), &[]);
    front.wait_status(Duration::from_secs(30), |v| v["state"] == "active");
    prov.wait_status(Duration::from_secs(30), |v| {
        v["state"] == "active"
            && v["services"].as_array().map(|s| s.iter().any(|s| s["name"] == "provisioning" && s["state"] == "running")).unwrap_or(false)
    });

    // The sidecar in front of the site's first instance (which forwards to group 2); a
    // second upstream, down, carries its own userinfo, which must show nowhere.
    let dead = format!("http://{USER}:{UPSTREAM_PASS}@127.0.0.1:{}", mware_testkit::free_port());
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["rtcache", "--listen", &format!("127.0.0.1:{pc}"), "--upstream", &front.api, "--upstream", &dead])
        .args(["--object-lifetime-maximum", "120", "--object-lifetime-stale", "1", "--cache-dir"])
        .arg(dir.path().join("cache"));
    let _side = mware_testkit::Child::spawn("rtcache", cmd, &dir.path().join("rtcache.log")).unwrap();
    mware_testkit::wait_for_port(&format!("127.0.0.1:{pc}"), Duration::from_secs(20)).unwrap();
    // extconfig.conf, byte for byte but for host and port (the sidecar's), with the credential:
    //   ps_endpoints => curl,http://USER:PASS@127.0.0.1:PORT/provision/asterisk/${ENTITYID}/endpoint
    let family = |f: &str| format!("http://{USER}:{PASS}@127.0.0.1:{pc}/provision/asterisk/{EID}/{f}");
    let base = family("endpoint");

    let (c, single) = post(&format!("{base}/single"), "id=1001");
    assert_eq!(c, 200, "{single}");
    assert_eq!(single, "id=1001&transport=transport-udp&aors=1001&auth=1001&context=from%20internal\n", "the entity's tenant's row");
    let (c, multi) = post(&format!("{base}/multi"), "id%20LIKE=%25");
    assert_eq!(c, 200);
    assert_eq!(multi.lines().count(), 2, "{multi}");
    assert!(!multi.contains("2001") && !multi.contains("other"), "tenant isolation: {multi}");
    assert_eq!(
        post(&format!("{}/single", family("auth")), "id=1001"),
        (200, "id=1001&auth_type=userpass&password=Secr3t&username=1001\n".into())
    );
    assert_eq!(post(&format!("{}/single", family("aor")), "id=1001"), (200, "id=1001&max_contacts=1\n".into()));
    let (c, missing) = post(&format!("{base}/single"), "id=9999");
    assert_eq!((c, missing.as_str()), (200, ""), "not found is an empty body");
    // Served by the owning group's active instance (prov), reached through front.
    let prov_metrics = get_text(&format!("{}/metrics", prov.api)).unwrap();
    assert!(prov_metrics.contains(r#"mware_provisioning_requests_total{family="endpoint",op="single",outcome="ok"} 1"#), "{prov_metrics}");

    // Refusals, through the sidecar and straight at the site (any instance).
    let side = format!("http://127.0.0.1:{pc}/provision/asterisk");
    for (what, url, body, expect) in [
        (
            "unknown entity",
            format!("http://{USER}:{PASS}@127.0.0.1:{pc}/provision/asterisk/aa:bb:cc:dd:ee:ff/endpoint/single"),
            "id=1001",
            (404, ""),
        ),
        ("unknown entity at the site", format!("{}/provision/asterisk/aa:bb:cc:dd:ee:ff/endpoint/single", front.api), "id=1001", (404, "")),
        (
            "a domain where the entity id belongs",
            format!("{}/provision/asterisk/tenant1.example.ru/endpoint/single", front.api),
            "id=1001",
            (404, ""),
        ),
        ("no credential", format!("{side}/{EID}/endpoint/single"), "id=1001", (401, "")),
        ("wrong credential", format!("http://{USER}:wrong@127.0.0.1:{pc}/provision/asterisk/{EID}/endpoint/single"), "id=1001", (401, "")),
        (
            "wrong credential at the site",
            format!("{}/provision/asterisk/{EID}/endpoint/single", front.api.replacen("http://", &format!("http://{USER}:wrong@"), 1)),
            "id=1001",
            (401, ""),
        ),
        ("a write by a read-only entity", format!("{base}/store"), "id=1003&transport=transport-udp", (403, "-1")),
        ("destroy by a read-only entity", format!("{base}/destroy"), "id=1001", (403, "-1")),
    ] {
        let (c, b) = post(&url, body);
        assert_eq!((c, b.as_str()), expect, "{what}");
    }

    // The source goes down hard.
    prov.child.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        let (c, s) = post(&format!("{base}/single"), "id=1001");
        assert_eq!((c, s.as_str()), (200, single.as_str()), "cached single must keep resolving");
        let (c, m) = post(&format!("{base}/multi"), "id%20LIKE=%25");
        assert_eq!((c, m.as_str()), (200, multi.as_str()), "cached multi must keep resolving");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (c, s) = post(&format!("{side}/{EID}/endpoint/single"), "id=1001");
    assert_ne!((c, s.as_str()), (200, single.as_str()), "never served to a caller without the credential");
    let (c, w) = post(&format!("{base}/store"), "id=1003&transport=transport-udp");
    assert_eq!(w.trim(), "-1", "a write during the outage answers -1 (status {c})");
    // Nothing was written.
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db, "-qAtc", "SELECT count(*) FROM ps_endpoints WHERE id = '1003'"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    // No password anywhere an operator looks.
    let status = get_text(&format!("http://127.0.0.1:{pc}/status")).unwrap();
    let metrics = get_text(&format!("http://127.0.0.1:{pc}/metrics")).unwrap();
    let front_status = get_text(&format!("{}/api/v1/status", front.api)).unwrap_or_default();
    let logs = ["front.log", "prov.log", "rtcache.log"].map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default());
    for (what, text) in [
        ("rtcache /status", &status),
        ("rtcache /metrics", &metrics),
        ("front status", &front_status),
        ("front.log", &logs[0]),
        ("prov.log", &logs[1]),
        ("rtcache.log", &logs[2]),
    ] {
        for secret in [PASS, UPSTREAM_PASS] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
    assert!(logs[2].contains("127.0.0.1"), "the sidecar logged its upstreams (without userinfo): {}", logs[2]);
    drop(front);
}
