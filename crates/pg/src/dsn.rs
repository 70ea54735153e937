//! The DSN's TLS settings as libpq reads them. tokio-postgres knows `sslmode` only up to
//! `require` and has no `sslrootcert`; this module takes `sslmode=verify-ca|verify-full`
//! and `sslrootcert=…` out of a DSN (key=value or URL form) so the rest parses, and
//! says which mode was asked for.

use crate::TlsError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    /// TLS required; the certificate checked only against a CA when one is given.
    Require,
    /// TLS required; the chain checked against the CA, not the host name.
    VerifyCa,
    /// TLS required; the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<SslMode, TlsError> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(TlsError {
                    expected: "sslmode one of disable, allow, prefer, require, verify-ca, verify-full".into(),
                    found: format!("{other:?}"),
                })
            }
        })
    }
}

/// A DSN split into what tokio-postgres parses and the TLS settings taken out.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The DSN without `sslmode` and `sslrootcert`.
    pub rest: String,
    /// The mode asked for (`prefer` when none).
    pub mode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of `dsn`.
pub fn split(dsn: &str) -> Result<Split, TlsError> {
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut take = |k: &str, v: String| -> Result<bool, TlsError> {
        match k {
            "sslmode" => mode = SslMode::parse(&v)?,
            "sslrootcert" => root_cert = Some(v),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        match dsn.split_once('?') {
            None => dsn.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if !take(k, v.to_string())? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (k, v, raw) in pairs(dsn) {
            if !take(&k, v)? {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    Ok(Split { rest, mode, root_cert })
}

/// The `key=value` pairs of a libpq DSN: key, unquoted value, and the pair's raw text.
fn pairs(dsn: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut it = dsn.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            return out;
        }
        let (mut key, mut value, mut raw) = (String::new(), String::new(), String::new());
        while let Some(&c) = it.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            raw.push(c);
            it.next();
        }
        while it.peek().is_some_and(|c| c.is_whitespace() || *c == '=') {
            raw.push(it.next().unwrap_or('='));
        }
        let quoted = it.peek() == Some(&'\'');
        if quoted {
            raw.push(it.next().unwrap_or('\''));
        }
        while let Some(c) = it.next() {
            if quoted && c == '\'' {
                raw.push(c);
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            raw.push(c);
            if c == '\\' {
                if let Some(n) = it.next() {
                    raw.push(n);
                    value.push(n);
                }
                continue;
            }
            value.push(c);
        }
        out.push((key, value, raw));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_and_url_forms_give_up_their_tls_settings() {
        let s = split("host=127.0.0.1 password='a b\\'c' sslmode=verify-full sslrootcert=/etc/ca.pem dbname=x").unwrap();
        assert_eq!(s.rest, "host=127.0.0.1 password='a b\\'c' dbname=x");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));
        let s = split("postgres://u:p@h/db?sslmode=verify-ca&application_name=m").unwrap();
        assert_eq!((s.rest.as_str(), s.mode), ("postgres://u:p@h/db?application_name=m", SslMode::VerifyCa));
        assert_eq!(split("host=h").unwrap().mode, SslMode::Prefer);
    }

    #[test]
    fn an_unknown_mode_is_named_and_refused() {
        let e = split("host=h sslmode=sometimes").unwrap_err();
        assert!(e.expected.contains("verify-full") && e.found == "\"sometimes\"", "{e}");
    }
}
