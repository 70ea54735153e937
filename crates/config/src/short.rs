//! The domain tree's pass over a name of at most 64 bytes, 16 bytes at a time.
//!
//! Nearly every name a site routes is that short. Its bytes are read 8 at a time from the
//! text itself, with loads clamped to its end and shifted so that whatever lies past the
//! name reads as zero (no copy, no per-byte loop); a name of under 8 bytes is first put in
//! an 8-byte array. Each 16 bytes are classified at once (SSE2 on x86-64, plain integer
//! arithmetic elsewhere): which are dots, hyphens, or not allowed in a name that needs no
//! IDNA. The rules of [`crate::domain`]'s quick check then are a few operations on three
//! 64-bit masks (no branch per byte or per label), and the labels are found from the dot
//! mask with one bit count each. The name's 8-byte words from the end are folded once, in
//! the same loop as the classification (two loops ended in two mispredicted branches: 72
//! ns a lookup against 60 in alternating runs); each label suffix is then hashed as
//! [`crate::name_hash`] defines it with one more load and one step, independently of the
//! others, so the lookup hashes the longest first and stops at its first hit. The stored
//! names are compared with the same loads ([`crate::table::SuffixTable::get_short`]), case
//! ignored.
//!
//! Why by hand: in the per-byte pass of [`crate::domain::scan`] (a table load, a store and
//! a loop-carried count per byte, a hash chained label after label) the check and the
//! hashing were two thirds of a lookup. The one `unsafe` block calls the SSE2 classifier,
//! whose only requirement (SSE2) every x86-64 processor meets.

use crate::name_hash::{close, mix, CASE, MASK};

/// Longest name (bytes, trailing dot stripped) this pass takes.
pub(crate) const SHORT: usize = 64;

/// `0x01` in every byte.
pub(crate) const L: u64 = 0x0101_0101_0101_0101;
const H: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// High bit of each zero byte of `w` (exact: no false positives).
#[inline(always)]
pub(crate) fn zero_bytes(w: u64) -> u64 {
    !(((w & LOW7) + LOW7) | w) & H
}

/// A short name that passed the check: its text and where its dots are.
pub(crate) struct Short<'a> {
    /// The name, or (for a name of under 8 bytes) the name and zero bytes up to 8: at
    /// least 8 bytes, and zero past the name, as [`Text::word`] reads it.
    pub text: Text<'a>,
    /// The name's length in bytes.
    pub len: usize,
    /// Bit `i` set where byte `i` is a dot.
    dots: u64,
    /// The name's 8-byte words from its end, folded: `folds[q]` is the hash state after the
    /// last `q` words (see [`crate::name_hash::suffix_hash`]), for `q` up to `len / 8`.
    folds: Folds,
}

/// High bit of each byte where the (7-bit) byte of `x7` equals `c`.
#[inline(always)]
fn eq(x7: u64, c: u8) -> u64 {
    zero_bytes(x7 ^ (L * c as u64))
}

/// High bit of each byte where the (7-bit) byte of `x7` is at least `c` (`c` ≥ 1).
#[inline(always)]
fn ge(x7: u64, c: u8) -> u64 {
    (x7 + L * (0x80 - c) as u64) & H
}

/// The high bit of each of the 8 bytes of `x` (only those bits set) as 8 bits.
#[inline(always)]
fn gather(x: u64) -> u64 {
    ((x >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The 8 bytes at `b[j..]`, little-endian.
#[inline(always)]
pub(crate) fn load(b: &[u8], j: usize) -> u64 {
    u64::from_le_bytes(b[j..j + 8].try_into().expect("8 bytes"))
}

/// The bytes of a short name, at least 8.
pub(crate) enum Text<'a> {
    /// A name of 8 bytes or more, as given.
    Name(&'a [u8]),
    /// A name of under 8 bytes, then zero bytes.
    Padded([u8; 8]),
}

impl Text<'_> {
    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Name(b) => b,
            Text::Padded(b) => b,
        }
    }

    /// The 8 bytes from offset `p`, those past the end read as zero: one load clamped to
    /// end at the end, shifted down.
    #[inline(always)]
    pub(crate) fn word(&self, p: usize) -> u64 {
        let b = self.bytes();
        let at = p.min(b.len() - 8);
        load(b, at).checked_shr(8 * (p - at) as u32).unwrap_or(0)
    }
}

/// Dots, hyphens and bytes not allowed among 16 bytes (`lo`, then `hi`), as 16 bits each:
/// plain integer arithmetic, 8 bytes at a time (SWAR). The SSE2 version below does the same
/// in a few vector instructions where the target has SSE2; the tests check they agree.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2", not(test)), allow(dead_code))]
#[inline(always)]
fn classify_swar(lo: u64, hi: u64) -> (u64, u64, u64) {
    let one = |w: u64| {
        let x7 = w & LOW7;
        let folded = x7 | CASE;
        let letter = ge(folded, b'a') & !ge(folded, b'z' + 1);
        // '-', '.', '/', '0'..='9' are one run; '/' is the one not allowed.
        let run = ge(x7, b'-') & !ge(x7, b'9' + 1) & !eq(x7, b'/');
        let ok = (letter | run | eq(x7, b'_')) & !(w & H);
        (gather(eq(x7, b'.')), gather(eq(x7, b'-')), gather(!ok & H))
    };
    let ((d0, h0, b0), (d1, h1, b1)) = (one(lo), one(hi));
    (d0 | d1 << 8, h0 | h1 << 8, b0 | b1 << 8)
}

