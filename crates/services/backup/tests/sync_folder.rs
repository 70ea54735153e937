//! The `:SYNC` folder copy against a real sshd as the storage server: `rsync` mode with
//! the real rsync (password through the askpass helper, host key checked against the
//! site's known_hosts) and `zip` mode; `excluded_paths` are missing from both copies,
//! and the zip mode leaves out exactly what rsync leaves out (same patterns, same tree).
//! A second rsync run replaces the copy; a refused host key stops rsync.

mod common;

use common::*;
use mware_backup::store;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const EXCLUDED: &[&str] = &["**/common/temp/*", "*.tmp", "cache/", "/top-only.txt", "f[0-9].log"];

fn make_tree(root: &Path) {
    for f in [
        "a/common/temp/x.wav",
        "a/common/temp/sub/y.wav",
        "a/common/keep.txt",
        "b/c/common/temp/z.wav",
        "common/temp/top.wav",
        "d/scratch.tmp",
        "d/keep.tmp.txt",
        "e/cache/big.bin",
        "e/cache.txt",
        "top-only.txt",
        "f/top-only.txt",
        "g/f1.log",
        "g/fx.log",
        "music/hold.wav",
    ] {
        let p = root.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("content of {f}\n").repeat(100)).unwrap();
    }
}

/// What the real rsync copies of `src` with `EXCLUDED`, locally.
fn rsync_local(src: &Path) -> Vec<String> {
    let dst = tempfile::tempdir().unwrap();
    let mut c = Command::new("rsync");
    c.arg("-a");
    for p in EXCLUDED {
        c.arg(format!("--exclude={p}"));
    }
    let st = c.arg(format!("{}/", src.display())).arg(format!("{}/", dst.path().display())).status().unwrap();
    assert!(st.success());
    tree(dst.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_paths_are_missing_from_the_rsync_and_the_zip_copies() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let st_sshd = pinned_sshd(dir.path());
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let expected = rsync_local(src.path());
    for gone in ["a/common/temp/x.wav", "b/c/common/temp/z.wav", "d/scratch.tmp", "e/cache/big.bin", "top-only.txt", "g/f1.log"] {
        assert!(!expected.contains(&gone.to_string()), "rsync keeps {gone}: {expected:?}");
    }
    for kept in ["a/common/keep.txt", "d/keep.tmp.txt", "e/cache.txt", "f/top-only.txt", "g/fx.log", "music/hold.wav"] {
        assert!(expected.contains(&kept.to_string()), "rsync drops {kept}");
    }
    let storage = postgres_dir("mware-storage-");
    for mode in ["rsync", "zip"] {
        let sync = json!({"path": src.path().display().to_string(), "send_mode": mode, "excluded_paths": EXCLUDED});
        let site = site(dir.path(), backup_json(&st_sshd, &storage.path().join(mode).display().to_string(), vec![], Some(sync)));
        let active = Active::join(dir.path()).await;
        for round in 0..2 {
            if round == 1 {
                std::fs::write(src.path().join("music/new.wav"), "new").unwrap();
            }
            let report = active.runner(&site).run(&plan_of(&site), None, None).await.unwrap();
            assert_eq!(report.record.result.as_deref(), Some("ok"), "{mode}: {:?}", report.record);
        }
        let state = store::load(&*active.coord, GROUP).await.unwrap();
        active.leave().await;
        let mut want = expected.clone();
        want.push("music/new.wav".into());
        want.sort();
        let got = match mode {
            "rsync" => tree(&storage.path().join("rsync/sync")),
            _ => {
                let out = tempfile::tempdir().unwrap();
                let st =
                    Command::new("unzip").arg("-q").arg(storage.path().join("zip/sync.zip")).arg("-d").arg(out.path()).status().unwrap();
                assert!(st.success());
                tree(out.path())
            }
        };
        assert_eq!(got, want, "{mode}: the copy differs from what rsync would copy");
        let all = tree(storage.path());
        assert!(all.iter().all(|f| !f.contains("mware-tmp") && !f.contains("mware-old")), "{mode}: leftovers {all:?}");
        assert!(state.targets["sync"].last_success.as_ref().unwrap().bytes > 0);
        if mode == "zip" {
            // `mware backup restore --target sync` gives the same folder, contents equal.
            let plan = plan_of(&site);
            let keys = mware_ssh::HostKeyPolicy::from(&site.ssh);
            let root = tempfile::tempdir().unwrap();
            let to = root.path().join("sync");
            let archive = storage.path().join("zip/sync.zip").display().to_string();
            let r = mware_backup::restore(&plan.targets[0], &keys, &archive, &to, |_, _| {}).await.unwrap();
            assert!(r.checked && r.removed.is_empty(), "{r:?}");
            assert_eq!(tree(&to), want);
            assert_eq!(std::fs::read(to.join("music/hold.wav")).unwrap(), std::fs::read(src.path().join("music/hold.wav")).unwrap());
        }
    }
    assert_no_secret("the log", &log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_refuses_a_storage_server_whose_key_is_not_the_pinned_one() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let st_sshd = mware_testkit::sshd::Sshd::start().unwrap();
    // Pin another key for the storage server.
    let (other, _) = mware_testkit::sshd::throwaway_host_key().unwrap();
    mware_testkit::sshd::append_line(&known_hosts(dir.path()), &format!("[127.0.0.1]:{} {other}", st_sshd.port)).unwrap();
    let src = tempfile::tempdir().unwrap();
    make_tree(src.path());
    let storage = postgres_dir("mware-storage-");
    let sync = json!({"path": src.path().display().to_string(), "send_mode": "rsync"});
    let site = site(dir.path(), backup_json(&st_sshd, &storage.path().display().to_string(), vec![], Some(sync)));
    // rsync alone, so the check is OpenSSH's (the runner's own session would refuse first).
    let plan = plan_of(&site);
    let mware_backup::config::What::Sync(s) = &plan.targets[0].what else { panic!() };
    let keys = mware_ssh::HostKeyPolicy::from(&site.ssh);
    let e = mware_backup::rsync(s, &plan.targets[0].storage, &keys, &storage.path().display().to_string(), "x").await.unwrap_err();
    assert!(e.to_string().contains("Host key verification failed"), "{e}");
    assert!(tree(storage.path()).is_empty());
}
