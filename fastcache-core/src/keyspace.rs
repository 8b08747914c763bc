//! Keys, values and the per-shard databases.
//!
//! # Memory layout
//! A key is one [`KeyEntry`] in its database's [`Table`]: 40 bytes of
//! entry plus 8 of slot and about 4 of bucket. The key's bytes share one
//! heap allocation with the value when the value is a short string
//! (`blob = key ‖ value`), which is the common cache case and what keeps
//! FastCache at or under Redis' bytes per key. Every other value lives in a
//! boxed [`Value`].

use crate::table::{Keyed, Table};
use crate::types::{Hash, List, Set, ZSet};

/// Strings up to this length are stored inline with their key.
pub(crate) const INLINE_MAX: usize = 256;

/// Approximate heap cost of an allocation of `n` bytes (malloc rounds up to
/// 16 and keeps a header).
pub(crate) fn alloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8 + 15) & !15
    }
}

/// A value that is not an inline string.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// A string that outgrew inline storage or is being appended to.
    Str(Vec<u8>),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
}

impl Value {
    /// Heap bytes held by the value (not counting its box).
    pub(crate) fn mem(&self) -> usize {
        match self {
            Value::Str(v) => alloc_size(v.capacity()),
            Value::List(l) => l.mem(),
            Value::Hash(h) => h.mem(),
            Value::Set(s) => s.mem(),
            Value::ZSet(z) => z.mem(),
        }
    }

    /// Whether this is a collection with no elements (Redis deletes those).
    pub(crate) fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    pub(crate) fn as_ref(&self) -> ObjRef<'_> {
        match self {
            Value::Str(v) => ObjRef::Str(v),
            Value::List(l) => ObjRef::List(l),
            Value::Hash(h) => ObjRef::Hash(h),
            Value::Set(s) => ObjRef::Set(s),
            Value::ZSet(z) => ObjRef::ZSet(z),
        }
    }
}

