//! Redaction of what the config shows (`GET /api/v1/config`, `mware config show`,
//! `Debug` of the raw parts): typed secrets print `***` by themselves ([`crate::Secret`]);
//! here the untyped parts are handled by what is known to be harmless, not by guessing
//! what is secret:
//! - `opts` (free-form, per role) is shown as `***` in full;
//! - the raw `pg_controller` list shows only the keys pg_controller knows and that are
//!   not secrets; every other key (a secret, or one nobody knows) as `***`;
//! - anywhere, a value under a key that names a secret is `***`, and the userinfo of any
//!   URL (`scheme://user:pass@host`) is `***`.

use serde_json::Value;

/// True for keys whose values are secrets (`ssh_pwd`, `pg_replica_pwd`, `password`, `dsn`, ...).
pub fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    !k.ends_with("token_env")
        && (k.ends_with("_pwd")
            || k.contains("pwd")
            || k.contains("pass")
            || k.contains("secret")
            || k.contains("token")
            || k.contains("cred")
            || k.contains("auth")
            || k.contains("conninfo")
            || k.contains("apikey")
            || k.contains("api_key")
            || k.contains("private")
            || k == "dsn"
            || k == "database"
            || k == "amqp"
            || k == "community"
            || k.ends_with("_key")
            || k.ends_with("_pem"))
}

/// `scheme://user:pass@host/...` → `scheme://***@host/...`; other text unchanged.
pub fn mask_url_userinfo(s: &str) -> std::borrow::Cow<'_, str> {
    let Some(i) = s.find("://") else { return s.into() };
    let rest = &s[i + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &s[..i + 3], &rest[at..]).into(),
        None => s.into(),
    }
}

/// Replaces every secret in `v` with `"***"`: values under secret keys, `opts` in full,
/// and the userinfo of URLs in strings.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                let empty = val.is_null() || val.as_object().is_some_and(|o| o.is_empty()) || val.as_array().is_some_and(|a| a.is_empty());
                if (is_secret_key(k) || k == "opts") && !empty {
                    *val = Value::String("***".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::String(s) => {
            if let std::borrow::Cow::Owned(m) = mask_url_userinfo(s) {
                *s = m;
            }
        }
        _ => {}
    }
}

/// Keeps only `allowed` keys that are not secrets of each object of `v` (recursing into
/// the `nested` key with `nested_allowed`); every other key's value becomes `***`.
pub fn redact_allowed(v: &mut Value, allowed: &[&str], nested: &str, nested_allowed: &[&str]) {
    let Value::Object(m) = v else {
        *v = Value::String("***".into());
        return;
    };
    for (k, val) in m.iter_mut() {
        if k == nested {
            match val {
                Value::Array(a) => a.iter_mut().for_each(|x| redact_allowed(x, nested_allowed, "", &[])),
                other => *other = Value::String("***".into()),
            }
        } else if !allowed.contains(&k.as_str()) || is_secret_key(k) {
            *val = Value::String("***".into());
        } else {
            redact(val);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn redacts_nested() {
        let mut v = serde_json::json!({"a": [{"ssh_pwd": "x", "pg_port": 1}], "opts": {"api_token": "t"}, "token_env": "E", "operator_token_env": "O"});
        redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": [{"ssh_pwd": "***", "pg_port": 1}], "opts": "***", "token_env": "E", "operator_token_env": "O"})
        );
    }

    #[test]
    fn keys_that_hold_secrets_in_the_wild() {
        for k in
            ["passwd", "pass", "credentials", "auth", "conninfo", "apikey", "private_key_pem", "ssh_pwd", "X-Auth-Token", "db_password"]
        {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["pg_port", "ssh_host", "token_env", "operator_token_env", "name", "pg_data_folder"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn url_userinfo_is_masked_anywhere() {
        assert_eq!(mask_url_userinfo("http://u:p@h:1/x?a=b@c"), "http://***@h:1/x?a=b@c");
        assert_eq!(mask_url_userinfo("postgresql://admin:s3cr3t@db/app"), "postgresql://***@db/app");
        assert_eq!(mask_url_userinfo("http://h:1/x@y"), "http://h:1/x@y");
        assert_eq!(mask_url_userinfo("no url"), "no url");
        let mut v = serde_json::json!({"endpoints": ["http://root:pw@127.0.0.1:2379"], "x": {"y": "amqp://g:g@h:5672/%2f"}});
        redact(&mut v);
        assert_eq!(v, serde_json::json!({"endpoints": ["http://***@127.0.0.1:2379"], "x": {"y": "amqp://***@h:5672/%2f"}}));
    }

    #[test]
    fn pg_lists_show_only_known_harmless_keys() {
        let mut g = serde_json::json!({"key": "main", "weird": "x", "servers": [{"pg_host": "db1", "ssh_pwd": "p", "conninfo": "password=p", "pg_port": 5}]});
        redact_allowed(&mut g, &["key", "servers"], "servers", &["pg_host", "pg_port", "ssh_pwd"]);
        assert_eq!(
            g,
            serde_json::json!({"key": "main", "weird": "***", "servers": [{"pg_host": "db1", "ssh_pwd": "***", "conninfo": "***", "pg_port": 5}]})
        );
    }
}
