//! JSON parsing that refuses duplicate keys. `serde_json` keeps the last of two equal
//! keys in one object silently, so `{"ttl_ms": 10, "ttl_ms": 99999}` or a site file with
//! two `include_domains` of one role would be taken with one value nobody reviewed.
//! [`parse`] builds the same `Value` and reports every duplicated key with its JSON
//! path (`servers[0].roles[1].include_domains`).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a text is not acceptable JSON.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON at all (with serde_json's line and column).
    Malformed(serde_json::Error),
    /// JSON, but some object names a key twice: the JSON path of each repeated key.
    Duplicates(Vec<String>),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::Malformed(e) => write!(f, "malformed JSON: {e}"),
            StrictError::Duplicates(paths) => write!(f, "expected each key once per object, found {} again", paths.join(", ")),
        }
    }
}

/// Parses `text`, refusing duplicate keys.
pub fn parse(text: &str) -> Result<Value, StrictError> {
    parse_slice(text.as_bytes())
}

/// Parses `bytes`, refusing duplicate keys.
pub fn parse_slice(bytes: &[u8]) -> Result<Value, StrictError> {
    let dups = RefCell::new(vec![]);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Seed { path: String::new(), dups: &dups }.deserialize(&mut de).map_err(StrictError::Malformed)?;
    de.end().map_err(StrictError::Malformed)?;
    let dups = dups.into_inner();
    if dups.is_empty() {
        Ok(v)
    } else {
        Err(StrictError::Duplicates(dups))
    }
}

struct Seed<'a> {
    path: String,
    dups: &'a RefCell<Vec<String>>,
}

fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (path.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = vec![];
        while let Some(v) = seq.next_element_seed(Seed { path: format!("{}[{}]", self.path, out.len()), dups: self.dups })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let p = key_path(&self.path, &k);
            let v = map.next_value_seed(Seed { path: p.clone(), dups: self.dups })?;
            if out.insert(k, v).is_some() {
                self.dups.borrow_mut().push(p);
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_as_serde_json_without_duplicates() {
        let t = r#"{"a": [1, 2.5, {"b": null, "c": "x"}], "d": true, "e": -3, "f": 18446744073709551615}"#;
        assert_eq!(parse(t).unwrap(), serde_json::from_str::<Value>(t).unwrap());
    }

    #[test]
    fn every_duplicate_is_named_with_its_path() {
        let t = r#"{"servers": [{"roles": [{"name": "a", "name": "b"}, {"x": {"y": 1, "y": 2}}]}], "site": "s", "site": "t", "we ird": {"k": 1, "k": 1}}"#;
        match parse(t) {
            Err(StrictError::Duplicates(p)) => {
                assert_eq!(p, ["servers[0].roles[0].name", "servers[0].roles[1].x.y", "site", "[\"we ird\"].k"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_text_keeps_line_and_column() {
        let Err(StrictError::Malformed(e)) = parse("{\n \"a\": }") else { panic!() };
        assert_eq!((e.line(), e.column()), (2, 7));
        assert!(matches!(parse("{} x"), Err(StrictError::Malformed(_))));
    }
}