/// A borrowed view of a key's value.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ObjRef<'a> {
    Str(&'a [u8]),
    List(&'a List),
    Hash(&'a Hash),
    Set(&'a Set),
    ZSet(&'a ZSet),
}

impl ObjRef<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            ObjRef::Str(_) => "string",
            ObjRef::List(_) => "list",
            ObjRef::Hash(_) => "hash",
            ObjRef::Set(_) => "set",
            ObjRef::ZSet(_) => "zset",
        }
    }
}

/// One key, its value, its expiry and its access metadata.
pub(crate) struct KeyEntry {
    /// The key, followed by the value when the value is an inline string.
    blob: Box<[u8]>,
    /// The value unless it is an inline string.
    coll: Option<Box<Value>>,
    /// Absolute expiry in Unix milliseconds; 0 = no expiry.
    pub(crate) deadline: u64,
    keylen: u32,
    /// LRU clock or LFU counter, see `evict.rs`.
    pub(crate) meta: u32,
}

impl Keyed for KeyEntry {
    fn key(&self) -> &[u8] {
        &self.blob[..self.keylen as usize]
    }
}

impl KeyEntry {
    pub(crate) fn new(key: &[u8], value: Value) -> KeyEntry {
        match value {
            Value::Str(s) if s.len() <= INLINE_MAX => KeyEntry::new_str(key, &s),
            v => KeyEntry { blob: key.into(), coll: Some(Box::new(v)), deadline: 0, keylen: key.len() as u32, meta: 0 },
        }
    }

    pub(crate) fn new_str(key: &[u8], val: &[u8]) -> KeyEntry {
        if val.len() > INLINE_MAX {
            return KeyEntry::new(key, Value::Str(val.to_vec()));
        }
        let mut blob = Vec::with_capacity(key.len() + val.len());
        blob.extend_from_slice(key);
        blob.extend_from_slice(val);
        KeyEntry { blob: blob.into_boxed_slice(), coll: None, deadline: 0, keylen: key.len() as u32, meta: 0 }
    }

    pub(crate) fn obj(&self) -> ObjRef<'_> {
        match &self.coll {
            None => ObjRef::Str(&self.blob[self.keylen as usize..]),
            Some(v) => (**v).as_ref(),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        self.obj().type_name()
    }

    /// Whether the value is a string stored inline with the key.
    pub(crate) fn is_inline_str(&self) -> bool {
        self.coll.is_none()
    }

    /// Mutable access to the value; an inline string moves out to a
    /// [`Value::Str`] first, since whoever asks is about to change it.
    pub(crate) fn value_mut(&mut self) -> &mut Value {
        if self.coll.is_none() {
            let k = self.keylen as usize;
            let val = self.blob[k..].to_vec();
            self.blob = self.blob[..k].into();
            self.coll = Some(Box::new(Value::Str(val)));
        }
        match &mut self.coll {
            Some(v) => v,
            None => unreachable!("an inline string was just moved out"),
        }
    }

    /// The value, by value.
    pub(crate) fn into_value(self) -> Value {
        match self.coll {
            None => Value::Str(self.blob[self.keylen as usize..].to_vec()),
            Some(v) => *v,
        }
    }

    /// A deep copy of the value.
    pub(crate) fn clone_value(&self) -> Value {
        match &self.coll {
            None => Value::Str(self.blob[self.keylen as usize..].to_vec()),
            Some(v) => (**v).clone(),
        }
    }

    /// Replaces the value with a string, keeping key, expiry and metadata.
    pub(crate) fn set_str(&mut self, val: &[u8]) {
        let k = self.keylen as usize;
        if val.len() <= INLINE_MAX {
            let mut blob = Vec::with_capacity(k + val.len());
            blob.extend_from_slice(&self.blob[..k]);
            blob.extend_from_slice(val);
            self.blob = blob.into_boxed_slice();
            self.coll = None;
        } else {
            if self.coll.is_none() {
                self.blob = self.blob[..k].into();
            }
            self.coll = Some(Box::new(Value::Str(val.to_vec())));
        }
    }

    /// The value rendered in a stable order, for comparing states in tests.
    #[cfg(test)]
    pub(crate) fn canonical(&self) -> String {
        fn t(b: &[u8]) -> String {
            String::from_utf8_lossy(b).into_owned()
        }
        match self.obj() {
            ObjRef::Str(s) => format!("string:{}", t(s)),
            ObjRef::List(l) => format!("list:{:?}", l.iter().map(t).collect::<Vec<_>>()),
            ObjRef::Hash(h) => {
                let mut v: Vec<_> = h.iter().map(|(f, x)| (t(f), t(x))).collect();
                v.sort();
                format!("hash:{v:?}")
            }
            ObjRef::Set(s) => {
                let mut v: Vec<_> = s.iter().map(t).collect();
                v.sort();
                format!("set:{v:?}")
            }
            ObjRef::ZSet(z) => format!("zset:{:?}", z.iter().map(|(m, sc)| (t(m), sc)).collect::<Vec<_>>()),
        }
    }

    /// This key's share of [`Engine::digest`](crate::Engine::digest):
    /// byte-exact, independent of the order of hash fields and set members.
    pub(crate) fn digest(&self, state: &impl std::hash::BuildHasher, db: usize) -> u64 {
        use std::hash::Hasher;
        let value = match self.obj() {
            ObjRef::Str(s) => state.hash_one((0u8, s)),
            ObjRef::List(l) => {
                let mut h = state.build_hasher();
                h.write_u8(1);
                for x in l.iter() {
                    h.write_usize(x.len());
                    h.write(x);
                }
                h.finish()
            }
            ObjRef::Hash(h) => h.iter().fold(2u64, |acc, fv| acc.wrapping_add(state.hash_one(fv))),
            ObjRef::Set(s) => s.iter().fold(3u64, |acc, m| acc.wrapping_add(state.hash_one(m))),
            ObjRef::ZSet(z) => {
                let mut h = state.build_hasher();
                h.write_u8(4);
                for (m, score) in z.iter() {
                    h.write_usize(m.len());
                    h.write(m);
                    h.write_u64(score.to_bits());
                }
                h.finish()
            }
        };
        state.hash_one((db, self.key(), self.deadline, value))
    }

    /// Approximate bytes this key costs: slot, allocations, value.
    pub(crate) fn mem(&self) -> usize {
        Table::<KeyEntry>::SLOT_BYTES
            + alloc_size(self.blob.len())
            + self.coll.as_ref().map_or(0, |v| alloc_size(std::mem::size_of::<Value>()) + v.mem())
    }
}

/// One logical database's share of one shard.
#[derive(Default)]
pub(crate) struct Db {
    pub(crate) keys: Table<KeyEntry>,
    /// Keys that have a deadline, for active expiry and volatile eviction
    /// to sample from.
    pub(crate) volatile: Table<Box<[u8]>>,
}

impl Db {
    pub(crate) fn get(&self, h: u64, key: &[u8]) -> Option<&KeyEntry> {
        self.keys.get_hashed(h, key)
    }

    pub(crate) fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut KeyEntry> {
        self.keys.get_mut_hashed(h, key)
    }

    /// Inserts or replaces an entry, keeping the volatile index in step.
    pub(crate) fn insert(&mut self, h: u64, entry: KeyEntry) -> Option<KeyEntry> {
        let new_key: Option<Box<[u8]>> = (entry.deadline != 0).then(|| entry.key().into());
        let old = self.keys.insert_hashed(h, entry);
        let old_volatile = old.as_ref().is_some_and(|o| o.deadline != 0);
        match (old_volatile, new_key) {
            (true, None) => {
                if let Some(o) = &old {
                    self.volatile.remove_hashed(h, o.key());
                }
            }
            (false, Some(k)) => self.volatile.insert_new_hashed(h, k),
            _ => {}
        }
        old
    }

    pub(crate) fn remove(&mut self, h: u64, key: &[u8]) -> Option<KeyEntry> {
        let old = self.keys.remove_hashed(h, key)?;
        if old.deadline != 0 {
            self.volatile.remove_hashed(h, key);
        }
        Some(old)
    }

    /// Sets or clears (`0`) a key's deadline. Returns false if there is no
    /// such key.
    pub(crate) fn set_deadline(&mut self, h: u64, key: &[u8], deadline: u64) -> bool {
        let Some(e) = self.keys.get_mut_hashed(h, key) else {
            return false;
        };
        let was = e.deadline;
        e.deadline = deadline;
        if was == 0 && deadline != 0 {
            self.volatile.insert_new_hashed(h, key.into());
        } else if was != 0 && deadline == 0 {
            self.volatile.remove_hashed(h, key);
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.volatile.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_layout_is_compact() {
        assert_eq!(std::mem::size_of::<KeyEntry>(), 40);
        assert_eq!(std::mem::size_of::<Option<KeyEntry>>(), 40);
    }

    #[test]
    fn inline_and_boxed_strings() {
        let mut e = KeyEntry::new_str(b"key", b"value");
        assert!(e.is_inline_str());
        assert!(matches!(e.obj(), ObjRef::Str(b"value")));
        if let Value::Str(s) = e.value_mut() {
            s.extend_from_slice(b"!");
        }
        assert!(!e.is_inline_str());
        assert!(matches!(e.obj(), ObjRef::Str(b"value!")));
        assert_eq!(e.key(), b"key");
        let big = vec![b'x'; INLINE_MAX + 1];
        e.set_str(&big);
        assert!(!e.is_inline_str());
        e.set_str(b"small");
        assert!(e.is_inline_str());
        assert_eq!(e.key(), b"key");
    }
}
