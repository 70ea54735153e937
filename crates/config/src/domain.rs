//! The one rule for domain names, shared by the site file, the domain tree, the CLI,
//! the HTTP API and every service.
//!
//! [`canonical`] turns what a person or a program typed into the form names are compared
//! and stored in, or says why it is not a domain name:
//!
//! - one trailing dot is stripped (`example.ru.` is `example.ru`);
//! - Unicode names are converted with IDNA (UTS 46, non-transitional) to lowercase ASCII:
//!   `тест.рф` is `xn--e1aybc.xn--p1ai`, `Example.RU` is `example.ru`;
//! - the result is dot-separated labels of 1 to 63 bytes made of ASCII letters, digits, `-`
//!   and `_`, no label starting or ending with `-`, 253 bytes at most. `_` is allowed: SRV-style
//!   names (`_sip._udp.example.ru`) and internal names use it, and the seed allows "any domain
//!   of any level". Empty names, control characters (NUL included) and whitespace are refused.
//!
//! Names that are already canonical-looking ASCII (lowercase or uppercase letters, digits,
//! `-`, `_`, no `xn--`-style label) skip IDNA entirely: [`quick`] checks them in one pass
//! without allocating; [`scan`], the same pass run backwards, also reports where each label
//! suffix starts, which the domain tree hashes and looks up (names of up to 64 bytes take
//! a faster pass of their own, [`crate::short`]).

use std::fmt;

/// Longest name, in bytes of its ASCII (punycode) form, without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// Longest label, in bytes of its ASCII (punycode) form.
pub const MAX_LABEL_LEN: usize = 63;
/// Inputs longer than this (bytes) are refused as too long before IDNA runs, so a huge
/// input costs nothing.
const MAX_INPUT_LEN: usize = 4 * MAX_NAME_LEN;
/// Characters of the input shown in an error before it is cut.
const SHOWN_CHARS: usize = 64;

/// Why a text is not a domain name: what was expected, the input (escaped, cut if long)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a domain name (dot-separated labels of 1 to 63 letters, digits, '-' or '_', no '-' at either end of a label, 253 bytes at most), found {found} with {problem}")]
pub struct DomainError {
    found: String,
    problem: DomainProblem,
}

impl DomainError {
    fn new(raw: &str, problem: DomainProblem) -> Self {
        DomainError { found: shown(raw), problem }
    }

    /// What is wrong with the name.
    pub fn problem(&self) -> &DomainProblem {
        &self.problem
    }
}

/// What is wrong with a name that is not a domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainProblem {
    /// Nothing but (at most) the trailing dot.
    Empty,
    /// A control character (NUL, newline, DEL, ...) at this byte offset of the input.
    Control(usize),
    /// Whitespace at this byte offset of the input.
    Whitespace(usize),
    /// Longer than 253 bytes (after IDNA conversion); the length found.
    TooLong(usize),
    /// Two dots in a row, or a dot first.
    EmptyLabel,
    /// A label longer than 63 bytes; its length.
    LabelTooLong(usize),
    /// A label starting or ending with `-`.
    Hyphen,
    /// A character that is not a letter, digit, `-` or `_` (after IDNA conversion).
    Character(char),
    /// IDNA (UTS 46) refuses the name: a disallowed code point, bad punycode after `xn--`,
    /// or a label that breaks the bidi or joiner rules.
    Idna,
}

impl fmt::Display for DomainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainProblem::Empty => write!(f, "nothing in it"),
            DomainProblem::Control(at) => write!(f, "a control character at byte {at}"),
            DomainProblem::Whitespace(at) => write!(f, "whitespace at byte {at}"),
            DomainProblem::TooLong(n) => write!(f, "{n} bytes"),
            DomainProblem::EmptyLabel => write!(f, "an empty label"),
            DomainProblem::LabelTooLong(n) => write!(f, "a label of {n} bytes"),
            DomainProblem::Hyphen => write!(f, "a label with '-' at an end"),
            DomainProblem::Character(c) => write!(f, "the character {c:?}"),
            DomainProblem::Idna => write!(f, "characters or punycode that IDNA (UTS 46) refuses"),
        }
    }
}

