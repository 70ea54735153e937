//! Small helpers for walking raw JSON: a problem collector that knows the
//! severity it reports at, JSON path building, and typed field readers that
//! say what was expected and what was found.
//!
//! Secret fields are read with [`Check::secret`], which never prints the value it
//! found, only its kind.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Collects the problems of a walk, each with its path.
pub struct Check {
    pub(crate) problems: Vec<Problem>,
    severity: Severity,
}

impl Check {
    /// A collector whose problems have this severity.
    pub fn new(severity: Severity) -> Self {
        Check { problems: Vec::new(), severity }
    }

    /// Everything reported so far, errors and warnings.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Everything reported, taken out.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Reports a problem at `path`.
    pub fn report(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_string(), message: message.into(), severity: self.severity });
    }

    /// Reports a warning at `path`: shown, but the file is still accepted.
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_string(), message: message.into(), severity: Severity::Warning });
    }

    /// The number of problems so far at this collector's own severity (to tell whether a
    /// sub-walk found any; warnings of an error collector do not count).
    pub fn count(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == self.severity).count()
    }

    /// `v` as an object, or a problem.
    pub fn object<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.report(path, format!("expected an object, found {}", found(other)));
                None
            }
        }
    }

    /// `v` as a list, or a problem.
    pub fn list<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.report(path, format!("expected a list, found {}", found(other)));
                None
            }
        }
    }

    /// Reports every key of `m` not in `allowed`, and every key of `required` missing.
    pub fn keys(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&str], required: &[&str]) {
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
    pub fn str<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Option<&'a str> {
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
    pub fn nonempty_str<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Option<&'a str> {
        let s = self.str(m, path, key)?;
        if s.trim().is_empty() {
            self.report(&join(path, key), "expected a non-empty string, found an empty one");
            return None;
        }
        Some(s)
    }

    /// An optional secret string field: type problems never show the value.
    pub fn secret(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> bool {
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
    pub fn bool(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
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
    pub fn int(&mut self, m: &Map<String, Value>, path: &str, key: &str, lo: i64, hi: i64) -> Option<i64> {
        self.int_value(m.get(key)?, &join(path, key), lo, hi)
    }

    /// `v` as an integer in `lo..=hi`, or a problem.
    pub fn int_value(&mut self, v: &Value, path: &str, lo: i64, hi: i64) -> Option<i64> {
        let n = v.as_i64().filter(|n| (lo..=hi).contains(n));
        if n.is_none() {
            let range = if hi == i64::MAX { format!("an integer of at least {lo}") } else { format!("an integer from {lo} to {hi}") };
            self.report(path, format!("expected {range}, found {}", found(v)));
        }
        n
    }

    /// An optional TCP port field (1..=65535).
    pub fn port(&mut self, m: &Map<String, Value>, path: &str, key: &str) -> Option<u16> {
        self.int(m, path, key, 1, 65535).map(|p| p as u16)
    }

    /// An optional list of strings.
    pub fn strings<'a>(&mut self, m: &'a Map<String, Value>, path: &str, key: &str) -> Vec<(String, &'a str)> {
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
    pub fn choice(&mut self, m: &Map<String, Value>, path: &str, key: &str, choices: &[&str]) -> Option<String> {
        let s = self.str(m, path, key)?;
        if choices.contains(&s) {
            Some(s.to_string())
        } else {
            let expected: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
            self.report(&join(path, key), format!("expected {}, found {}", expected.join(" or "), quote(s)));
            None
        }
    }

    /// `name`: an item name, unique among `names` (name → first path).
    pub fn unique_name(&mut self, m: &Map<String, Value>, p: &str, names: &mut HashMap<String, String>, what: &str) {
        let Some(n) = self.str(m, p, "name") else {
            return;
        };
        let np = join(p, "name");
        if !crate::is_item_name(n) {
            self.report(&np, format!("expected a {what} name of 1 to 64 latin letters, digits, '_', '-' and '.', found {}", quote(n)));
        } else if let Some(first) = names.get(n) {
            self.report(&np, format!("expected a {what} name unique in the group, found {} again (first at {first})", quote(n)));
        } else {
            names.insert(n.to_string(), np);
        }
    }

    /// An argv: a non-empty list of strings, the program first and not empty, no NUL byte.
    pub fn argv(&mut self, m: &Map<String, Value>, p: &str, key: &str) {
        let Some(v) = m.get(key) else { return };
        let kp = join(p, key);
        let Some(items) = self.list(v, &kp) else { return };
        if items.is_empty() {
            self.report(
                &kp,
                "expected the program and its arguments (an argv such as [\"/usr/local/bin/job\", \"--flag\"]), found an empty list",
            );
        }
        for (i, item) in items.iter().enumerate() {
            let ip = index(&kp, i);
            match item.as_str() {
                Some(s) if s.contains('\0') => self.report(&ip, "expected a string without NUL bytes, found one with"),
                Some("") if i == 0 => self.report(&ip, "expected the program (a path or a name in PATH), found an empty string"),
                Some(_) => {}
                None => self.report(&ip, format!("expected a string, found {}", found(item))),
            }
        }
    }

    /// `env`: variable name → value (a secret: never shown).
    pub fn env(&mut self, v: &Value, p: &str) {
        let Some(m) = self.object(v, p) else { return };
        for (k, val) in m {
            let kp = join(p, k);
            let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                self.report(&kp, format!("expected an environment variable name (letters, digits, '_'), found {}", quote(k)));
            }
            match val.as_str() {
                Some(s) if s.contains('\0') => self.report(&kp, "expected a value without NUL bytes, found one with (not shown)"),
                Some(_) => {}
                None => self.report(&kp, format!("expected a string, found {}", kind(val))),
            }
        }
    }

    /// `m[key]`, checked to be an environment variable name.
    pub fn env_name(&mut self, m: &Map<String, Value>, p: &str, key: &str) -> Option<String> {
        let t = self.str(m, p, key)?.to_string();
        let ok = t.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            self.report(&join(p, key), format!("expected an environment variable name (letters, digits, '_'), found {}", quote(&t)));
            return None;
        }
        Some(t)
    }
}

/// `path.key` (or `key` at the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() || path == "$" {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// What a value is, shown with its content for scalars (strings quoted and shortened).
pub fn found(v: &Value) -> String {
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
pub fn kind(v: &Value) -> &'static str {
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
pub fn quote(s: &str) -> String {
    if s.chars().count() > 60 {
        let short: String = s.chars().take(57).collect();
        format!("{:?}", format!("{short}..."))
    } else {
        format!("{s:?}")
    }
}

/// `host:port` with a port from 1 to 65535 (`[v6]:port` for IPv6).
pub fn is_host_port(t: &str) -> bool {
    if t.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(h) = host.strip_prefix('[') {
        h.strip_suffix(']').is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty() && !host.contains(':') && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// True for a task or probe name: 1 to 64 latin letters, digits, `_`, `-` and `.` (it is
/// a metric label and a key in the coordinator).
pub fn is_item_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// Reported, but the file is accepted (e.g. `pg_controller`, which the seed leaves to run time).
    Warning,
}

/// One problem found in a site file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path, e.g. `servers[0].roles[1].group`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: {}", self.path, self.message),
            Severity::Warning => write!(f, "warning: {}: {}", self.path, self.message),
        }
    }
}
