//! A compact chained hash table with Redis-style cursors and O(1) random
//! sampling.
//!
//! The keyspace, hashes and sets all live in [`Table`]. A general-purpose
//! map (hashbrown, `std::collections::HashMap`) cannot do three things the
//! engine needs:
//!
//! - **SCAN cursors that survive resizes.** Buckets are a power of two and a
//!   key lives in bucket `hash & mask`, so Redis' reverse-binary cursor
//!   returns every element present for the whole iteration even if the
//!   table grows or shrinks between calls.
//! - **Random sampling** for RANDOMKEY, SPOP, eviction and active expiry:
//!   slots are dense (a free list is compacted away when it gets large), so
//!   picking a uniformly random occupied slot takes O(1) expected tries.
//! - **Small per-entry overhead**: a slot is the entry plus 8 bytes, buckets
//!   cost 4 bytes each, and slots live in fixed-size chunks, so a large
//!   table never holds twice the memory it needs while a `Vec` doubles.
//!
//! # Invariants
//! - `buckets.len()` is 0 or a power of two; every occupied slot is on
//!   exactly one chain, the one of bucket `slot.hash & (buckets.len() - 1)`.
//! - Free slots have `entry == None` and are linked through `next` from
//!   `free`.
//! - `len` counts occupied slots.

use std::hash::BuildHasher;
use std::sync::OnceLock;

const CHUNK_BITS: u32 = 10;
const CHUNK: usize = 1 << CHUNK_BITS;
const NIL: u32 = u32::MAX;

/// An entry that can be stored in a [`Table`]: it knows its own key.
pub(crate) trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Box<[u8]> {
    fn key(&self) -> &[u8] {
        self
    }
}

/// The process-wide hash function. Seeded randomly once per process so that
/// clients cannot aim collisions at a known hash; nothing persisted depends
/// on it (SCAN cursors, like Redis', are only valid within one process).
pub(crate) fn hash(key: &[u8]) -> u64 {
    static STATE: OnceLock<foldhash::fast::FixedState> = OnceLock::new();
    STATE.get_or_init(|| foldhash::fast::FixedState::with_seed(fastrand::u64(..))).hash_one(key)
}

/// One past the last [`position`]: a walk that reached it is complete.
pub(crate) const POS_END: u64 = 1 << 32;

/// A key's place in the order [`Table::visit_from`] walks a table in.
pub(crate) fn position(h: u64) -> u64 {
    position_of(h as u32)
}

fn position_of(h32: u32) -> u64 {
    u64::from(h32.reverse_bits())
}

struct Slot<T> {
    entry: Option<T>,
    next: u32,
    /// The low 32 bits of the key's hash: picks the bucket on rehash and
    /// filters chain entries before the key comparison.
    hash: u32,
}

/// See the module documentation.
pub(crate) struct Table<T> {
    buckets: Vec<u32>,
    chunks: Vec<Vec<Slot<T>>>,
    free: u32,
    len: usize,
    slots: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table { buckets: Vec::new(), chunks: Vec::new(), free: NIL, len: 0, slots: 0 }
    }
}

