//! Hashes: a [`Table`] of field/value pairs, each pair in one allocation.

use crate::keyspace::alloc_size;
use crate::table::{Keyed, Table};

/// One field and its value, stored as `field ‖ value`.
pub(crate) struct Field {
    blob: Box<[u8]>,
    flen: u32,
}

impl Keyed for Field {
    fn key(&self) -> &[u8] {
        &self.blob[..self.flen as usize]
    }
}

impl Field {
    fn new(field: &[u8], value: &[u8]) -> Field {
        let mut blob = Vec::with_capacity(field.len() + value.len());
        blob.extend_from_slice(field);
        blob.extend_from_slice(value);
        Field { blob: blob.into_boxed_slice(), flen: field.len() as u32 }
    }

    pub(crate) fn field(&self) -> &[u8] {
        self.key()
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.blob[self.flen as usize..]
    }
}

/// A Redis hash.
#[derive(Default)]
pub(crate) struct Hash {
    fields: Table<Field>,
    elem_bytes: usize,
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        let mut h = Hash::new();
        for (f, v) in self.iter() {
            h.insert(f, v);
        }
        h
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), String::from_utf8_lossy(v))))
            .finish()
    }
}

impl Hash {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(crate) fn mem(&self) -> usize {
        self.elem_bytes + self.fields.overhead_bytes()
    }

    pub(crate) fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field).map(Field::value)
    }

    pub(crate) fn contains(&self, field: &[u8]) -> bool {
        self.fields.contains(field)
    }

    /// Sets `field` to `value`; true if the field is new.
    pub(crate) fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        let f = Field::new(field, value);
        self.elem_bytes += alloc_size(f.blob.len());
        match self.fields.insert(f) {
            Some(old) => {
                self.elem_bytes -= alloc_size(old.blob.len());
                false
            }
            None => true,
        }
    }

    /// Removes `field`; true if it was there.
    pub(crate) fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some(old) => {
                self.elem_bytes -= alloc_size(old.blob.len());
                true
            }
            None => false,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|f| (f.field(), f.value()))
    }

    /// A uniformly random field and its value.
    pub(crate) fn random(&self, rng: &mut fastrand::Rng) -> Option<(&[u8], &[u8])> {
        self.fields.random(rng).map(|f| (f.field(), f.value()))
    }

    /// One step of an HSCAN; see [`Table::scan`].
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        self.fields.scan(cursor, |e| f(e.field(), e.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(h: &Hash) -> usize {
        h.iter().map(|(f, v)| alloc_size(f.len() + v.len())).sum::<usize>() + h.fields.overhead_bytes()
    }

    #[test]
    fn mem_stays_exact() {
        let mut h = Hash::new();
        for i in 0..300 {
            assert!(h.insert(format!("f{i}").as_bytes(), "v".repeat(i % 50).as_bytes()));
        }
        assert_eq!(h.mem(), exact(&h));
        for i in 0..300 {
            assert!(!h.insert(format!("f{i}").as_bytes(), b"short"));
        }
        assert_eq!(h.mem(), exact(&h));
        for i in (0..300).step_by(2) {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert!(!h.remove(b"f0"));
        assert_eq!(h.mem(), exact(&h));
        assert_eq!(h.clone().mem(), exact(&h.clone()));
        for i in 0..300 {
            h.remove(format!("f{i}").as_bytes());
        }
        assert!(h.is_empty());
        assert_eq!(h.mem(), exact(&h));
    }
}
