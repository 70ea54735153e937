//! Redaction of secrets in raw JSON (the parts of the config kept untyped, such as
//! `pg_controller` and `opts`): every value under a key that names a secret becomes `***`.

use serde_json::Value;

/// True for keys whose values are secrets (`ssh_pwd`, `pg_replica_pwd`, `password`, `dsn`, ...).
pub fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k.ends_with("_pwd")
        || k == "pwd"
        || k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || k == "dsn"
        || k.ends_with("_key")
}

/// Replaces every secret value in `v` with `"***"`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if is_secret_key(k) && !val.is_null() && !k.ends_with("token_env") {
                    *val = Value::String("***".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn redacts_nested() {
        let mut v = serde_json::json!({"a": [{"ssh_pwd": "x", "pg_port": 1}], "opts": {"api_token": "t"}, "token_env": "E", "operator_token_env": "O"});
        redact(&mut v);
        assert_eq!(v, serde_json::json!({"a": [{"ssh_pwd": "***", "pg_port": 1}], "opts": {"api_token": "***"}, "token_env": "E", "operator_token_env": "O"}));
    }
}
