//! Sorted sets. (Being written: the skip list with spans arrives next.)

/// A Redis sorted set.
#[derive(Clone, Debug, Default)]
pub(crate) struct ZSet {
    len: usize,
}

impl ZSet {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn mem(&self) -> usize {
        0
    }

    /// Members and scores in rank order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        std::iter::empty()
    }
}
