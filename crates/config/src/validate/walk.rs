//! Small helpers for walking raw JSON: a problem collector that knows the
//! severity it reports at, JSON path building, and typed field readers that
//! say what was expected and what was found.
//!
//! Secret fields are read with [`Cx::secret`], which never prints the value it
//! found, only its kind.

use crate::validate::{Problem, Severity};
use serde_json::{Map, Value};

/// Collects problems at one severity.
pub(crate) struct Cx {
    pub(crate) problems: Vec<Problem>,
    severity: Severity,
}

impl Cx {
    /// A collector whose problems have this severity.
    pub(crate) fn new(severity: Severity) -> Self {
        Cx { problems: Vec::new(), severity }
    }

    /// Reports a problem at `path`.
    pub(crate) fn report(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_string(), message: message.into(), severity: self.severity });
    }

    /// The number of problems so far (to tell whether a sub-walk found any).
    pub(crate) fn count(&self) -> usize {
        self.problems.len()
    }

    /// `v` as an object, or a problem.
    pub(crate) fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.report(path, format!("expected an object, found {}", found(other)));
                None
            }
        }
    }

    /// `v` as a list, or a problem.
    pub(crate) fn list<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.report(path, format!("expected a list, found {}", found(other)));
                None
            }
        }
    }

    /// Reports every key of `m` not in `allowed`, and every key of `required` missing.
    pub(crate) fn keys(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&str], required: &[&str]) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                self.report(&join(path, k), format!("expected one of the keys {}, found unknown key {:?}", allowed.join(", "), k));
            }
        }
        for r in required {
            if !m.contains_key(*r) {
                self.report(&join(path, r), format!("expected the required key {r:?}, found it missing"));
            }
        }
    }

    /// An optional string field. `null` is not taken for absent: leave the key out instead.
    pub(crate) fn str<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Option<&'a str> {
        match m.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.report(&join(path, key), format!("expected a string, found {}", found(other)));
                None
            }
        }
    }

    /// An optional string field that must not be empty.
    pub(crate) fn nonempty_str<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Option<&'a str> {
        let s = self.str(m, path, key)?;
        if s.trim().is_empty() {
            self.report(&join(path, key), "expected a non-empty string, found an empty one");
            return None;
        }
        Some(s)
    }

    /// An optional secret string field: type problems never show the value.
    pub(crate) fn secret(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> bool {
        match m.get(key) {
            None => false,
            Some(Value::String(_)) => true,
            Some(other) => {
                self.report(&join(path, key), format!("expected a string (a secret), found {}", kind(other)));
                false
            }
        }
    }

    /// An optional boolean field.
    pub(crate) fn bool(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
        match m.get(key) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.report(&join(path, key), format!("expected true or false, found {}", found(other)));
                None
            }
        }
    }

    /// An optional integer field in `lo..=hi`.
    pub(crate) fn int(&mut self, m: &Map<String, Value>, path: &str, key: &str, lo: i64, hi: i64) -> Option<i64> {
        self.int_value(m.get(key)?, &join(path, key), lo, hi)
    }

    /// `v` as an integer in `lo..=hi`, or a problem.
    pub(crate) fn int_value(&mut self, v: &Value, path: &str, lo: i64, hi: i64) -> Option<i64> {
        let n = v.as_i64().filter(|n| (lo..=hi).contains(n));
        if n.is_none() {
            let range = if hi == i64::MAX { format!("an integer of at least {lo}") } else { format!("an integer from {lo} to {hi}") };
            self.report(path, format!("expected {range}, found {}", found(v)));
        }
        n
    }

    /// An optional TCP port field (1..=65535).
    pub(crate) fn port(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<u16> {
        self.int(m, path, key, 1, 65535).map(|p| p as u16)
    }

    /// An optional list of strings.
    pub(crate) fn strings<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Vec<(String, &'a str)> {
        let mut out = Vec::new();
        let Some(v) = m.get(key) else { return out };
        let p = join(path, key);
        let Some(items) = self.list(v, &p) else { return out };
        for (i, item) in items.iter().enumerate() {
            let ip = index(&p, i);
            match item {
                Value::String(s) => out.push((ip, s.as_str())),
                other => self.report(&ip, format!("expected a string, found {}", found(other))),
            }
        }
        out
    }

    /// An optional string field that must be one of `choices`.
    pub(crate) fn choice(&mut self, m: &Map<String, Value>, path: &str, key: &str, choices: &[&str]) -> Option<String> {
        let s = self.str(m, path, key)?;
        if choices.contains(&s) {
            Some(s.to_string())
        } else {
            let expected: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
            self.report(&join(path, key), format!("expected {}, found {}", expected.join(" or "), quote(s)));
            None
        }
    }
}

/// `path.key` (or `key` at the root).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() || path == "$" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// What a value is, shown with its content for scalars (strings quoted and shortened).
pub(crate) fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// What a value is, without its content (for secrets).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string in quotes, shortened to 60 characters.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().count() > 60 {
        let short: String = s.chars().take(57).collect();
        format!("{:?}", format!("{short}..."))
    } else {
        format!("{s:?}")
    }
}
