//! Sets: a [`Table`] of members, so SSCAN cursors and SPOP/SRANDMEMBER
//! sampling behave as in Redis.

use crate::keyspace::alloc_size;
use crate::table::Table;

/// A Redis set.
#[derive(Default)]
pub(crate) struct Set {
    members: Table<Box<[u8]>>,
    elem_bytes: usize,
}

impl Clone for Set {
    fn clone(&self) -> Self {
        let mut s = Set::new();
        for m in self.iter() {
            s.insert(m);
        }
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

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|b| &**b)
    }

    /// A uniformly random member.
    pub(crate) fn random(&self, rng: &mut fastrand::Rng) -> Option<&[u8]> {
        self.members.random(rng).map(|b| &**b)
    }

    /// One step of an SSCAN; see [`Table::scan`].
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        self.members.scan(cursor, |m| f(m))
    }
}
