//! The domain tree's hash table: canonical names keyed by their suffix hash.
//!
//! [`crate::domain::scan`] and [`crate::short`] hash every label suffix of a name (`b`,
//! `a.b`, `x.a.b`, ...), so the table is keyed by that hash rather than by the string: a
//! probe costs no hashing of its own, and the string is compared only when the stored
//! tag matches too.
//!
//! Slots come in buckets of 8, at most half full; a hash's top bits pick its bucket, and
//! a full bucket sends the name on to the next one. A bucket's eight one-byte tags are one
//! word of a dense array (32 KB for 10,000 names). Most probes are misses (a name's
//! longer suffixes are rarely named), so a probe compares the eight tags at once (SWAR): a
//! miss is one load and one well-predicted branch. Each slot (32 bytes, never across two
//! cache lines) holds the name's first 24 bytes, its length and its group, so a hit on a
//! name of up to 24 bytes reads one line beyond the tags. The slots take more room than
//! the names (1 MB for 10,000 names: 50 to 200 bytes a name, by how full the table is),
//! but a lookup is bound by the cache lines it waits for one after the other, and a
//! separate slot and name were two (5 % slower in alternating runs). Every name is also
//! kept whole in one arena (to list them, for the general way, and for the bytes of a
//! longer name past its slot), each at an 8-byte boundary and zero-padded to the next, so
//! it is compared 8 bytes a load with no mask. Names are compared ignoring ASCII case by
//! clearing bit 5 of each byte's difference, which is exact for the bytes a checked name
//! may hold.
//!
//! The hash is not keyed: the table's names come from the trusted site file, so a caller
//! choosing the looked-up names cannot lengthen the probe chains.

use crate::name_hash::CASE;
use crate::short::{load, zero_bytes, Text, L};

/// Bytes of a name kept in its slot.
const HEAD: usize = 24;

/// One name: its first [`HEAD`] bytes (zero past its end), its group, its length and where
/// the whole name is in the arena.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    head: [u8; HEAD],
    group: u32,
    /// The length in the low byte, the arena offset / 8 above it.
    at: u32,
}

impl Slot {
    #[inline(always)]
    fn len(&self) -> usize {
        (self.at & 0xff) as usize
    }

    #[inline(always)]
    fn off(&self) -> usize {
        (self.at >> 8) as usize * 8
    }

    #[inline(always)]
    fn word(&self, j: usize) -> u64 {
        load(&self.head, j)
    }
}

/// Canonical names and their groups, keyed by the suffix hash of [`crate::name_hash`].
#[derive(Debug, Clone)]
pub(crate) struct SuffixTable {
    /// Per bucket, the [`tag`]s of its 8 slots as the bytes of one word; 0 for an empty slot.
    tags: Vec<u64>,
    /// [`WIDE`] slots per bucket.
    slots: Vec<Slot>,
    /// `64 - log2(tags.len())`: a hash's top bits pick its bucket.
    shift: u32,
    /// Each stored name at an 8-byte boundary, zero bytes up to the next one.
    arena: Vec<u8>,
    /// `(hash, group, length and arena offset as in [`Slot::at`])` of every stored name, in
    /// insertion order (to grow).
    names: Vec<(u64, u32, u32)>,
}

/// Slots per bucket: the bytes of a word.
const WIDE: usize = 8;

impl Default for SuffixTable {
    fn default() -> Self {
        SuffixTable { tags: vec![0], slots: vec![Slot::default(); WIDE], shift: 64, arena: Vec::new(), names: Vec::new() }
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
        let off = u32::try_from(self.arena.len() / 8).ok().filter(|o| *o < 1 << 24).expect("domain names of a site fit in 128 MB");
        self.arena.extend(name.as_bytes());
        self.arena.resize(self.arena.len().next_multiple_of(8), 0);
        self.names.push((hash, group, u32::from(len) | off << 8));
        if self.names.len() * 2 > self.tags.len() * WIDE {
            self.tags = vec![0; self.tags.len() * 2];
            self.slots = vec![Slot::default(); self.tags.len() * WIDE];
            self.shift = 64 - self.tags.len().trailing_zeros();
            for i in 0..self.names.len() {
                self.place(i);
            }
        } else {
            self.place(self.names.len() - 1);
        }
    }

    /// The bucket a hash starts in.
    #[inline(always)]
    fn bucket(&self, hash: u64) -> usize {
        hash.checked_shr(self.shift).unwrap_or(0) as usize
    }

    /// Puts the `i`th name stored into its slot.
    fn place(&mut self, i: usize) {
        let (hash, group, at) = self.names[i];
        let mut slot = Slot { group, at, ..Slot::default() };
        let (n, off) = (slot.len().min(HEAD), slot.off());
        slot.head[..n].copy_from_slice(&self.arena[off..][..n]);
        let mask = self.tags.len() - 1;
        let mut b = self.bucket(hash);
        loop {
            let free = zero_bytes(self.tags[b]);
            if free != 0 {
                let k = free.trailing_zeros() as usize / 8;
                self.tags[b] |= u64::from(tag(hash)) << (8 * k);
                self.slots[b * WIDE + k] = slot;
                return;
            }
            b = (b + 1) & mask;
        }
    }

    /// The group of the stored name equal to `key` (a checked name, case ignored), whose
    /// suffix hash is `hash`.
    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.probe(hash, key.len(), |s| {
            let stored = &self.arena[s.off()..][..key.len()];
            stored.iter().zip(key).all(|(a, b)| (a ^ b) & !0x20 == 0)
        })
    }

    /// Like [`SuffixTable::get`] for the `len` bytes at `at` of a short name, which run to
    /// its end (the text reads as zero past it, as a slot's head and the arena do): the
    /// first 24 bytes from the slot in three loads, the rest 8 at a time from the arena.
    #[inline(always)]
    pub(crate) fn get_short(&self, hash: u64, text: &Text, at: usize, len: usize) -> Option<u32> {
        self.probe(hash, len, |s| {
            let mut diff = (s.word(0) ^ text.word(at)) | (s.word(8) ^ text.word(at + 8)) | (s.word(16) ^ text.word(at + 16));
            let mut j = HEAD;
            while j < len {
                diff |= load(&self.arena, s.off() + j) ^ text.word(at + j);
                j += 8;
            }
            diff & !CASE == 0
        })
    }

    /// The group of the first name on `hash`'s chain of `len` bytes whose tag matches and
    /// which `same` (given its slot) says is the name looked up; `None` once a bucket with
    /// an empty slot is passed.
    #[inline(always)]
    fn probe(&self, hash: u64, len: usize, same: impl Fn(&Slot) -> bool) -> Option<u32> {
        let mask = self.tags.len() - 1;
        let want = L * u64::from(tag(hash));
        let mut b = self.bucket(hash);
        loop {
            let tags = self.tags[b];
            let mut hits = zero_bytes(tags ^ want);
            while hits != 0 {
                let s = &self.slots[b * WIDE + hits.trailing_zeros() as usize / 8];
                if s.len() == len && same(s) {
                    return Some(s.group);
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
        self.names.iter().map(|&(_, group, at)| {
            let s = Slot { at, ..Slot::default() };
            let name = &self.arena[s.off()..][..s.len()];
            (std::str::from_utf8(name).expect("canonical names are ASCII"), group)
        })
    }

    /// How many names are stored.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}
