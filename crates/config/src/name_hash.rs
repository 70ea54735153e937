//! The one definition of a domain name's suffix hash, ASCII case ignored.
//!
//! The domain tree keys its table by the hash of a label suffix (`b`, `a.b`, `x.a.b`
//! for `x.a.b`): `S(1) = mix(0, L(b))`, `S(k) = mix(S(k-1), L(label k from the right))`,
//! where [`label_hash`] `L` depends only on the label's bytes with `0x20` set in each
//! (which makes ASCII letters lowercase and joins no two bytes a valid name may hold).
//! Two passes compute it: [`crate::domain::scan`] for any name, with this module's
//! slice-based [`label_hash`], and [`crate::short`] for names of at most 64 bytes, with
//! loads from a padded buffer. Both must give the same value for the same label, which
//! the tests of [`crate::short`] check against this definition.

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

/// The hash of one label (1 to 63 bytes): its last 8 bytes (or all, if fewer) as one
/// word `B`; the bytes before them, 8 at a time from the front, folded into `A` (the first
/// word itself, then [`mix`] with each next one; 0 when there are none); then
/// `mix(A, B ^ len << 56)`. A label of up to 16 bytes is thus two loads and one `mix`.
pub(crate) fn label_hash(label: &[u8]) -> u64 {
    let n = label.len();
    let (head, tail) = label.split_at(n.saturating_sub(8));
    let mut a = 0;
    for (j, c) in head.chunks(8).enumerate() {
        a = if j == 0 { word(c) } else { mix(a, word(c)) };
    }
    mix(a, word(tail) ^ ((n as u64) << 56))
}
