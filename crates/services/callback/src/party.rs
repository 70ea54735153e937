//! Checks of the phones an order names (the customer's number, an operator's URI) and of
//! critical section names: bounded, nothing that could end a SIP header line, nothing the
//! callmanager would refuse later. The callmanager checks a call's parties again.

/// Longest number or URI, in bytes (the callmanager's limit).
pub const MAX_PARTY: usize = 256;

/// A number (`+`? digits, `*`, `#`, separators `-` `.`), a `tel:` number or a
/// `sip:user@host` URI; the reason when not.
pub fn check(value: &str) -> Result<(), String> {
    if value.len() > MAX_PARTY {
        return Err(format!("expected at most {MAX_PARTY} bytes, found {} bytes", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("expected no control characters (CR, LF, ...), found U+{:04X}", c as u32));
    }
    if value.is_empty() {
        return Err("expected a number or a sip: URI, found an empty string".into());
    }
    let lower = value.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("tel:") {
        return if is_number(rest) { Ok(()) } else { Err(format!("expected tel:<digits, +, -, .>, found {value:?}")) };
    }
    if lower.starts_with("sip:") {
        let (user, host) = value[4..].split_once('@').ok_or_else(|| format!("expected sip:user@host, found {value:?}"))?;
        let user_ok = !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$;?/%".contains(c));
        let host_ok = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:;=[]".contains(c));
        return if user_ok && host_ok {
            Ok(())
        } else {
            Err(format!("expected sip:user@host of letters, digits and URI punctuation, found {value:?}"))
        };
    }
    if is_number(value) {
        Ok(())
    } else {
        Err(format!("expected a number (digits, +, *, #) or a sip: or tel: URI, found {value:?}"))
    }
}

fn is_number(s: &str) -> bool {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits: Vec<char> = body.chars().filter(|c| !matches!(c, '-' | '.')).collect();
    !digits.is_empty() && digits.iter().all(|c| c.is_ascii_digit() || *c == '*' || *c == '#')
}

/// A critical section name the mutex service takes (letters, digits, `. _ - : @ + = #`).
pub fn section_name(s: &str) -> Result<(), String> {
    let ok =
        !s.is_empty() && s.len() <= 200 && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:@+=#".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("expected a critical section name of 1 to 200 letters, digits and . _ - : @ + = #, found {}", mware_config::quote(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_uris_are_taken_and_injections_refused() {
        for ok in ["1001", "+7-495-123", "tel:+123", "sip:bob@example.test", "sip:a@127.0.0.1:5060;transport=udp", "*21#"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        assert!(check("sip:bob@example.test\r\nVia: x").unwrap_err().contains("U+000D"));
        assert!(check(&"1".repeat(300)).unwrap_err().contains("at most 256"));
        for bad in ["", "12a", "sip:bob", "sip:a b@c", "http://x", "sip:a@b>c"] {
            assert!(check(bad).is_err(), "{bad}");
        }
        assert!(section_name("op-1001").is_ok() && section_name("..").is_err() && section_name("a/b").is_err());
    }
}
