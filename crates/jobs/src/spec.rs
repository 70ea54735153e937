//! What a job is asked to do, checked before it is accepted: its target (`host:port`) and
//! its kind's parameters. Every problem is reported with its field (`target`,
//! `params.oid`), never the first only.

use serde_json::{Map, Value};
use std::fmt;

/// One problem in a job request: the field (JSON path inside the job) and what was
/// expected and found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// JSON path of the field at fault (`params.oid`, `jobs[3].target`).
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Problems found so far, with the path prefix of the object being checked.
#[derive(Debug, Default)]
pub struct Problems {
    prefix: String,
    /// Everything found.
    pub list: Vec<Problem>,
}

impl Problems {
    /// An empty list whose fields start with `prefix` (`""`, or `jobs[3]`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Problems { prefix: prefix.into(), list: vec![] }
    }

    /// The full path of `field`.
    pub fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    /// Records a problem of `field`.
    pub fn report(&mut self, field: &str, message: impl Into<String>) {
        let field = self.path(field);
        self.list.push(Problem { field, message: message.into() });
    }

    /// A required string parameter (`params.<key>`), not empty.
    pub fn req_str<'a>(&mut self, params: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        match params.get(key) {
            None | Some(Value::Null) => {
                self.report(&format!("params.{key}"), "expected a string, found nothing (a required parameter)");
                None
            }
            Some(v) => self.str_value(v, &format!("params.{key}")),
        }
    }

    /// An optional string parameter.
    pub fn opt_str<'a>(&mut self, params: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
        match params.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => self.str_value(v, &format!("params.{key}")),
        }
    }

    fn str_value<'a>(&mut self, v: &'a Value, field: &str) -> Option<&'a str> {
        match v.as_str() {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                self.report(field, "expected a non-empty string, found \"\"");
                None
            }
            None => {
                self.report(field, format!("expected a string, found {}", found(v)));
                None
            }
        }
    }

    /// An optional integer parameter within `min..=max`.
    pub fn opt_int(&mut self, params: &Map<String, Value>, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = params.get(key).filter(|v| !v.is_null())?;
        match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.report(&format!("params.{key}"), format!("expected an integer from {min} to {max}, found {}", found(v)));
                None
            }
        }
    }

    /// Reports every parameter not in `known`.
    pub fn unknown(&mut self, params: &Map<String, Value>, known: &[&str]) {
        for k in params.keys() {
            if !known.contains(&k.as_str()) {
                self.report(&format!("params.{k}"), format!("expected one of the parameters {}, found an unknown one", known.join(", ")));
            }
        }
    }
}

/// A short description of a JSON value's type and, for scalars, its value (bounded).
pub fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() > 40 => {
            format!("a string of {} characters", s.chars().count())
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A job's target: `host:port` (an IPv6 address in brackets, `[::1]:161`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Target {
    /// Parses `host:port`; the error says what was expected and found.
    pub fn parse(s: &str) -> Result<Target, String> {
        let bad = || {
            format!(
                "expected host:port (a host name or address and a port from 1 to 65535, [v6]:port for IPv6), found {}",
                found(&Value::String(s.into()))
            )
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(bad)?
        };
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && (host.contains(':')
                || host
                    .split('.')
                    .all(|l| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')));
        if !host_ok {
            return Err(bad());
        }
        Ok(Target { host: host.to_string(), port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(Target::parse("127.0.0.1:161").unwrap(), Target { host: "127.0.0.1".into(), port: 161 });
        assert_eq!(Target::parse("[::1]:22").unwrap().to_string(), "[::1]:22");
        assert_eq!(Target::parse("sw-1.example.net:23").unwrap().port, 23);
        for bad in ["", "host", "host:0", "host:70000", ":80", "a b:80", "[::1:80", "h;rm -rf /:22", "[zz]:1"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