impl<T: Keyed> Table<T> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the table's own structures (not by the entries' heap
    /// allocations), for memory accounting.
    pub(crate) fn overhead_bytes(&self) -> usize {
        // Every chunk but the last is full, so this is O(1): it runs twice
        // per write to a collection.
        let slot_capacity = match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.capacity(),
            None => 0,
        };
        self.buckets.capacity() * 4
            + slot_capacity * std::mem::size_of::<Slot<T>>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Slot<T>>>()
    }

    /// Fixed per-entry cost (slot plus a share of the bucket array), for
    /// incremental memory accounting.
    pub(crate) const SLOT_BYTES: usize = std::mem::size_of::<Slot<T>>() + 4;

    fn slot(&self, idx: u32) -> &Slot<T> {
        let i = idx as usize;
        &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    fn slot_mut(&mut self, idx: u32) -> &mut Slot<T> {
        let i = idx as usize;
        &mut self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)]
    }

    fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        if self.buckets.is_empty() {
            return None;
        }
        let h32 = h as u32;
        let mut idx = self.buckets[(h32 as usize) & (self.buckets.len() - 1)];
        while idx != NIL {
            let s = self.slot(idx);
            if s.hash == h32 {
                if let Some(e) = &s.entry {
                    if e.key() == key {
                        return Some(idx);
                    }
                }
            }
            idx = s.next;
        }
        None
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&T> {
        self.get_hashed(hash(key), key)
    }

    pub(crate) fn get_hashed(&self, h: u64, key: &[u8]) -> Option<&T> {
        let idx = self.find(h, key)?;
        self.slot(idx).entry.as_ref()
    }

    pub(crate) fn get_mut_hashed(&mut self, h: u64, key: &[u8]) -> Option<&mut T> {
        let idx = self.find(h, key)?;
        self.slot_mut(idx).entry.as_mut()
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.find(hash(key), key).is_some()
    }

    /// Inserts `entry`, returning the entry it replaced, if any.
    pub(crate) fn insert(&mut self, entry: T) -> Option<T> {
        let h = hash(entry.key());
        self.insert_hashed(h, entry)
    }

    pub(crate) fn insert_hashed(&mut self, h: u64, entry: T) -> Option<T> {
        if let Some(idx) = self.find(h, entry.key()) {
            return self.slot_mut(idx).entry.replace(entry);
        }
        self.insert_new_hashed(h, entry);
        None
    }

    /// Inserts an entry whose key the caller knows is absent.
    pub(crate) fn insert_new_hashed(&mut self, h: u64, entry: T) {
        if self.len >= self.buckets.len() {
            self.rehash((self.buckets.len() * 2).max(4));
        }
        let h32 = h as u32;
        let b = (h32 as usize) & (self.buckets.len() - 1);
        let head = self.buckets[b];
        let idx = if self.free != NIL {
            let idx = self.free;
            let s = self.slot_mut(idx);
            let next_free = s.next;
            *s = Slot { entry: Some(entry), next: head, hash: h32 };
            self.free = next_free;
            idx
        } else {
            let idx = self.slots;
            debug_assert!(idx < NIL as usize, "table slot index overflow");
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(4));
            }
            if let Some(c) = self.chunks.last_mut() {
                if c.len() == c.capacity() {
                    c.reserve_exact((c.capacity() * 2).min(CHUNK) - c.len());
                }
                c.push(Slot { entry: Some(entry), next: head, hash: h32 });
            }
            self.slots += 1;
            idx as u32
        };
        self.buckets[b] = idx;
        self.len += 1;
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<T> {
        self.remove_hashed(hash(key), key)
    }

    pub(crate) fn remove_hashed(&mut self, h: u64, key: &[u8]) -> Option<T> {
        if self.buckets.is_empty() {
            return None;
        }
        let h32 = h as u32;
        let b = (h32 as usize) & (self.buckets.len() - 1);
        let mut prev = NIL;
        let mut idx = self.buckets[b];
        while idx != NIL {
            let s = self.slot(idx);
            let next = s.next;
            if s.hash == h32 && s.entry.as_ref().is_some_and(|e| e.key() == key) {
                if prev == NIL {
                    self.buckets[b] = next;
                } else {
                    self.slot_mut(prev).next = next;
                }
                let free = self.free;
                let s = self.slot_mut(idx);
                let out = s.entry.take();
                s.next = free;
                self.free = idx;
                self.len -= 1;
                self.maybe_shrink();
                return out;
            }
            prev = idx;
            idx = next;
        }
        None
    }

    /// Removes everything and releases the memory.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten().filter_map(|s| s.entry.as_ref())
    }

    /// A uniformly random entry, or `None` if the table is empty.
    pub(crate) fn random(&self, rng: &mut fastrand::Rng) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        // Compaction keeps at least 1/8 of the slots occupied, so this loop
        // takes at most 8 tries on average.
        loop {
            let idx = rng.usize(..self.slots) as u32;
            if let Some(e) = &self.slot(idx).entry {
                return Some(e);
            }
        }
    }

    /// Calls `f` for every entry of one or more buckets starting at
    /// `cursor`, and returns the cursor to continue from (0 when the
    /// iteration is complete). Redis' `dictScan` algorithm: the cursor's
    /// bits are incremented from the most significant end, so elements that
    /// stay in the table from the first call to the last are visited at
    /// least once even if the table is resized in between.
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(&T)) -> u64 {
        if self.buckets.is_empty() {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        let mut idx = self.buckets[(cursor & mask) as usize];
        while idx != NIL {
            let s = self.slot(idx);
            if let Some(e) = &s.entry {
                f(e);
            }
            idx = s.next;
        }
        let mut v = cursor | !mask;
        v = v.reverse_bits();
        v = v.wrapping_add(1);
        v.reverse_bits()
    }

    /// Calls `f` for every entry whose [`position`] is at least `pos`, whole
    /// buckets at a time in increasing position order, until `f` returns
    /// false (the rest of that bucket is still visited) or the table ends.
    /// Returns the position to continue from; [`POS_END`] when done.
    ///
    /// A position is the bit-reversed low half of the key's hash, so a
    /// bucket covers one contiguous range of positions at any table size:
    /// "position < returned value" is exactly the set of entries visited so
    /// far, whether the table grows or shrinks between calls. Snapshots
    /// rely on that to tell a written key's pre-image is still needed.
    pub(crate) fn visit_from(&self, mut pos: u64, mut f: impl FnMut(&T) -> bool) -> u64 {
        if self.buckets.is_empty() {
            return POS_END;
        }
        let mask = self.buckets.len() - 1;
        let width = 1u64 << (32 - self.buckets.len().trailing_zeros());
        let mut go_on = true;
        while pos < POS_END && go_on {
            let start = pos & !(width - 1);
            let mut idx = self.buckets[((pos as u32).reverse_bits() as usize) & mask];
            while idx != NIL {
                let s = self.slot(idx);
                if let Some(e) = &s.entry {
                    if position_of(s.hash) >= pos {
                        go_on &= f(e);
                    }
                }
                idx = s.next;
            }
            pos = start + width;
        }
        pos
    }

    fn rehash(&mut self, nbuckets: usize) {
        debug_assert!(nbuckets.is_power_of_two());
        self.buckets.clear();
        self.buckets.resize(nbuckets, NIL);
        let mask = nbuckets - 1;
        for (ci, chunk) in self.chunks.iter_mut().enumerate() {
            for (si, s) in chunk.iter_mut().enumerate() {
                if s.entry.is_some() {
                    let b = (s.hash as usize) & mask;
                    s.next = self.buckets[b];
                    self.buckets[b] = ((ci << CHUNK_BITS) | si) as u32;
                }
            }
        }
    }

    /// Compacts slots and shrinks buckets once the table is mostly empty, so
    /// random sampling stays O(1) and deleted keys give their memory back.
    fn maybe_shrink(&mut self) {
        if self.len == 0 {
            self.clear();
            return;
        }
        if self.slots < 64 || self.len * 8 >= self.slots {
            return;
        }
        let old = std::mem::take(&mut self.chunks);
        let len = self.len;
        let nbuckets = len.next_power_of_two().max(4);
        *self = Self::default();
        self.buckets = vec![NIL; nbuckets];
        for s in old.into_iter().flatten() {
            if let Some(e) = s.entry {
                self.insert_new_hashed(u64::from(s.hash), e);
            }
        }
        debug_assert_eq!(self.len, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn b(s: &str) -> Box<[u8]> {
        s.as_bytes().into()
    }

    #[test]
    fn insert_get_remove() {
        let mut t: Table<Box<[u8]>> = Table::new();
        for i in 0..5000 {
            assert!(t.insert(b(&format!("k{i}"))).is_none());
        }
        assert_eq!(t.len(), 5000);
        assert!(t.insert(b("k17")).is_some());
        assert_eq!(t.len(), 5000);
        for i in 0..5000 {
            assert!(t.get(format!("k{i}").as_bytes()).is_some());
        }
        for i in (0..5000).step_by(2) {
            assert!(t.remove(format!("k{i}").as_bytes()).is_some());
        }
        assert!(t.remove(b"k0").is_none());
        assert_eq!(t.len(), 2500);
        assert_eq!(t.iter().count(), 2500);
        for i in 0..5000 {
            assert_eq!(t.contains(format!("k{i}").as_bytes()), i % 2 == 1);
        }
    }

    #[test]
    fn shrinks_and_samples_after_mass_delete() {
        let mut t: Table<Box<[u8]>> = Table::new();
        for i in 0..10_000 {
            t.insert(format!("k{i}").into_bytes().into_boxed_slice());
        }
        for i in 0..9_990 {
            t.remove(format!("k{i}").as_bytes());
        }
        assert_eq!(t.len(), 10);
        assert!(t.slots <= 80, "slots were not compacted: {}", t.slots);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            seen.insert(t.random(&mut rng).map(|e| e.to_vec()));
        }
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn scan_visits_everything_across_resizes() {
        let mut t: Table<Box<[u8]>> = Table::new();
        for i in 0..300 {
            t.insert(b(&format!("stay{i}")));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = t.scan(cursor, |e| {
                seen.insert(e.to_vec());
            });
            round += 1;
            // Grow the table in the middle of the iteration, then shrink it.
            if round == 20 {
                for i in 0..3000 {
                    t.insert(b(&format!("tmp{i}")));
                }
            }
            if round == 400 {
                for i in 0..3000 {
                    t.remove(format!("tmp{i}").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..300 {
            assert!(seen.contains(format!("stay{i}").as_bytes()), "missed stay{i}");
        }
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn visit_from_splits_exactly_at_positions_across_resizes() {
        let mut t: Table<Box<[u8]>> = Table::new();
        for i in 0..3000u32 {
            t.insert(format!("k{i}").into_bytes().into_boxed_slice());
        }
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut pos = 0;
        let mut step = 0;
        while pos < POS_END {
            let mut n = 0;
            pos = t.visit_from(pos, |e| {
                assert!(seen.insert(e.to_vec()), "visited twice");
                n += 1;
                n < 50
            });
            // Everything below `pos` has been visited, nothing above it.
            for e in t.iter() {
                assert_eq!(position(hash(e)) < pos, seen.contains(&e.to_vec()));
            }
            step += 1;
            // Resize in both directions mid-walk; only unvisited keys are
            // added or removed so the check above stays meaningful.
            if step == 5 {
                for i in 3000..9000u32 {
                    let k: Box<[u8]> = format!("k{i}").into_bytes().into_boxed_slice();
                    if position(hash(&k)) >= pos {
                        t.insert(k);
                    }
                }
            }
            if step == 20 {
                let victims: Vec<Box<[u8]>> = t.iter().filter(|e| position(hash(e)) >= pos).cloned().collect();
                for k in victims.iter().skip(50) {
                    t.remove(k);
                }
            }
        }
        assert_eq!(seen.len(), t.len());
    }

    /// Random inserts and removes against a `HashSet`, checking lookups,
    /// iteration and sampling after every step.
    #[test]
    fn matches_a_hash_set() {
        let mut rng = fastrand::Rng::with_seed(42);
        for round in 0..20 {
            let mut t: Table<Box<[u8]>> = Table::new();
            let mut m: HashSet<Vec<u8>> = HashSet::new();
            let space = 10 + round * 50;
            for step in 0..5_000 {
                let k = format!("k{}", rng.usize(..space)).into_bytes();
                if rng.bool() {
                    assert_eq!(t.insert(k.clone().into_boxed_slice()).is_none(), m.insert(k.clone()));
                } else {
                    assert_eq!(t.remove(&k).is_some(), m.remove(&k), "round {round} step {step}");
                }
                assert_eq!(t.len(), m.len());
                if step % 97 == 0 {
                    for k in &m {
                        assert!(t.contains(k), "lost {:?} at round {round} step {step}", String::from_utf8_lossy(k));
                    }
                    assert_eq!(t.iter().count(), m.len());
                }
            }
        }
    }
}