/// The input as shown in an error: quoted and escaped, cut after 64 characters (with its
/// length in bytes) so a huge input does not flood a log line.
fn shown(raw: &str) -> String {
    let mut chars = raw.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_none() {
        format!("\"{}\"", head.escape_debug())
    } else {
        format!("\"{}\"... ({} bytes)", head.escape_debug(), raw.len())
    }
}

/// The canonical form of a domain name (see the module doc), or why it is not one.
pub fn canonical(raw: &str) -> Result<String, DomainError> {
    let d = raw.strip_suffix('.').unwrap_or(raw);
    match quick(d) {
        Quick::Canonical(_) => Ok(d.to_string()),
        Quick::Upper(_) => Ok(d.to_ascii_lowercase()),
        Quick::Slow => slow(raw, d),
    }
}

/// What the one-pass check found about a name (trailing dot already stripped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quick {
    /// Canonical as it is; the number of labels.
    Canonical(usize),
    /// Canonical once lowercased; the number of labels.
    Upper(usize),
    /// Anything else (non-ASCII, a `??--` label, or invalid): ask [`canonical`].
    Slow,
}

/// One pass over the bytes, no allocation. Never answers `Canonical`/`Upper` for a name
/// that [`canonical`] would refuse or change otherwise than by lowercasing: labels with
/// `--` in the third and fourth place (`xn--...`) go the slow way so IDNA checks them.
#[inline]
pub(crate) fn quick(d: &str) -> Quick {
    scan(d, false, |_| {})
}

/// A label suffix of a name (`b`, `a.b`, `x.a.b` for `x.a.b`), as [`scan`] reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suffix {
    /// Byte offset of the suffix in the scanned name.
    pub start: usize,
    /// Its number of labels.
    pub labels: usize,
}

/// Byte classes of [`scan`], as bits: what may be in a name that needs no IDNA (`.` is
/// looked for before the class).
const UPPER: u8 = 1;
const BAD: u8 = 2;
const CLASS: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => 0,
            b'A'..=b'Z' => UPPER,
            _ => BAD,
        };
        c += 1;
    }
    t
};

/// The check of [`quick`], reporting the label suffixes: one backward pass over the bytes
/// for their classes and the dots, then one over the labels, calling `on_suffix` for each
/// label suffix, shortest first, as soon as its label is checked. `punycode` accepts `??--`
/// labels (for names [`canonical`] already made). The caller must ignore what `on_suffix`
/// saw when the answer is `Slow`.
#[inline(always)]
pub(crate) fn scan(d: &str, punycode: bool, mut on_suffix: impl FnMut(Suffix)) -> Quick {
    let b = d.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return Quick::Slow;
    }
    // First one branch-free pass: the classes of all bytes, and where the dots are (from
    // the right); a label's end is then known without a mispredicted branch per label.
    let (mut class, mut dots, mut nd) = (0u8, [0u8; 256], 0usize);
    for (i, &c) in b.iter().enumerate().rev() {
        class |= CLASS[c as usize] & !u8::from(c == b'.').wrapping_neg();
        dots[nd & 255] = i as u8;
        nd += usize::from(c == b'.');
    }
    if class & BAD != 0 {
        return Quick::Slow;
    }
    let mut end = b.len();
    let starts = dots[..nd].iter().map(|&dot| usize::from(dot) + 1).chain([0]);
    for (k, i) in starts.enumerate() {
        if !label_ok(&b[i..end], punycode) {
            return Quick::Slow;
        }
        on_suffix(Suffix { start: i, labels: k + 1 });
        end = i.wrapping_sub(1);
    }
    let labels = nd + 1;
    if class & UPPER != 0 {
        Quick::Upper(labels)
    } else {
        Quick::Canonical(labels)
    }
}