/// [`classify_swar`] with SSE2, part of every x86-64 processor.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
fn classify_sse2(lo: u64, hi: u64) -> (u64, u64, u64) {
    use std::arch::x86_64::*;
    let v = _mm_set_epi64x(hi as i64, lo as i64);
    let at = |c: u8| _mm_set1_epi8(c as i8);
    // Signed compares: bytes from 0x80 up are negative, so below every range here.
    let folded = _mm_or_si128(v, at(0x20));
    let letter = _mm_and_si128(_mm_cmpgt_epi8(folded, at(b'a' - 1)), _mm_cmplt_epi8(folded, at(b'z' + 1)));
    let run = _mm_and_si128(_mm_cmpgt_epi8(v, at(b'-' - 1)), _mm_cmplt_epi8(v, at(b'9' + 1)));
    let ok = _mm_or_si128(_mm_or_si128(letter, _mm_andnot_si128(_mm_cmpeq_epi8(v, at(b'/')), run)), _mm_cmpeq_epi8(v, at(b'_')));
    let mask = |x| u64::from(_mm_movemask_epi8(x) as u16);
    (mask(_mm_cmpeq_epi8(v, at(b'.'))), mask(_mm_cmpeq_epi8(v, at(b'-'))), !mask(ok) & 0xffff)
}

/// Dots, hyphens and bytes not allowed among 16 bytes, as 16 bits each.
#[inline(always)]
fn classify(lo: u64, hi: u64) -> (u64, u64, u64) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    // SAFETY: the only requirement of `classify_sse2` is SSE2, which this build's target
    // has (the `cfg` above): every x86-64 processor does.
    return unsafe { classify_sse2(lo, hi) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    classify_swar(lo, hi)
}

