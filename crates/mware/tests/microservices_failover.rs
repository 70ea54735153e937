//! End-to-end: the microservices of three real `mware run` processes of one group on a
//! real etcd. An `active` process (with a child of its own) runs on the active instance
//! only, an `every` process on each member. The site's log is read across the
//! group from any member (`instance=` filters, a bad name is refused). After kill -9 of
//! the active instance: none of its processes survives, nor their children (`sleep`);
//! the next active instance starts
//! the `active` process (its pid in the API and in /proc, marked as that instance's);
//! the `every` processes of the survivors keep their pids; the dead member is named in
//! the log query's answer; `mware logs -f`, started against the killed instance, goes on
//! to print the new instance's lines. Started again, the killed instance runs only its
//! `every` process.

mod common;

use common::{bin, free_addr, Daemon};
use mware_testkit::etcd::Etcd;
use mware_testkit::Child;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NAMES: [&str; 3] = ["m10", "m20", "m30"];

fn alive(pid: u64) -> bool {
    // A zombie is not alive: its /proc/PID/stat says state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
}

/// The parent of a process.
fn ppid(pid: u64) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

/// Every live process in /proc whose environment marks it as supervised by `owner`.
fn owned_by(owner: &Path) -> Vec<u64> {
    let mark = format!("MWARE_MS_OWNER={}", owner.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|pid| {
            alive(*pid)
                && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == mark.as_bytes()))
        })
        .collect()
}

/// Waits for `f`; on a timeout panics with the daemons' logs (`logs`: their files).
fn wait<T>(what: &str, secs: u64, logs: &[PathBuf], mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let l: Vec<String> = logs.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect();
            panic!("timed out waiting for {what}:\n{}", l.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The processes an instance supervises: name → (state, pid).
fn procs(d: &Daemon) -> Option<Vec<(String, String, Option<u64>)>> {
    let (code, v) = d.get("/api/v1/microservices")?;
    (code == 200).then_some(())?;
    Some(
        v["processes"]
            .as_array()?
            .iter()
            .map(|p| (p["name"].as_str().unwrap_or("").to_string(), p["state"].as_str().unwrap_or("").to_string(), p["pid"].as_u64()))
            .collect(),
    )
}

fn running_pid(d: &Daemon, name: &str) -> Option<u64> {
    procs(d)?.into_iter().find(|(n, s, _)| n == name && s == "running")?.2
}

fn active_with_ms(v: &Value) -> bool {
    v["state"] == "active"
        && v["services"].as_array().is_some_and(|s| s.iter().any(|x| x["name"] == "microservices" && x["state"] == "running"))
}

struct Group {
    ds: Vec<Daemon>,
    dir: tempfile::TempDir,
    cfg: PathBuf,
    addrs: Vec<String>,
    _etcd: Etcd,
}

impl Group {
    fn start(&self, i: usize) -> Daemon {
        let logs = self.dir.path().join("logs");
        Daemon::start(
            &self.cfg,
            NAMES[i],
            &self.addrs[i],
            self.dir.path().join(format!("{}.log", NAMES[i])),
            &[("MS_TOKEN", "t"), ("MWARE_LOG_DIR", logs.to_str().unwrap())],
        )
    }
    /// The mark of instance `i`'s supervised processes (its site log's folder).
    fn owner(&self, i: usize) -> PathBuf {
        std::fs::canonicalize(self.dir.path().join("logs/microservices").join(NAMES[i])).unwrap()
    }
}

fn group() -> Group {
    let etcd = Etcd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ms = json!({"processes": [
        {"name": "act", "run_on": "active", "stop_grace_s": 1,
         "argv": ["/bin/sh", "-c", "sleep 300 & while true; do echo act tick; sleep 0.1; done"]},
        {"name": "all", "run_on": "every", "argv": ["/bin/sh", "-c", "while true; do echo all tick; sleep 0.2; done"]}
    ]});
    let ports: Vec<(u16, String)> = (0..3).map(|_| free_addr()).collect();
    let roles: Vec<Value> = (0..3)
        .map(|i| json!({"name": NAMES[i], "roletype": "mware", "iface": "lo", "group": 1, "order": (i + 1) * 10, "api_port": ports[i].0, "microservices": ms}))
        .collect();
    let site = json!({"site": "msf",
        "coordination": {"backend": "etcd", "endpoints": [etcd.endpoint()], "lease_ttl_ms": 2000, "step_down_margin_ms": 700},
        "api": {"token_env": "MS_TOKEN"},
        "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": roles}]});
    let cfg = dir.path().join("site.json");
    std::fs::write(&cfg, site.to_string()).unwrap();
    let mut g = Group { ds: vec![], dir, cfg, addrs: ports.into_iter().map(|p| p.1).collect(), _etcd: etcd };
    let d0 = g.start(0);
    d0.wait_status(Duration::from_secs(30), active_with_ms);
    g.ds.push(d0);
    for i in 1..3 {
        let d = g.start(i);
        d.wait_status(Duration::from_secs(20), |v| v["state"] == "passive");
        g.ds.push(d);
    }
    g
}

fn logs_json(d: &Daemon, query: &str) -> (u16, Value) {
    d.get(&format!("/api/v1/logs?format=json&{query}")).expect("the log query answers")
}

fn has_line(v: &Value, instance: &str, process: &str) -> bool {
    v["lines"].as_array().is_some_and(|ls| ls.iter().any(|l| l["instance"] == instance && l["process"] == process))
}

