//! E-mail addresses as the services accept them: one plain `local@domain` address, no
//! display name, no comment, no whitespace and never a CR or LF (a header injection),
//! at most 254 bytes; the domain part lowercased. Checked before anything is stored or
//! handed to the mailer (which parses it again).

/// Why an address was refused (no copy of the input: the caller quotes it bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAddress {
    /// Longer than 254 bytes.
    TooLong,
    /// A CR, LF or another control character.
    Control,
    /// Not `local@domain` with allowed characters.
    Shape,
}

impl std::fmt::Display for BadAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadAddress::TooLong => "expected an e-mail address of at most 254 bytes",
            BadAddress::Control => "expected an e-mail address without control characters (CR, LF)",
            BadAddress::Shape => "expected one plain e-mail address local@domain",
        })
    }
}

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

/// The address made canonical (domain part lowercased), or why not.
pub fn parse(raw: &str) -> Result<String, BadAddress> {
    if raw.len() > 254 {
        return Err(BadAddress::TooLong);
    }
    if raw.chars().any(char::is_control) {
        return Err(BadAddress::Control);
    }
    let (local, domain) = raw.rsplit_once('@').ok_or(BadAddress::Shape)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c));
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(BadAddress::Shape);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// The domain part of a parsed address.
pub fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_pass_and_the_domain_is_lowercased() {
        assert_eq!(parse("Ann.Lee+x@Example.RU").unwrap(), "Ann.Lee+x@example.ru");
        assert_eq!(domain_of("a@b.ru"), "b.ru");
    }

    #[test]
    fn header_injection_and_odd_shapes_are_refused() {
        assert_eq!(parse("a@b.ru\r\nBcc: x@y.ru"), Err(BadAddress::Control));
        assert_eq!(parse("a@b.ru\nBcc: x@y.ru"), Err(BadAddress::Control));
        for bad in [
            "",
            "a",
            "@b.ru",
            "a@",
            "a@b",
            "a b@c.ru",
            "\"a\"@b.ru",
            "A <a@b.ru>",
            "a@b.ru,c@d.ru",
            "a@-b.ru",
            "a..b@c.ru",
            "a@b..ru",
            "'; DROP TABLE users;--@x.ru",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} passed");
        }
        assert_eq!(parse(&format!("{}@b.ru", "a".repeat(300))), Err(BadAddress::TooLong));
    }
}
