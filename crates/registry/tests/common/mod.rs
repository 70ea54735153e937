//! Shared helpers for the mware-config tests: a small valid site to mutate,
//! and assertions on the problems the validator reports.
#![allow(dead_code)]

use mware_config::{Problem, Severity, Validated};
use mware_registry::validate;
use serde_json::{json, Value};

/// A valid site: one server with two interfaces and one instance serving the whole tree.
pub fn base() -> Value {
    json!({
        "site": "test",
        "servers": [
            {"name": "srv1", "ifaces": {"eth0": "127.0.0.1", "eth1": "::1"},
             "roles": [
                {"name": "mware1", "roletype": "mware", "iface": "eth0", "group": 1, "order": 10}
             ]}
        ]
    })
}

/// A role object with the given name, group, order and domains (iface eth0).
pub fn role(name: &str, group: u32, order: i64, domains: &[&str]) -> Value {
    json!({"name": name, "roletype": "mware", "iface": "eth0", "group": group, "order": order,
           "include_domains": domains})
}

/// Sets the value at a JSON pointer (the parent must exist).
pub fn set(v: &mut Value, pointer: &str, x: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let p = v.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match p {
        Value::Object(m) => {
            m.insert(key.to_string(), x);
        }
        Value::Array(a) => {
            let i: usize = key.parse().expect("index");
            if i == a.len() {
                a.push(x)
            } else {
                a[i] = x
            }
        }
        _ => panic!("{parent} is not a container"),
    }
}

/// Removes the key at a JSON pointer.
pub fn remove(v: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    v.pointer_mut(parent).and_then(Value::as_object_mut).expect("object").remove(key);
}

/// Validates and expects success with no errors.
pub fn ok(v: &Value) -> Validated {
    match validate(&v.to_string()) {
        Ok(val) => val,
        Err(p) => panic!("expected the site to validate, got:\n{}", show(&p)),
    }
}

/// Validates and expects failure; returns the errors only.
pub fn errors(v: &Value) -> Vec<Problem> {
    errors_text(&v.to_string())
}

/// Like [`errors`], for raw text.
pub fn errors_text(text: &str) -> Vec<Problem> {
    match validate(text) {
        Ok(_) => panic!("expected the site to be refused, it validated"),
        Err(p) => p.into_iter().filter(|p| p.severity == Severity::Error).collect(),
    }
}

/// Problems as lines.
pub fn show(p: &[Problem]) -> String {
    p.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// Asserts exactly one error, at `path`, whose message contains `fragment`.
pub fn only(v: &Value, path: &str, fragment: &str) {
    let e = errors(v);
    assert_eq!(e.len(), 1, "expected one error at {path}, got:\n{}", show(&e));
    has(&e, path, fragment);
}

/// Asserts some problem is at `path` with a message containing `fragment`.
pub fn has(p: &[Problem], path: &str, fragment: &str) {
    assert!(
        p.iter().any(|q| q.path == path && q.message.contains(fragment)),
        "expected a problem at {path} containing {fragment:?}, got:\n{}",
        show(p)
    );
}
