//! The check of the `backup_controller` section: every problem, each with its path.
//!
//! Storage settings (`storage_ssh_*`) may sit at the top of `backup_controller`, inside
//! `sync_folder` or in each `pgdb` entry (the two seeds place them differently); each
//! copy needs a storage host from its own level or the top one.

use mware_config::{index, join, quote, Check};
use serde_json::{Map, Value};

const STORAGE: &[&str] = &["storage_ssh_host", "storage_ssh_port", "storage_ssh_user", "storage_ssh_pwd", "storage_ssh_path"];
const BACKUP_KEYS: &[&str] = &["hours_interval", "weekdays", "sync_folder", "pgdb", "compress_level"];
const SYNC_KEYS: &[&str] = &["path", "send_mode", "excluded_paths"];
const PGDB_KEYS: &[&str] = &[
    "key",
    "servers",
    "ssh_port",
    "ssh_user",
    "ssh_pwd",
    "pg_port",
    "pg_replica_user",
    "pg_replica_pwd",
    "pg_basebackup_command",
    "pg_config_folder",
];
const PGDB_SERVER_KEYS: &[&str] = &["ssh_host", "pg_host"];
/// The keys of a level plus the storage keys it may hold.
fn with_storage(keys: &[&'static str]) -> Vec<&'static str> {
    keys.iter().chain(STORAGE).copied().collect()
}

/// Checks the storage fields at one level; true when a storage host is set there.
fn storage(cx: &mut Check, m: &Map<String, Value>, p: &str) -> bool {
    let host = cx.nonempty_str(m, p, "storage_ssh_host").is_some();
    cx.port(m, p, "storage_ssh_port");
    cx.nonempty_str(m, p, "storage_ssh_user");
    cx.secret(m, p, "storage_ssh_pwd");
    cx.nonempty_str(m, p, "storage_ssh_path");
    host
}

fn need_storage(cx: &mut Check, here: bool, top: bool, p: &str) {
    if !here && !top {
        cx.report(&join(p, "storage_ssh_host"), "expected a storage host here or at the top of backup_controller, found none");
    }
}

/// `backup_controller`.
pub(crate) fn backup_controller(cx: &mut Check, v: &Value, p: &str) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &with_storage(BACKUP_KEYS), &[]);
    if let Some(h) = m.get("hours_interval") {
        let hp = join(p, "hours_interval");
        if let Some(list) = cx.list(h, &hp) {
            if list.len() != 2 {
                cx.report(&hp, format!("expected two hours [from, to], found a list of {}", list.len()));
            }
            for (i, x) in list.iter().enumerate() {
                cx.int_value(x, &index(&hp, i), 0, 23);
            }
        }
    }
    if let Some(w) = m.get("weekdays") {
        let wp = join(p, "weekdays");
        if let Some(list) = cx.list(w, &wp) {
            let mut seen = Vec::new();
            for (i, x) in list.iter().enumerate() {
                if let Some(d) = cx.int_value(x, &index(&wp, i), 1, 7) {
                    if seen.contains(&d) {
                        cx.report(&index(&wp, i), format!("expected each weekday once, found {d} again"));
                    }
                    seen.push(d);
                }
            }
        }
    }
    cx.int(m, p, "compress_level", 1, 9);
    let top = storage(cx, m, p);
    if let Some(s) = m.get("sync_folder").filter(|s| !s.is_null()) {
        let sp = join(p, "sync_folder");
        if let Some(sm) = cx.object(s, &sp) {
            cx.keys(sm, &sp, &with_storage(SYNC_KEYS), &[]);
            if let Some(path) = cx.nonempty_str(sm, &sp, "path") {
                if !path.starts_with('/') || path.contains('\0') {
                    cx.report(&join(&sp, "path"), format!("expected an absolute folder path, found {}", quote(path)));
                }
            }
            cx.choice(sm, &sp, "send_mode", &["rsync", "zip"]);
            cx.strings(sm, &sp, "excluded_paths");
            let here = storage(cx, sm, &sp);
            need_storage(cx, here, top, &sp);
        }
    }
    if let Some(list) = m.get("pgdb").and_then(|v| cx.list(v, &join(p, "pgdb"))) {
        let mut keys: Vec<String> = Vec::new();
        for (i, d) in list.iter().enumerate() {
            let dp = index(&join(p, "pgdb"), i);
            pgdb(cx, d, &dp, top);
            let key = match d.get("key").and_then(Value::as_str) {
                Some(k) => k.to_string(),
                None if d.get("key").is_none() => format!("db{}", i + 1),
                None => continue,
            };
            if keys.contains(&key) {
                cx.report(&join(&dp, "key"), format!("expected a key no other pgdb entry has, found {} again", quote(&key)));
            }
            keys.push(key);
        }
    }
}

/// A backup target's key: used in archive names, status and metric labels.
fn target_key(cx: &mut Check, m: &Map<String, Value>, p: &str) {
    if let Some(k) = cx.nonempty_str(m, p, "key") {
        let ok = k.len() <= 64 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok || k == "sync" {
            cx.report(&join(p, "key"), format!("expected up to 64 latin letters, digits, '_' and '-', not \"sync\", found {}", quote(k)));
        }
    }
}

fn pgdb(cx: &mut Check, v: &Value, p: &str, top: bool) {
    let Some(m) = cx.object(v, p) else { return };
    cx.keys(m, p, &with_storage(PGDB_KEYS), &["servers"]);
    target_key(cx, m, p);
    cx.nonempty_str(m, p, "pg_basebackup_command");
    if let Some(f) = cx.nonempty_str(m, p, "pg_config_folder") {
        if !f.starts_with('/') {
            cx.report(&join(p, "pg_config_folder"), format!("expected an absolute folder path, found {}", quote(f)));
        }
    }
    if let Some(list) = m.get("servers").and_then(|v| cx.list(v, &join(p, "servers"))) {
        if list.is_empty() {
            cx.report(&join(p, "servers"), "expected at least one server, found an empty list");
        }
        for (i, s) in list.iter().enumerate() {
            let sp = index(&join(p, "servers"), i);
            let Some(sm) = cx.object(s, &sp) else { continue };
            cx.keys(sm, &sp, PGDB_SERVER_KEYS, &[]);
            cx.nonempty_str(sm, &sp, "ssh_host");
            cx.nonempty_str(sm, &sp, "pg_host");
            if !sm.contains_key("ssh_host") && !sm.contains_key("pg_host") {
                cx.report(&sp, "expected ssh_host or pg_host, found neither");
            }
        }
    }
    cx.port(m, p, "ssh_port");
    cx.nonempty_str(m, p, "ssh_user");
    cx.secret(m, p, "ssh_pwd");
    cx.port(m, p, "pg_port");
    cx.nonempty_str(m, p, "pg_replica_user");
    cx.secret(m, p, "pg_replica_pwd");
    let here = storage(cx, m, p);
    need_storage(cx, here, top, p);
}