/// 1..=63 bytes, no `-` at either end, and unless `punycode`, no `--` in the third and
/// fourth place.
#[inline(always)]
fn label_ok(l: &[u8], punycode: bool) -> bool {
    !l.is_empty()
        && l.len() <= MAX_LABEL_LEN
        && l[0] != b'-'
        && l[l.len() - 1] != b'-'
        && (punycode || !(l.len() >= 4 && l[2] == b'-' && l[3] == b'-'))
}

/// The full check: control characters and whitespace, IDNA when needed, then the label
/// rules on the ASCII result.
fn slow(raw: &str, d: &str) -> Result<String, DomainError> {
    let fail = |p| Err(DomainError::new(raw, p));
    if d.is_empty() {
        return fail(DomainProblem::Empty);
    }
    if let Some((at, _)) = raw.char_indices().find(|(_, c)| c.is_control()) {
        return fail(DomainProblem::Control(at));
    }
    if let Some((at, _)) = raw.char_indices().find(|(_, c)| c.is_whitespace()) {
        return fail(DomainProblem::Whitespace(at));
    }
    if d.len() > MAX_INPUT_LEN {
        return fail(DomainProblem::TooLong(d.len()));
    }
    // ASCII input gets its label rules checked first, so the error names the character
    // the person typed rather than what IDNA made of it.
    if d.is_ascii() {
        if let Err(p) = rules(d) {
            return fail(p);
        }
    }
    let ascii = match idna::uts46::Uts46::new().to_ascii(
        d.as_bytes(),
        idna::uts46::AsciiDenyList::EMPTY,
        idna::uts46::Hyphens::Allow,
        idna::uts46::DnsLength::Ignore,
    ) {
        Ok(a) => a.into_owned(),
        Err(_) => return fail(DomainProblem::Idna),
    };
    match rules(&ascii) {
        Ok(()) => Ok(ascii),
        Err(p) => fail(p),
    }
}