/// The log across the group, asked of a passive member: every member's lines merged by
/// time, `instance=` filtering, an unknown member refused with the list.
fn group_log_through_a_passive_member(g: &Group, all: &[PathBuf]) {
    let (code, v) = wait("lines of all three members through m30", 20, all, || {
        let (c, v) = logs_json(&g.ds[2], "limit=2000");
        (NAMES.iter().all(|n| has_line(&v, n, "all")) && has_line(&v, "m10", "act")).then_some((c, v))
    });
    assert_eq!(code, 200);
    assert_eq!(v["missing"], json!([]), "{}", v["missing"]);
    assert_eq!(v["members"].as_array().map(Vec::len), Some(3), "{}", v["members"]);
    let ts: Vec<u64> = v["lines"].as_array().unwrap().iter().map(|l| l["ts_ms"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "merged by time");
    let (_, only) = logs_json(&g.ds[2], "instance=m20&limit=200");
    let ls = only["lines"].as_array().unwrap();
    assert!(!ls.is_empty() && ls.iter().all(|l| l["instance"] == "m20"), "{only}");
    let (code, e) = logs_json(&g.ds[2], "instance=m99");
    assert_eq!((code, e["field"].as_str()), (400, Some("instance")), "{e}");
    assert!(e["error"].as_str().unwrap().contains("m10, m20, m30"), "{e}");
}

#[test]
fn the_next_active_instance_takes_over_the_active_processes_and_logs_follow() {
    let mut g = group();
    let all: Vec<PathBuf> = g.ds.iter().map(|d| d.log.clone()).collect();
    let act10 = wait("act on m10", 20, &all, || running_pid(&g.ds[0], "act"));
    let every: Vec<u64> = (0..3).map(|i| wait("all on each member", 20, &all, || running_pid(&g.ds[i], "all"))).collect();
    for (d, name) in g.ds.iter().zip(NAMES).skip(1) {
        let ps = procs(d).unwrap();
        assert!(ps.iter().all(|(n, _, _)| n != "act"), "{name}: an active-only process runs on a passive member: {ps:?}");
    }
    let owned10 = wait("m10's act, its sleep and all in /proc", 10, &all, || {
        let o = g.owner(0);
        let pids = owned_by(&o);
        (pids.len() >= 3).then_some(pids)
    });
    assert!(owned10.contains(&act10) && owned10.contains(&every[0]), "{owned10:?}");

    group_log_through_a_passive_member(&g, &all);

    // `mware logs -f` against m10, which is about to die.
    let follow_log = g.dir.path().join("follow.out");
    let mut cmd = Command::new(bin());
    cmd.args(["logs", "-f", "--process", "act", "--limit", "5", "--api", &g.ds[0].api]);
    let _follower = Child::spawn("logs-f", cmd, &follow_log).unwrap();
    let read = || std::fs::read_to_string(&follow_log).unwrap_or_default();
    wait("the follower prints m10's lines", 15, &all, || read().contains("m10/act stdout: act tick").then_some(()));

    let killed = Instant::now();
    g.ds[0].child.kill9();
    wait("no process of m10 left (act, its sleep, all)", 5, &all, || {
        (!alive(act10) && !alive(every[0]) && owned_by(&g.owner(0)).is_empty()).then_some(())
    });
    eprintln!("m10's processes and their children gone {:?} after the kill", killed.elapsed());

    let survivors: Vec<PathBuf> = g.ds[1..].iter().map(|d| d.log.clone()).collect();
    g.ds[1].wait_status(Duration::from_secs(20), active_with_ms);
    let act20 = wait("act on m20", 20, &survivors, || running_pid(&g.ds[1], "act"));
    eprintln!("act runs on m20 (pid {act20}) {:?} after the kill", killed.elapsed());
    assert!(alive(act20) && owned_by(&g.owner(1)).contains(&act20), "act's pid {act20} is m20's, in /proc");
    assert!(procs(&g.ds[2]).unwrap().iter().all(|(n, _, _)| n != "act"), "m30 stays passive without act");
    for ((d, name), pid) in g.ds.iter().zip(NAMES).zip(&every).skip(1) {
        assert_eq!(running_pid(d, "all"), Some(*pid), "{name}'s every process kept running");
        assert!(alive(*pid));
    }

    // The dead member is named, the others answer.
    let v = wait("m20's act lines through m30", 15, &survivors, || {
        let (_, v) = logs_json(&g.ds[2], "process=act&limit=2000");
        has_line(&v, "m20", "act").then_some(v)
    });
    let missing = v["missing"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{v}");
    assert_eq!(missing[0]["instance"], "m10");
    assert!(missing[0]["error"].as_str().unwrap().contains("cannot connect"), "{}", missing[0]);
    wait("the follower prints m20's lines", 20, &survivors, || read().contains("m20/act stdout: act tick").then_some(()));
    let out = read();
    assert!(out.contains("(now reading through http://"), "{out}");

    // Started again, m10 runs its `every` process and nothing else.
    let d = g.start(0);
    d.wait_status(Duration::from_secs(20), |v| v["state"] == "passive");
    g.ds[0] = d;
    let mine = wait("m10's `all` again", 20, &all[..1], || running_pid(&g.ds[0], "all"));
    let now: Vec<u64> = owned_by(&g.owner(0));
    assert!(now.contains(&mine), "{now:?}");
    for pid in now {
        assert!(pid == mine || ppid(pid) == Some(mine), "m10 runs only its new `all` (and that loop's sleep): {pid} is neither");
    }
}