impl<'a> Short<'a> {
    /// Checks `d` (trailing dot stripped): `None` unless it has at most [`SHORT`] bytes and
    /// is plainly canonical-looking (the general way then decides: it may be invalid, need
    /// IDNA, or hold a `??--` label, which IDNA checks).
    #[inline(always)]
    pub(crate) fn check(d: &'a str) -> Option<Short<'a>> {
        let b = d.as_bytes();
        let n = b.len();
        if n == 0 || n > SHORT {
            return None;
        }
        let text = if n >= 8 {
            Text::Name(b)
        } else {
            let mut p = [0; 8];
            p[..n].copy_from_slice(b);
            Text::Padded(p)
        };
        let (mut dots, mut hyphens, mut bad) = (0u64, 0u64, 0u64);
        // The same loop folds the words from the end (one loop, one mispredicted exit):
        // two a round, the first n / 8 exact, those past them never used.
        let mut folds = [0u64; SHORT / 8 + 1];
        for j in 0..n.div_ceil(16) {
            let (d, h, x) = classify(text.word(16 * j), text.word(16 * j + 8));
            dots |= d << (16 * j);
            hyphens |= h << (16 * j);
            bad |= x << (16 * j);
            folds[2 * j + 1] = mix(folds[2 * j], text.word(n.saturating_sub(16 * j + 8)) | CASE);
            folds[2 * j + 2] = mix(folds[2 * j + 1], text.word(n.saturating_sub(16 * j + 16)) | CASE);
        }
        // Only the bytes of the name: past it, the zero bytes are not allowed either.
        bad &= u64::MAX >> (SHORT - n);
        let last = 1u64 << (n - 1);
        let starts = (dots << 1) | 1;
        let ends = (dots >> 1) | last;
        // `??--` labels (`xn--...`) are refused here too: they need IDNA's check.
        let punycode = (starts << 2) & hyphens & (hyphens >> 1);
        let wrong = bad | (dots & (1 | last)) | (dots & (dots >> 1)) | (hyphens & (starts | ends)) | punycode;
        // One label of 64 bytes is the only label too long that fits.
        if wrong != 0 || dots == 0 && n == SHORT {
            return None;
        }
        Some(Short { text, len: n, dots, folds })
    }

    /// How many labels the name has.
    #[inline(always)]
    pub(crate) fn labels(&self) -> usize {
        self.dots.count_ones() as usize + 1
    }

    /// The suffix hash of the name from byte `start` on: one step from its folded words.
    #[inline(always)]
    pub(crate) fn hash_from(&self, start: usize) -> u64 {
        let len = self.len - start;
        let front = (self.text.word(start) | CASE) & MASK[len % 8];
        close(self.folds[len / 8], front, len)
    }

    /// Its label suffixes of at most `most` labels, longest first: each one's start and
    /// hash, hashed only when asked for (a lookup stops at its first hit).
    #[inline(always)]
    pub(crate) fn longest_first(&self, most: usize) -> Longest<'_, 'a> {
        let labels = self.labels();
        let left = labels.min(most);
        // Skip the labels in front of the longest suffix kept: the dots before it, lowest first.
        let (mut rest, mut start) = (self.dots, 0);
        for _ in left.max(1)..labels {
            start = rest.trailing_zeros() as usize + 1;
            rest &= rest - 1;
        }
        Longest { name: self, left, rest, start }
    }
}

/// A short name's folded words (see [`Short`]).
type Folds = [u64; SHORT / 8 + 1];

/// The label suffixes of a [`Short`] name, longest first: `(start, hash)`.
pub(crate) struct Longest<'s, 'a> {
    name: &'s Short<'a>,
    /// Suffixes still to come; the next has this many labels.
    left: usize,
    /// The dots after the next suffix's start.
    rest: u64,
    start: usize,
}

impl Iterator for Longest<'_, '_> {
    type Item = (usize, u64);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, u64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let start = self.start;
        self.start = self.rest.trailing_zeros() as usize + 1;
        self.rest &= self.rest.wrapping_sub(1);
        Some((start, self.name.hash_from(start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{scan, Quick};
    use crate::name_hash::suffix_hash;

    /// The suffix hashes of the general pass, shortest first, or `None` if it refuses.
    fn general(d: &str) -> Option<Vec<(u64, usize)>> {
        let mut v = Vec::new();
        match scan(d, false, |s| v.push((suffix_hash(&d.as_bytes()[s.start..]), s.start))) {
            Quick::Slow => None,
            _ => Some(v),
        }
    }

    fn agrees(d: &str) {
        let short = Short::check(d);
        if d.len() > SHORT {
            assert!(short.is_none(), "{d:?} is longer than the short pass");
            return;
        }
        match (short, general(d)) {
            (None, None) => {}
            (Some(s), Some(w)) => {
                assert_eq!(s.labels(), w.len(), "{d:?}");
                let mut got: Vec<(u64, usize)> = s.longest_first(usize::MAX).map(|(start, h)| (h, start)).collect();
                got.reverse();
                assert_eq!(got, w, "{d:?}");
                let two: Vec<(u64, usize)> = s.longest_first(2).map(|(start, h)| (h, start)).collect();
                assert_eq!(two, w.iter().take(2).rev().copied().collect::<Vec<_>>(), "{d:?}");
            }
            (s, w) => panic!("{d:?}: short {:?} general {w:?}", s.map(|s| s.labels())),
        }
    }

    #[test]
    fn agrees_with_the_general_pass() {
        let long_label = "q".repeat(63);
        let names = [
            "a",
            "a.b",
            "A.B",
            "example.ru",
            "Tenant1.Example.RU",
            "_sip._udp.x",
            "x-1.a",
            "abcdefghijklmnop.q",
            "abcdefghijklmnopq.r",
            "abcdefghijklmnopqrstuvwxyz0123456789-_.ru",
            &long_label,
            "a..b",
            ".a",
            "a.",
            "-a.b",
            "a-.b",
            "a.-b",
            "a.b-",
            "xn--e1aybc.ru",
            "ab--c.ru",
            "a/b",
            "a b",
            "a\0b",
            "тест.рф",
            "@a",
            "[a",
            "a`b",
            "a{b",
            "a~b",
            "\x0d.a",
            "DEL\x7f",
            "a_b.C_D",
            "0.1.2.3.4.5.6.7.8.9.a.b.c.d.e.f.g.h",
            "1.2",
        ];
        for d in names {
            agrees(d);
        }
        assert!(Short::check(&"q".repeat(64)).is_none(), "a 64-byte label");
        assert!(Short::check(&"q".repeat(65)).is_none(), "longer than the short pass");
    }

    #[test]
    fn a_suffix_hash_from_the_text_is_the_definition() {
        for n in 1..=61 {
            let label: String = (0..n).map(|i| (b'a' + (i * 7 % 26) as u8) as char).collect();
            let d = format!("{label}.Zz");
            let s = Short::check(&d).expect("valid");
            assert_eq!(s.longest_first(2).next(), Some((0, suffix_hash(d.as_bytes()))), "label of {n} bytes");
            assert_eq!(s.longest_first(1).next(), Some((n + 1, suffix_hash(b"zz"))), "label of {n} bytes");
        }
    }

    #[test]
    fn both_classifiers_agree() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let bytes = b"abcxyzABCXYZ019-._/ @[`{\x7f\x80\xff\x00\x0d\x0e\x10\x2f";
        for _ in 0..20_000 {
            let mut w = [0u64; 2];
            for v in &mut w {
                for k in 0..8 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *v |= u64::from(bytes[(x % bytes.len() as u64) as usize]) << (8 * k);
                }
            }
            assert_eq!(classify(w[0], w[1]), classify_swar(w[0], w[1]), "{w:x?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn short_and_general_agree(d in "[a-zA-Z0-9_.-]{1,70}|([a-z0-9-]{1,20}\\.){0,20}[a-zA-Z]{1,5}|(xn--|[a-z]{2}--)?[a-z0-9-]{0,8}(\\.[a-zA-Z-]{1,5}){0,3}") {
            agrees(&d);
        }
    }
}
