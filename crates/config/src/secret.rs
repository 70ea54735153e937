//! A secret value (password, token, DSN with a password) that never prints.
//!
//! `Debug`, `Display` and `Serialize` all give `***`, so a secret can sit in any
//! struct that is logged, shown in status or returned by the API without leaking.
//! The real value is reached only through [`Secret::expose`].

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A string that prints as `***` everywhere except through [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The real value, for the one place that must send it (an SSH login, a DB connection).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether `given` is this secret, compared in constant time (no early exit at the
    /// first differing byte, so timing tells a caller nothing about the value).
    pub fn matches(&self, given: &str) -> bool {
        same(given.as_bytes(), self.0.as_bytes())
    }
    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compares two byte strings in constant time (for their length): tokens, passwords and
/// user names that a client sends.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "a secret; shown as *** in logs, status and the API"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
        assert!(s.matches("hunter2") && !s.matches("hunter3") && !s.matches("hunter") && !s.matches(""));
    }
}
