//! The domain tree's hash table: canonical names keyed by their suffix hash.
//!
//! [`crate::domain::scan`] and [`crate::short`] hash every label suffix of a name (`b`,
//! `a.b`, `x.a.b`, ...), so the table is keyed by that hash rather than by the string: a
//! probe costs no hashing of its own, and the string is compared only when the stored
//! tag matches too.
//!
//! Slots come in buckets of 8, at most half full; a hash's top bits pick its bucket, and
//! a full bucket sends the name on to the next one. A bucket's eight one-byte tags are one
//! word of a dense array (32 KB for 10,000 names); beside it, the names' lengths and where
//! each name is in one arena (its group just before it). Most probes are misses (a name's
//! longer suffixes are rarely named), so a probe compares the eight tags at once (SWAR): a
//! miss is one load and one well-predicted branch, where a slot-by-slot walk mispredicted
//! about once a probe. Names are
//! compared ignoring ASCII case by clearing bit 5 of each byte's difference, which is
//! exact for the bytes a checked name may hold; a short name (see [`crate::short`]) is
//! compared 8 bytes a load, without a branch up to 24 bytes.
//!
//! The hash is not keyed: the table's names come from the trusted site file, so a caller
//! choosing the looked-up names cannot lengthen the probe chains.

use crate::name_hash::{CASE, MASK};
use crate::short::{load, zero_bytes, Text, L};

/// Where the names of a bucket's eight slots are: their lengths and arena offsets.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    lens: [u8; WIDE],
    offs: [u32; WIDE],
}

/// Canonical names and their groups, keyed by the suffix hash of [`crate::name_hash`].
#[derive(Debug, Clone)]
pub(crate) struct SuffixTable {
    /// Per bucket, the [`tag`]s of its 8 slots as the bytes of one word; 0 for an empty slot.
    tags: Vec<u64>,
    buckets: Vec<Bucket>,
    /// `64 - log2(buckets.len())`: a hash's top bits pick its bucket.
    shift: u32,
    /// Each stored name after its group (4 bytes, little-endian), back to back, then
    /// [`PAD`] zero bytes (room for three loads past the last name).
    arena: Vec<u8>,
    /// `(hash, offset, length)` of every stored name, in insertion order (to grow).
    names: Vec<(u64, u32, u8)>,
}

/// Slots per bucket: the bytes of a word.
const WIDE: usize = 8;
/// Zero bytes at the end of the arena.
const PAD: usize = 24;

impl Default for SuffixTable {
    fn default() -> Self {
        SuffixTable { tags: vec![0], buckets: vec![Bucket::default()], shift: 64, arena: vec![0; PAD], names: Vec::new() }
    }
}

/// The byte of a hash kept as a slot's tag, never 0: disjoint from the top bits that
/// pick the bucket (for up to 2^32 buckets).
#[inline(always)]
fn tag(hash: u64) -> u8 {
    let t = (hash >> 24) as u8;
    t + u8::from(t == 0)
}

impl SuffixTable {
    /// The group of `name` (trusted canonical, at most 253 bytes), whose suffix hash is
    /// `hash`, unless a name equal to it is stored already (the first one keeps its group).
    pub(crate) fn insert(&mut self, hash: u64, name: &str, group: u32) {
        if self.get(hash, name.as_bytes()).is_some() {
            return;
        }
        let len = u8::try_from(name.len()).expect("a canonical name has at most 253 bytes");
        self.arena.truncate(self.arena.len() - PAD);
        self.arena.extend(group.to_le_bytes());
        let off = u32::try_from(self.arena.len()).expect("domain names of a site fit in 4 GB");
        self.arena.extend(name.as_bytes());
        self.arena.extend([0; PAD]);
        self.names.push((hash, off, len));
        if self.names.len() * 2 > self.buckets.len() * WIDE {
            self.buckets = vec![Bucket::default(); self.buckets.len() * 2];
            self.tags = vec![0; self.buckets.len()];
            self.shift = 64 - self.buckets.len().trailing_zeros();
            for i in 0..self.names.len() {
                let (h, off, len) = self.names[i];
                self.place(h, off, len);
            }
        } else {
            self.place(hash, off, len);
        }
    }

    /// The bucket a hash starts in.
    #[inline(always)]
    fn bucket(&self, hash: u64) -> usize {
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    fn place(&mut self, hash: u64, off: u32, len: u8) {
        let mask = self.buckets.len() - 1;
        let mut b = self.bucket(hash);
        loop {
            let free = zero_bytes(self.tags[b]);
            if free != 0 {
                let i = free.trailing_zeros() as usize / 8;
                self.tags[b] |= u64::from(tag(hash)) << (8 * i);
                let k = &mut self.buckets[b];
                k.lens[i] = len;
                k.offs[i] = off;
                return;
            }
            b = (b + 1) & mask;
        }
    }

    /// The group stored before the name at `off`.
    #[inline(always)]
    fn group_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.arena[off - 4..off].try_into().expect("4 bytes"))
    }

    /// The group of the stored name equal to `key` (a checked name, case ignored), whose
    /// suffix hash is `hash`.
    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.probe(hash, key.len(), |off| {
            let stored = &self.arena[off..][..key.len()];
            stored.iter().zip(key).all(|(a, b)| (a ^ b) & !0x20 == 0)
        })
    }

    /// Like [`SuffixTable::get`] for the `len` bytes at `at` of a short name: the first 24
    /// bytes in three loads and masks, the rest 8 at a time.
    #[inline(always)]
    pub(crate) fn get_short(&self, hash: u64, text: &Text, at: usize, len: usize) -> Option<u32> {
        self.probe(hash, len, |off| {
            let part = |j: usize| (load(&self.arena, off + j) ^ text.word(at + j)) & MASK[len.saturating_sub(j).min(8)];
            let mut diff = part(0) | part(8) | part(16);
            let mut j = 24;
            while j < len {
                diff |= part(j);
                j += 8;
            }
            diff & !CASE == 0
        })
    }

    /// The group of the first name on `hash`'s chain of `len` bytes whose tag matches and
    /// which `same` (given its offset) says is the name looked up; `None` once a bucket with
    /// an empty slot is passed.
    #[inline(always)]
    fn probe(&self, hash: u64, len: usize, same: impl Fn(usize) -> bool) -> Option<u32> {
        let mask = self.buckets.len() - 1;
        let want = L * u64::from(tag(hash));
        let mut b = self.bucket(hash);
        loop {
            let tags = self.tags[b];
            let mut hits = zero_bytes(tags ^ want);
            while hits != 0 {
                let k = &self.buckets[b];
                let i = hits.trailing_zeros() as usize / 8;
                let off = k.offs[i] as usize;
                if usize::from(k.lens[i]) == len && same(off) {
                    return Some(self.group_at(off));
                }
                hits &= hits - 1;
            }
            if zero_bytes(tags) != 0 {
                return None;
            }
            b = (b + 1) & mask;
        }
    }

    /// Every stored name and its group, in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.names.iter().map(|&(_, off, len)| {
            let name = &self.arena[off as usize..][..usize::from(len)];
            (std::str::from_utf8(name).expect("canonical names are ASCII"), self.group_at(off as usize))
        })
    }

    /// How many names are stored.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}
