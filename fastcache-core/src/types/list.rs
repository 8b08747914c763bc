//! Lists: a ring buffer of byte strings, O(1) at both ends and by index.

use std::collections::VecDeque;

use crate::keyspace::alloc_size;

/// A Redis list.
#[derive(Clone, Debug, Default)]
pub(crate) struct List {
    items: VecDeque<Box<[u8]>>,
    /// Heap bytes of the elements (not of the ring buffer itself).
    elem_bytes: usize,
}

impl List {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn mem(&self) -> usize {
        self.elem_bytes + self.items.capacity() * std::mem::size_of::<Box<[u8]>>()
    }

    pub(crate) fn push_back(&mut self, v: &[u8]) {
        self.elem_bytes += alloc_size(v.len());
        self.items.push_back(v.into());
    }

    pub(crate) fn push_front(&mut self, v: &[u8]) {
        self.elem_bytes += alloc_size(v.len());
        self.items.push_front(v.into());
    }

    pub(crate) fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_back()?;
        self.elem_bytes -= alloc_size(v.len());
        Some(v)
    }

    pub(crate) fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_front()?;
        self.elem_bytes -= alloc_size(v.len());
        Some(v)
    }

    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        self.items.get(i).map(|b| &**b)
    }

    /// Replaces element `i`; false if out of range.
    pub(crate) fn set(&mut self, i: usize, v: &[u8]) -> bool {
        let Some(slot) = self.items.get_mut(i) else {
            return false;
        };
        self.elem_bytes = self.elem_bytes - alloc_size(slot.len()) + alloc_size(v.len());
        *slot = v.into();
        true
    }

    /// Inserts `v` so that it becomes element `i` (`i <= len`).
    pub(crate) fn insert(&mut self, i: usize, v: &[u8]) {
        self.elem_bytes += alloc_size(v.len());
        self.items.insert(i, v.into());
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<Box<[u8]>> {
        let v = self.items.remove(i)?;
        self.elem_bytes -= alloc_size(v.len());
        Some(v)
    }

    /// Keeps only elements `start..=end` (already clamped by the caller).
    pub(crate) fn trim(&mut self, start: usize, end: usize) {
        self.items.truncate(end + 1);
        self.items.drain(..start);
        self.elem_bytes = self.items.iter().map(|v| alloc_size(v.len())).sum();
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.elem_bytes = 0;
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|b| &**b)
    }

    /// Keeps the elements for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        self.items.retain(|v| keep(v));
        self.elem_bytes = self.items.iter().map(|v| alloc_size(v.len())).sum();
    }
}
