//! The domain tree's hash table: canonical names keyed by their suffix hash.
//!
//! [`crate::domain::scan`] hashes every label suffix of a name in one backward pass
//! (`b`, `a.b`, `x.a.b`, ...), so the table is keyed by that hash rather than by the
//! string: a probe costs no hashing of its own, and the string is compared only when the
//! stored hash matches too. Open addressing with linear probing, at most 3/4 full. Most
//! probes are misses (a name's longer suffixes are rarely named), so a probe first reads
//! a dense array of 16-bit tags (32 KB for 10,000 names, which stays in the L1/L2 cache)
//! and reads the slot and the name (in one string arena) only when the tag matches.
//!
//! The hash is not keyed: the table's names come from the trusted site file, so a caller
//! choosing the looked-up names cannot lengthen the probe chains.

/// One slot: a name's group and where its text is in the arena.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    group: u32,
    off: u32,
    len: u32,
}

/// Canonical names and their groups, keyed by the suffix hash of [`crate::domain::scan`].
#[derive(Debug, Clone)]
pub(crate) struct SuffixTable {
    /// The tag of the name in each slot ([`tag`], never 0), 0 for an empty slot.
    tags: Vec<u16>,
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`: a hash's top bits pick its first slot.
    shift: u32,
    /// Every stored name, back to back.
    arena: String,
    /// `(hash, slot)` of every stored name, in insertion order (to grow the table).
    hashes: Vec<(u64, Slot)>,
}

const MIN_SLOTS: usize = 8;

impl Default for SuffixTable {
    fn default() -> Self {
        SuffixTable {
            tags: vec![0; MIN_SLOTS],
            slots: vec![Slot::default(); MIN_SLOTS],
            shift: 64 - MIN_SLOTS.trailing_zeros(),
            arena: String::new(),
            hashes: Vec::new(),
        }
    }
}

/// The bits of a hash kept as a slot's tag, never 0: disjoint from the top bits that pick
/// the slot.
#[inline(always)]
fn tag(hash: u64) -> u16 {
    (hash >> 16) as u16 | 1
}

impl SuffixTable {
    /// The group of `name` (trusted canonical), whose suffix hash is `hash`, unless a name
    /// equal to it is stored already (the first one keeps its group).
    pub(crate) fn insert(&mut self, hash: u64, name: &str, group: u32) {
        if self.get(hash, name.as_bytes(), false).is_some() {
            return;
        }
        let off = u32::try_from(self.arena.len()).expect("domain names of a site fit in 4 GB");
        self.arena.push_str(name);
        let slot = Slot { group, off, len: name.len() as u32 };
        self.hashes.push((hash, slot));
        if self.hashes.len() * 4 > self.slots.len() * 3 {
            let n = self.slots.len() * 2;
            self.tags = vec![0; n];
            self.slots = vec![Slot::default(); n];
            self.shift = 64 - n.trailing_zeros();
            for i in 0..self.hashes.len() {
                let (h, s) = self.hashes[i];
                self.place(h, s);
            }
        } else {
            self.place(hash, slot);
        }
    }

    fn place(&mut self, hash: u64, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = (hash >> self.shift) as usize;
        while self.tags[i] != 0 {
            i = (i + 1) & mask;
        }
        self.tags[i] = tag(hash);
        self.slots[i] = slot;
    }

    /// The group of the stored name equal to `key` (compared ignoring ASCII case when
    /// `upper`, i.e. when `key` may hold uppercase letters), whose suffix hash is `hash`.
    #[inline(always)]
    pub(crate) fn get(&self, hash: u64, key: &[u8], upper: bool) -> Option<u32> {
        let mask = self.tags.len() - 1;
        let t = tag(hash);
        let mut i = (hash >> self.shift) as usize;
        loop {
            let found = self.tags[i];
            if found == 0 {
                return None;
            }
            if found == t {
                let s = self.slots[i];
                let stored = &self.arena.as_bytes()[s.off as usize..][..s.len as usize];
                if stored == key || upper && stored.eq_ignore_ascii_case(key) {
                    return Some(s.group);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Every stored name and its group, in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.hashes.iter().map(|(_, s)| (&self.arena[s.off as usize..][..s.len as usize], s.group))
    }

    /// How many names are stored.
    pub(crate) fn len(&self) -> usize {
        self.hashes.len()
    }
}
