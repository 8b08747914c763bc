//! Lists: a ring buffer of byte strings, O(1) at both ends and by index.

use std::collections::VecDeque;

use crate::keyspace::alloc_size;

/// Below this many slots a list never gives capacity back: shrinking tiny
/// buffers costs more than it saves.
const SHRINK_MIN_CAPACITY: usize = 64;

/// One end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The head (`LEFT`, `LPUSH`).
    Left,
    /// The tail (`RIGHT`, `RPUSH`).
    Right,
}

/// A Redis list.
///
/// # Invariants
/// `elem_bytes` is the sum of `alloc_size(len)` over the elements, so
/// [`List::mem`] is exact without walking the list.
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

    /// Gives ring-buffer capacity back once the list has shrunk to a quarter
    /// of it, so a queue that was once long does not pin its peak memory.
    fn shrink_if_sparse(&mut self) {
        let cap = self.items.capacity();
        if cap > SHRINK_MIN_CAPACITY && self.items.len() * 4 < cap {
            self.items.shrink_to((self.items.len() * 2).max(SHRINK_MIN_CAPACITY));
        }
    }

    pub(crate) fn push_back(&mut self, v: &[u8]) {
        self.elem_bytes += alloc_size(v.len());
        self.items.push_back(v.into());
    }

    pub(crate) fn push_front(&mut self, v: &[u8]) {
        self.elem_bytes += alloc_size(v.len());
        self.items.push_front(v.into());
    }

    /// Pushes `v` at `end`.
    pub(crate) fn push(&mut self, end: End, v: &[u8]) {
        match end {
            End::Left => self.push_front(v),
            End::Right => self.push_back(v),
        }
    }

    pub(crate) fn pop_back(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_back()?;
        self.elem_bytes -= alloc_size(v.len());
        self.shrink_if_sparse();
        Some(v)
    }

    pub(crate) fn pop_front(&mut self) -> Option<Box<[u8]>> {
        let v = self.items.pop_front()?;
        self.elem_bytes -= alloc_size(v.len());
        self.shrink_if_sparse();
        Some(v)
    }

    /// Pops one element from `end`.
    pub(crate) fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        match end {
            End::Left => self.pop_front(),
            End::Right => self.pop_back(),
        }
    }

    /// Pops up to `n` elements from `end`, in the order they were popped.
    pub(crate) fn pop_many(&mut self, end: End, n: usize) -> Vec<Box<[u8]>> {
        let n = n.min(self.items.len());
        let out: Vec<Box<[u8]>> = match end {
            End::Left => self.items.drain(..n).collect(),
            End::Right => {
                let at = self.items.len() - n;
                self.items.drain(at..).rev().collect()
            }
        };
        self.elem_bytes -= out.iter().map(|v| alloc_size(v.len())).sum::<usize>();
        self.shrink_if_sparse();
        out
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

    /// Position of the first element equal to `v`, from the head.
    pub(crate) fn position(&self, v: &[u8]) -> Option<usize> {
        self.items.iter().position(|x| **x == *v)
    }

    /// Keeps only elements `start..=end` (already clamped by the caller:
    /// `start <= end < len`).
    pub(crate) fn trim(&mut self, start: usize, end: usize) {
        let freed: usize = self.items.range(end + 1..).map(|v| alloc_size(v.len())).sum::<usize>()
            + self.items.range(..start).map(|v| alloc_size(v.len())).sum::<usize>();
        self.items.truncate(end + 1);
        self.items.drain(..start);
        self.elem_bytes -= freed;
        self.shrink_if_sparse();
    }

    pub(crate) fn clear(&mut self) {
        self.items = VecDeque::new();
        self.elem_bytes = 0;
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|b| &**b)
    }

    /// Elements `start..=end` (`start <= end < len`), head to tail.
    pub(crate) fn range(&self, start: usize, end: usize) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.range(start..=end).map(|b| &**b)
    }

    /// Keeps the elements for which `keep` returns true.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let mut freed = 0;
        self.items.retain(|v| {
            let k = keep(v);
            if !k {
                freed += alloc_size(v.len());
            }
            k
        });
        self.elem_bytes -= freed;
        self.shrink_if_sparse();
    }

    /// Removes elements equal to `v` as LREM does: the first `count` from
    /// the head if `count > 0`, the last `-count` from the tail if
    /// `count < 0`, all of them if `count == 0`. Returns how many went.
    pub(crate) fn remove_matching(&mut self, v: &[u8], count: i64) -> usize {
        let limit = if count == 0 { usize::MAX } else { usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX) };
        // Matches at positions >= `from` (and within the limit) are removed.
        let from = if count < 0 {
            let mut seen = 0;
            let mut from = 0;
            for (i, x) in self.items.iter().enumerate().rev() {
                if **x == *v {
                    seen += 1;
                    from = i;
                    if seen == limit {
                        break;
                    }
                }
            }
            from
        } else {
            0
        };
        let mut removed = 0;
        let mut i = 0;
        self.retain(|x| {
            let drop = i >= from && removed < limit && x == v;
            i += 1;
            if drop {
                removed += 1;
            }
            !drop
        });
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(l: &List) -> usize {
        l.iter().map(|v| alloc_size(v.len())).sum::<usize>() + l.items.capacity() * std::mem::size_of::<Box<[u8]>>()
    }

    fn of(items: &[&str]) -> List {
        let mut l = List::new();
        for i in items {
            l.push_back(i.as_bytes());
        }
        l
    }

    fn items(l: &List) -> Vec<String> {
        l.iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    #[test]
    fn mem_stays_exact() {
        let mut l = List::new();
        for i in 0..1000 {
            l.push(if i % 2 == 0 { End::Left } else { End::Right }, format!("value-{i}").as_bytes());
        }
        assert_eq!(l.mem(), exact(&l));
        l.pop_many(End::Left, 10);
        l.pop_many(End::Right, 10);
        assert_eq!(l.mem(), exact(&l));
        l.trim(5, 900);
        assert_eq!(l.mem(), exact(&l));
        l.remove_matching(b"value-1", 0);
        l.set(3, b"x");
        l.insert(2, b"a-longer-value-than-before");
        assert_eq!(l.mem(), exact(&l));
        while l.len() > 3 {
            l.pop(End::Right);
        }
        assert_eq!(l.mem(), exact(&l));
        assert!(l.items.capacity() <= SHRINK_MIN_CAPACITY * 2, "capacity {} was not given back", l.items.capacity());
        l.clear();
        assert_eq!(l.mem(), 0);
    }

    #[test]
    fn remove_matching_directions() {
        let mut l = of(&["a", "b", "a", "c", "a", "a"]);
        assert_eq!(l.remove_matching(b"a", 2), 2);
        assert_eq!(items(&l), ["b", "c", "a", "a"]);
        let mut l = of(&["a", "b", "a", "c", "a", "a"]);
        assert_eq!(l.remove_matching(b"a", -3), 3);
        assert_eq!(items(&l), ["a", "b", "c"]);
        let mut l = of(&["a", "b", "a"]);
        assert_eq!(l.remove_matching(b"a", 0), 2);
        assert_eq!(items(&l), ["b"]);
        assert_eq!(l.remove_matching(b"z", -1), 0);
        assert_eq!(l.remove_matching(b"b", i64::MIN), 1);
        assert_eq!(l.mem(), exact(&l));
    }

    #[test]
    fn pop_many_both_ends() {
        let mut l = of(&["a", "b", "c", "d"]);
        let right: Vec<_> = l.pop_many(End::Right, 2).into_iter().map(|v| v.to_vec()).collect();
        assert_eq!(right, [b"d".to_vec(), b"c".to_vec()]);
        let left: Vec<_> = l.pop_many(End::Left, 10).into_iter().map(|v| v.to_vec()).collect();
        assert_eq!(left, [b"a".to_vec(), b"b".to_vec()]);
        assert!(l.is_empty());
        assert_eq!(l.mem(), exact(&l));
    }
}
