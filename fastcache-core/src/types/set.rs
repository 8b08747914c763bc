//! Sets: a [`Table`] of members, so SSCAN cursors and SPOP/SRANDMEMBER
//! sampling behave as in Redis.
//!
//! A set also remembers whether Redis would hold it as an *intset* (only
//! integers, at most [`MAX_INTSET_ENTRIES`] of them, never converted): Redis
//! iterates such sets in ascending numeric order and SSCAN returns them in
//! one call, and OBJECT ENCODING reports it. The conversion is one-way, as
//! in Redis.

use crate::keyspace::alloc_size;
use crate::table::Table;
use crate::util::parse_i64;

/// Redis' `set-max-intset-entries` default.
pub(crate) const MAX_INTSET_ENTRIES: usize = 512;

/// A Redis set.
pub(crate) struct Set {
    members: Table<Box<[u8]>>,
    elem_bytes: usize,
    /// Every member is a canonical 64-bit integer and the set never held
    /// anything else nor more than [`MAX_INTSET_ENTRIES`] members.
    intset: bool,
}

impl Default for Set {
    fn default() -> Self {
        Set { members: Table::new(), elem_bytes: 0, intset: true }
    }
}

impl Clone for Set {
    fn clone(&self) -> Self {
        let mut s = Set::new();
        for m in self.iter() {
            s.insert(m);
        }
        // A copy keeps the original's encoding, as Redis' setTypeDup does.
        s.intset = self.intset;
        s
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

impl Set {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn mem(&self) -> usize {
        self.elem_bytes + self.members.overhead_bytes()
    }

    /// Whether Redis would hold this set as an intset.
    pub(crate) fn is_intset(&self) -> bool {
        self.intset
    }

    /// The encoding name OBJECT ENCODING reports (Redis 7.0).
    pub(crate) fn encoding(&self) -> &'static str {
        if self.intset {
            "intset"
        } else {
            "hashtable"
        }
    }

    pub(crate) fn contains(&self, m: &[u8]) -> bool {
        self.members.contains(m)
    }

    /// Adds `m`; true if it was not there.
    pub(crate) fn insert(&mut self, m: &[u8]) -> bool {
        if self.members.contains(m) {
            return false;
        }
        self.elem_bytes += alloc_size(m.len());
        self.members.insert(m.into());
        if self.intset && (self.members.len() > MAX_INTSET_ENTRIES || parse_i64(m).is_none()) {
            self.intset = false;
        }
        true
    }

    /// Removes `m`; true if it was there.
    pub(crate) fn remove(&mut self, m: &[u8]) -> bool {
        match self.members.remove(m) {
            Some(v) => {
                self.elem_bytes -= alloc_size(v.len());
                true
            }
            None => false,
        }
    }

    /// Members in storage order (cheap; use [`Set::ordered`] for replies).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|b| &**b)
    }

    /// Members in the order Redis would iterate them: ascending numeric
    /// order for an intset, storage order otherwise.
    pub(crate) fn ordered(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self.iter().collect();
        if self.intset {
            v.sort_by_key(|m| parse_i64(m).unwrap_or(0));
        }
        v
    }

    /// A uniformly random member.
    pub(crate) fn random(&self, rng: &mut fastrand::Rng) -> Option<&[u8]> {
        self.members.random(rng).map(|b| &**b)
    }

    /// Removes and returns a uniformly random member.
    pub(crate) fn pop_random(&mut self, rng: &mut fastrand::Rng) -> Option<Box<[u8]>> {
        let key: Box<[u8]> = self.members.random(rng)?.clone();
        let v = self.members.remove(&key)?;
        self.elem_bytes -= alloc_size(v.len());
        Some(v)
    }

    /// `count` distinct random members (all of them if `count >= len`),
    /// with Redis' two strategies: when most of the set is wanted, shuffle
    /// a copy of the members and keep a prefix; otherwise sample until
    /// enough distinct members were seen.
    pub(crate) fn sample_distinct(&self, rng: &mut fastrand::Rng, count: usize) -> Vec<&[u8]> {
        if count >= self.len() {
            return self.ordered();
        }
        if count.saturating_mul(3) > self.len() {
            let mut all: Vec<&[u8]> = self.iter().collect();
            // A partial Fisher-Yates shuffle: the first `count` slots end
            // up a uniform sample.
            for i in 0..count {
                let j = rng.usize(i..all.len());
                all.swap(i, j);
            }
            all.truncate(count);
            return all;
        }
        let mut seen = std::collections::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if let Some(m) = self.random(rng) {
                if seen.insert(m) {
                    out.push(m);
                }
            } else {
                break;
            }
        }
        out
    }

    /// One step of an SSCAN; see [`Table::scan`].
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        self.members.scan(cursor, |m| f(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Keyed;

    fn exact_mem(s: &Set) -> usize {
        s.members.iter().map(|m| alloc_size(m.key().len())).sum::<usize>() + s.members.overhead_bytes()
    }

    #[test]
    fn memory_stays_exact() {
        let mut s = Set::new();
        let mut rng = fastrand::Rng::with_seed(1);
        for i in 0..2000 {
            s.insert(format!("member-{i}").as_bytes());
        }
        assert_eq!(s.mem(), exact_mem(&s));
        for _ in 0..1500 {
            assert!(s.pop_random(&mut rng).is_some());
        }
        assert_eq!(s.len(), 500);
        assert_eq!(s.mem(), exact_mem(&s));
        for i in 0..2000 {
            s.remove(format!("member-{i}").as_bytes());
        }
        assert!(s.is_empty());
        assert_eq!(s.mem(), exact_mem(&s));
    }

    #[test]
    fn intset_tracking_is_one_way() {
        let mut s = Set::new();
        for i in [5, -3, 100, 0] {
            s.insert(i.to_string().as_bytes());
        }
        assert!(s.is_intset());
        assert_eq!(s.ordered(), vec![&b"-3"[..], b"0", b"5", b"100"]);
        s.insert(b"01");
        assert!(!s.is_intset());
        s.remove(b"01");
        assert!(!s.is_intset(), "Redis never converts back");
        assert_eq!(s.encoding(), "hashtable");
        let mut big = Set::new();
        for i in 0..=MAX_INTSET_ENTRIES {
            big.insert(i.to_string().as_bytes());
        }
        assert_eq!(big.encoding(), "hashtable");
        assert!(s.clone().encoding() == "hashtable");
    }

    #[test]
    fn samples_are_distinct() {
        let mut s = Set::new();
        let mut rng = fastrand::Rng::with_seed(3);
        for i in 0..100 {
            s.insert(format!("m{i}").as_bytes());
        }
        for count in [1, 10, 40, 99, 100, 1000] {
            let v = s.sample_distinct(&mut rng, count);
            let uniq: std::collections::HashSet<_> = v.iter().collect();
            assert_eq!(v.len(), count.min(100));
            assert_eq!(uniq.len(), v.len());
            assert!(v.iter().all(|m| s.contains(m)));
        }
    }
}