/// The label rules on an ASCII name (trailing dot stripped).
fn rules(d: &str) -> Result<(), DomainProblem> {
    if d.is_empty() {
        return Err(DomainProblem::Empty);
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err(DomainProblem::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DomainProblem::LabelTooLong(label.len()));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(DomainProblem::Character(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainProblem::Hyphen);
        }
    }
    if d.len() > MAX_NAME_LEN {
        return Err(DomainProblem::TooLong(d.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(raw: &str) -> DomainProblem {
        canonical(raw).expect_err(raw).problem().clone()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("tenant1.example.ru").unwrap(), "tenant1.example.ru");
        assert_eq!(canonical("Tenant1.Example.RU.").unwrap(), "tenant1.example.ru");
        assert_eq!(canonical("_sip._udp.Example.ru").unwrap(), "_sip._udp.example.ru");
        assert_eq!(canonical("x-1.a").unwrap(), "x-1.a");
        assert_eq!(canonical("localhost").unwrap(), "localhost");
        assert_eq!(canonical("тест.рф").unwrap(), "xn--e1aybc.xn--p1ai");
        assert_eq!(canonical("ТЕСТ.РФ.").unwrap(), "xn--e1aybc.xn--p1ai");
        assert_eq!(canonical("XN--E1AYBC.xn--p1ai").unwrap(), "xn--e1aybc.xn--p1ai");
        assert_eq!(canonical("pbx.тест.рф").unwrap(), "pbx.xn--e1aybc.xn--p1ai");
        // The ideographic full stop separates labels in UTS 46.
        assert_eq!(canonical("тест。рф").unwrap(), "xn--e1aybc.xn--p1ai");
        assert_eq!(canonical(&"a".repeat(63)).unwrap(), "a".repeat(63));
        let longest = format!("{}{}", "abcdefghi.".repeat(24), "abcdefghijkl");
        assert_eq!(longest.len(), 252);
        assert!(canonical(&format!("{longest}z")).is_ok());
        assert!(canonical(&format!("{longest}z.")).is_ok(), "the trailing dot does not count");
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert_eq!(problem(""), DomainProblem::Empty);
        assert_eq!(problem("."), DomainProblem::Empty);
        assert_eq!(problem("a.."), DomainProblem::EmptyLabel);
        assert_eq!(problem("bad..domain"), DomainProblem::EmptyLabel);
        assert_eq!(problem(".a"), DomainProblem::EmptyLabel);
        assert_eq!(problem("a\0b.ru"), DomainProblem::Control(1));
        assert_eq!(problem("a.ru\n"), DomainProblem::Control(4));
        assert_eq!(problem("a b.ru"), DomainProblem::Whitespace(1));
        assert_eq!(problem("a\u{a0}b.ru"), DomainProblem::Whitespace(1));
        assert_eq!(problem("-a.ru"), DomainProblem::Hyphen);
        assert_eq!(problem("a-.ru"), DomainProblem::Hyphen);
        assert_eq!(problem("a/b"), DomainProblem::Character('/'));
        assert_eq!(problem("a%2e.ru"), DomainProblem::Character('%'));
        assert_eq!(problem("*.ru"), DomainProblem::Character('*'));
        assert_eq!(problem(&format!("{}.ru", "x".repeat(64))), DomainProblem::LabelTooLong(64));
        assert_eq!(problem(&"a".repeat(300)), DomainProblem::LabelTooLong(300));
        assert_eq!(problem(&"a.".repeat(150)), DomainProblem::TooLong(299));
        assert_eq!(problem(&"a.".repeat(1000)), DomainProblem::TooLong(1999));
        assert_eq!(problem("xn--zz--.ru"), DomainProblem::Hyphen);
        assert_eq!(problem("xn--a.ru"), DomainProblem::Idna, "bad punycode");
        // A long Unicode label becomes a punycode label longer than 63 bytes.
        assert_eq!(problem(&"ж".repeat(60)), DomainProblem::LabelTooLong(66));
    }

    #[test]
    fn the_message_shows_the_input_escaped_and_cut() {
        let e = canonical("bad..domain").unwrap_err().to_string();
        assert!(e.starts_with("expected a domain name ("), "{e}");
        assert!(e.ends_with("found \"bad..domain\" with an empty label"), "{e}");
        let e = canonical("a\0b").unwrap_err().to_string();
        assert!(e.contains("found \"a\\0b\" with a control character at byte 1"), "{e}");
        let e = canonical(&"q".repeat(300)).unwrap_err().to_string();
        assert!(e.contains(&format!("found \"{}\"... (300 bytes) with a label of 300 bytes", "q".repeat(64))), "{e}");
    }

    #[test]
    fn quick_agrees_with_the_slow_path() {
        for d in ["a", "a.b", "A.b", "_sip._udp.x", "x-1.a", "ab--c.ru", "xn--e1aybc.xn--p1ai", "a..b", "-a", "a-", "a.b.", "a b"] {
            let q = quick(d);
            let full = slow(d, d);
            match q {
                Quick::Canonical(n) => assert_eq!((full, n), (Ok(d.to_string()), d.split('.').count()), "{d}"),
                Quick::Upper(n) => assert_eq!((full, n), (Ok(d.to_ascii_lowercase()), d.split('.').count()), "{d}"),
                Quick::Slow => {}
            }
        }
        assert_eq!(quick("xn--e1aybc.ru"), Quick::Slow, "punycode labels are checked by IDNA");
    }

    proptest::proptest! {
        /// Whatever the one-pass check accepts, the full check (with IDNA) accepts as the
        /// same name, with the same number of labels.
        #[test]
        fn quick_never_disagrees(d in "[a-zA-Z0-9_.-]{1,12}|(xn--|[a-z]{2}--)?[a-z0-9-]{0,8}(\\.[a-zA-Z-]{1,5}){0,3}") {
            let full = slow(&d, &d);
            match quick(&d) {
                Quick::Canonical(n) => proptest::prop_assert_eq!((full, n), (Ok(d.clone()), d.split('.').count())),
                Quick::Upper(n) => proptest::prop_assert_eq!((full, n), (Ok(d.to_ascii_lowercase()), d.split('.').count())),
                Quick::Slow => {}
            }
        }
    }
}
