//! The raw-JSON walk is complete: whatever single value of the full example
//! is replaced by whatever odd value, the validator either accepts a site the
//! model parses or reports the problem itself; it never falls through to the
//! model's own error (the "checks missed" safety net) and never panics.

use mware_registry::validate;
use proptest::prelude::*;
use serde_json::{json, Value};

fn site() -> Value {
    let path = format!("{}/../../examples/site.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("examples/site.json")).expect("json")
}

/// Every JSON pointer in `v` (including the root's children, not the root).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

fn odd_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(70000),
        json!(1.5),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!(["a"]),
        json!({"k": 1}),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
    #[test]
    fn no_problem_slips_past_the_walk(which in any::<prop::sample::Index>(), odd in prop::sample::select(odd_values()), extra_key in any::<bool>()) {
        let base = site();
        let mut ptrs = Vec::new();
        pointers(&base, String::new(), &mut ptrs);
        let ptr = which.get(&ptrs).clone();
        let mut v = base;
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        match v.pointer_mut(parent).unwrap() {
            Value::Object(m) if extra_key => { m.insert(format!("{key}_x"), odd); }
            Value::Object(m) => { m.insert(key.to_string(), odd); }
            Value::Array(a) => { a[key.parse::<usize>().unwrap()] = odd; }
            _ => unreachable!(),
        }
        if let Err(problems) = validate(&v.to_string()) {
            for p in &problems {
                prop_assert!(!p.message.contains("checks missed"), "at {}: {}", ptr, p);
            }
        }
    }
}
