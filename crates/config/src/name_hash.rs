//! The one definition of a domain name's suffix hash, ASCII case ignored.
//!
//! The domain tree keys its table by the hash of a label suffix (`b`, `a.b`, `x.a.b` for
//! `x.a.b`), defined by [`suffix_hash`] on the suffix's bytes with `0x20` set in each
//! (which makes ASCII letters lowercase and joins no two bytes a valid name may hold). Its
//! words are counted from the end of the text, so all the suffixes of one name share them:
//! a name's words are folded once ([`Folded`], and its copy in [`crate::short`] for short
//! names), then each suffix is hashed with one more step, in any order. The tests check
//! both against [`suffix_hash`].

/// `0x20` in every byte: set, it makes ASCII letters lowercase.
pub(crate) const CASE: u64 = 0x2020_2020_2020_2020;

/// `MASK[n]`: the low `n` bytes of a word (`n` in `0..=8`).
pub(crate) const MASK: [u64; 9] = {
    let mut m = [0u64; 9];
    let mut n = 1;
    while n <= 8 {
        m[n] = u64::MAX >> (64 - 8 * n);
        n += 1;
    }
    m
};

/// One step of FxHash (as in rustc): rotate, xor, multiply.
#[inline(always)]
pub(crate) fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

/// Up to 8 bytes as a little-endian word, case folded, zero above them.
#[inline(always)]
fn word(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    (u64::from_le_bytes(b) | CASE) & MASK[c.len()]
}

/// The hash of a name or suffix of one (`t`, 1 to 253 bytes): its 8-byte words from the
/// end, folded with [`mix`] (`G`), then the 0 to 7 bytes left at its front and its length:
/// `mix(G, front ^ len << 56)`.
pub(crate) fn suffix_hash(t: &[u8]) -> u64 {
    let mut g = 0;
    let mut e = t.len();
    while e >= 8 {
        g = mix(g, word(&t[e - 8..e]));
        e -= 8;
    }
    close(g, word(&t[..e]), t.len())
}

/// The last step of [`suffix_hash`]: the folded words `g`, the front bytes (as a word)
/// and the length.
#[inline(always)]
pub(crate) fn close(g: u64, front: u64, len: usize) -> u64 {
    mix(g, front ^ ((len as u64) << 56))
}

/// A name's 8-byte words from its end, folded as [`suffix_hash`] folds them: then the hash
/// of each of its suffixes is one more step ([`Folded::suffix`]).
pub(crate) struct Folded([u64; crate::domain::MAX_NAME_LEN / 8 + 2]);

impl Folded {
    /// Folds the words of `b` (at most 253 bytes).
    pub(crate) fn new(b: &[u8]) -> Folded {
        let (mut g, n) = ([0u64; crate::domain::MAX_NAME_LEN / 8 + 2], b.len());
        for j in 0..n / 8 {
            g[j + 1] = mix(g[j], word(&b[n - 8 * j - 8..n - 8 * j]));
        }
        Folded(g)
    }

    /// [`suffix_hash`] of `b[start..]`, for the `b` these words came from.
    pub(crate) fn suffix(&self, b: &[u8], start: usize) -> u64 {
        let len = b.len() - start;
        close(self.0[len / 8], word(&b[start..start + len % 8]), len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_suffixes_are_the_definition() {
        let name = b"A.bc.Def.ghij.klmno.pqrstu.vwxyz01.23456789.0123456789abcdef0123.x_y-z";
        let long: Vec<u8> = name.iter().copied().cycle().take(253).collect();
        for b in [&name[..], &long[..], b"a", b"abcdefgh", b"abcdefghi"] {
            let f = Folded::new(b);
            for start in 0..b.len() {
                assert_eq!(f.suffix(b, start), suffix_hash(&b[start..]), "{start} of {}", String::from_utf8_lossy(b));
            }
        }
    }
}
