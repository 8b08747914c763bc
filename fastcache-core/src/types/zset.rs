//! Sorted sets: a member → score [`Table`] (O(1) ZSCORE, ZSCAN cursors,
//! uniform random members) plus Redis' skip list with spans, which keeps the
//! members ordered by (score, member bytes) and answers rank questions in
//! O(log n).
//!
//! The skip list lives in an arena of nodes addressed by `u32` indices, so
//! it needs no `unsafe`. Node 0 is the header. Removed nodes go on a free
//! list threaded through `back`; when most of the arena is free it is
//! rebuilt densely (in rank order), so memory follows the live size.
//!
//! A member's bytes are shared (`Arc<[u8]>`) by its table entry and its
//! node, so each member is stored once, as Redis shares one sds.
//!
//! # Invariants
//! - `dict` and the level-0 chain hold the same members with equal scores;
//!   the chain is sorted by (score, member) with no duplicates.
//! - For every node `x` and level `i < height(x)`, `span` is the number of
//!   level-0 steps from `x` to its level-`i` forward node, or, when that
//!   forward is `NIL`, the number of nodes after `x`.
//! - `back` is the previous node at level 0 (`NIL` for the first node);
//!   `tail` is the last node (`NIL` when empty).
//! - `levels` is the height of the tallest node (1 when empty); header
//!   levels at or above `levels` are never read.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::keyspace::alloc_size;
use crate::table::{hash, Keyed, Table};

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
/// Redis' ZSKIPLIST_MAXLEVEL: enough for 2^64 elements at p = 1/4.
const MAX_LEVEL: usize = 32;
/// Bytes of an `Arc<[u8]>` allocation besides the data: the two counts.
const ARC_HEADER: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Level {
    fwd: u32,
    span: u32,
}

const EMPTY_LEVEL: Level = Level { fwd: NIL, span: 0 };

struct Node {
    member: Arc<[u8]>,
    score: f64,
    /// Previous node at level 0, or the next free node for a free slot.
    back: u32,
    /// Level 0 lives inline: three nodes in four have no other level, so
    /// they need no second allocation.
    l0: Level,
    up: Box<[Level]>,
}

impl Node {
    fn height(&self) -> usize {
        1 + self.up.len()
    }
}

/// One member and its score: the entry of the member → score table.
struct Entry {
    member: Arc<[u8]>,
    score: f64,
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        &self.member
    }
}

fn member_bytes(len: usize) -> usize {
    alloc_size(ARC_HEADER + len)
}

fn levels_bytes(n: usize) -> usize {
    alloc_size(n * std::mem::size_of::<Level>())
}

/// A score interval, as ZRANGEBYSCORE's `min`/`max` describe it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ScoreRange {
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// `min` is exclusive (`(min`).
    pub(crate) minex: bool,
    /// `max` is exclusive (`(max`).
    pub(crate) maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }

    fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }

    pub(crate) fn contains(&self, v: f64) -> bool {
        self.gte_min(v) && self.lte_max(v)
    }

    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a lexicographic range (`-`, `+`, `[x`, `(x`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LexBound {
    NegInf,
    PosInf,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }

    /// Redis' `sdscmplex`: the infinities compare equal only to themselves.
    fn cmp_bound(&self, other: &LexBound) -> Ordering {
        use LexBound::*;
        match (self, other) {
            (NegInf, NegInf) | (PosInf, PosInf) => Ordering::Equal,
            (NegInf, _) | (_, PosInf) => Ordering::Less,
            (PosInf, _) | (_, NegInf) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        }
    }
}

/// A lexicographic interval, as ZRANGEBYLEX's `min`/`max` describe it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LexRange {
    pub(crate) min: LexBound,
    pub(crate) max: LexBound,
}

impl LexRange {
    fn gte_min(&self, v: &[u8]) -> bool {
        match &self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(m) => v >= m.as_slice(),
            LexBound::Excl(m) => v > m.as_slice(),
        }
    }

    fn lte_max(&self, v: &[u8]) -> bool {
        match &self.max {
            LexBound::PosInf => true,
            LexBound::NegInf => false,
            LexBound::Incl(m) => v <= m.as_slice(),
            LexBound::Excl(m) => v < m.as_slice(),
        }
    }

    pub(crate) fn contains(&self, v: &[u8]) -> bool {
        self.gte_min(v) && self.lte_max(v)
    }

    fn is_empty(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.exclusive() || self.max.exclusive(),
            Ordering::Less => false,
        }
    }
}

/// A Redis sorted set.
#[derive(Default)]
pub(crate) struct ZSet {
    dict: Table<Entry>,
    /// The arena; empty until the first insert, then `nodes[0]` is the header.
    nodes: Vec<Node>,
    free: u32,
    nfree: usize,
    tail: u32,
    levels: usize,
    /// Heap bytes of members and of the levels above 0.
    elem_bytes: usize,
    /// Redis would have converted this set from a listpack to a skip list
    /// (it never converts back).
    skiplist: bool,
}

/// Redis' `zset-max-listpack-entries` and `zset-max-listpack-value`.
const LISTPACK_MAX_ENTRIES: usize = 128;
const LISTPACK_MAX_VALUE: usize = 64;

impl Clone for ZSet {
    fn clone(&self) -> Self {
        let mut z = ZSet::default();
        for (m, s) in self.iter() {
            z.insert(m, s);
        }
        // A copy keeps the original's encoding, as Redis' zsetDup does.
        z.skiplist = self.skiplist;
        z
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|(m, s)| (String::from_utf8_lossy(m), s))).finish()
    }
}

/// Walks the level-0 chain forwards or backwards.
pub(crate) struct Iter<'a> {
    z: &'a ZSet,
    cur: u32,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.cur == NIL {
            return None;
        }
        let n = &self.z.nodes[self.cur as usize];
        self.cur = if self.rev { n.back } else { n.l0.fwd };
        Some((&n.member, n.score))
    }
}

impl ZSet {
    pub(crate) fn len(&self) -> usize {
        self.dict.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }

    pub(crate) fn mem(&self) -> usize {
        self.elem_bytes + self.dict.overhead_bytes() + self.nodes.capacity() * std::mem::size_of::<Node>()
    }

    /// The encoding name OBJECT ENCODING reports (Redis 7.0).
    pub(crate) fn encoding(&self) -> &'static str {
        if self.skiplist {
            "skiplist"
        } else {
            "listpack"
        }
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).map(|e| e.score)
    }

    pub(crate) fn contains(&self, member: &[u8]) -> bool {
        self.dict.contains(member)
    }

    /// Members and scores in rank order.
    pub(crate) fn iter(&self) -> Iter<'_> {
        self.walk(self.first(), false)
    }

    /// Starting at the element of (ascending, 0-based) rank `rank`, walks
    /// towards higher ranks, or towards lower ones if `rev`.
    pub(crate) fn iter_from_rank(&self, rank: usize, rev: bool) -> Iter<'_> {
        self.walk(self.node_at(rank).unwrap_or(NIL), rev)
    }

    /// Adds `member` or updates its score; true if it is new.
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) -> bool {
        debug_assert!(!score.is_nan());
        let h = hash(member);
        if let Some(e) = self.dict.get_mut_hashed(h, member) {
            let old = e.score;
            // Like Redis, -0 and 0 are the same score: nothing changes.
            if old == score {
                return false;
            }
            e.score = score;
            let m = e.member.clone();
            self.rescore(old, m, score);
            return false;
        }
        let m: Arc<[u8]> = Arc::from(member);
        self.elem_bytes += member_bytes(m.len());
        self.dict.insert_new_hashed(h, Entry { member: m.clone(), score });
        self.link(score, m);
        if self.len() > LISTPACK_MAX_ENTRIES || member.len() > LISTPACK_MAX_VALUE {
            self.skiplist = true;
        }
        true
    }

    /// Removes `member`; true if it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        let Some(e) = self.dict.remove(member) else {
            return false;
        };
        let update = self.predecessors(e.score, &e.member);
        let x = self.level(update[0], 0).fwd;
        debug_assert!(x != NIL && *self.nodes[x as usize].member == *e.member);
        self.unlink(x, &update);
        self.free_node(x);
        self.elem_bytes -= member_bytes(e.member.len());
        self.maybe_shrink();
        true
    }

    /// The 0-based rank of `member` in ascending order.
    pub(crate) fn rank(&self, member: &[u8]) -> Option<usize> {
        let e = self.dict.get(member)?;
        let (score, m) = (e.score, &*e.member);
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd == NIL {
                    break;
                }
                let f = &self.nodes[l.fwd as usize];
                if f.score < score || (f.score == score && *f.member <= *m) {
                    rank += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            if x != HEAD && *self.nodes[x as usize].member == *m {
                return Some(rank - 1);
            }
        }
        None
    }

    /// The element of 0-based ascending rank `rank`.
    // Part of the type's API for other commands (SORT, OBJECT…) even while
    // the zset commands use rank iterators instead.
    #[allow(dead_code)]
    pub(crate) fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        let n = &self.nodes[self.node_at(rank)? as usize];
        Some((&n.member, n.score))
    }

    /// A uniformly random member and its score.
    pub(crate) fn random(&self, rng: &mut fastrand::Rng) -> Option<(&[u8], f64)> {
        self.dict.random(rng).map(|e| (&*e.member, e.score))
    }

    /// One step of a ZSCAN; see [`Table::scan`].
    pub(crate) fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        self.dict.scan(cursor, |e| f(&e.member, e.score))
    }

    // ----- ranges ----------------------------------------------------------

    /// The first element in `r` and its 0-based rank.
    fn first_in_score(&self, r: &ScoreRange) -> Option<(u32, usize)> {
        if !self.score_range_overlaps(r) {
            return None;
        }
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && !r.gte_min(self.nodes[l.fwd as usize].score) {
                    rank += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
        }
        let x = self.level(x, 0).fwd;
        (x != NIL && r.lte_max(self.nodes[x as usize].score)).then_some((x, rank))
    }

    /// The last element in `r` and its 0-based rank.
    fn last_in_score(&self, r: &ScoreRange) -> Option<(u32, usize)> {
        if !self.score_range_overlaps(r) {
            return None;
        }
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && r.lte_max(self.nodes[l.fwd as usize].score) {
                    rank += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
        }
        (x != HEAD && r.gte_min(self.nodes[x as usize].score)).then(|| (x, rank - 1))
    }

    fn score_range_overlaps(&self, r: &ScoreRange) -> bool {
        if r.is_empty() || self.is_empty() {
            return false;
        }
        r.gte_min(self.nodes[self.tail as usize].score) && r.lte_max(self.nodes[self.first() as usize].score)
    }

    fn first_in_lex(&self, r: &LexRange) -> Option<(u32, usize)> {
        if !self.lex_range_overlaps(r) {
            return None;
        }
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && !r.gte_min(&self.nodes[l.fwd as usize].member) {
                    rank += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
        }
        let x = self.level(x, 0).fwd;
        (x != NIL && r.lte_max(&self.nodes[x as usize].member)).then_some((x, rank))
    }

    fn last_in_lex(&self, r: &LexRange) -> Option<(u32, usize)> {
        if !self.lex_range_overlaps(r) {
            return None;
        }
        let mut x = HEAD;
        let mut rank = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && r.lte_max(&self.nodes[l.fwd as usize].member) {
                    rank += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
        }
        (x != HEAD && r.gte_min(&self.nodes[x as usize].member)).then(|| (x, rank - 1))
    }

    fn lex_range_overlaps(&self, r: &LexRange) -> bool {
        if r.is_empty() || self.is_empty() {
            return false;
        }
        r.gte_min(&self.nodes[self.tail as usize].member) && r.lte_max(&self.nodes[self.first() as usize].member)
    }

    /// Elements with scores in `r`, ascending (or descending if `rev`).
    pub(crate) fn range_by_score<'a>(
        &'a self,
        r: &'a ScoreRange,
        rev: bool,
    ) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        let start = if rev { self.last_in_score(r) } else { self.first_in_score(r) };
        self.walk(start.map_or(NIL, |(x, _)| x), rev).take_while(move |&(_, s)| r.contains(s))
    }

    /// Elements with members in `r`, ascending (or descending if `rev`).
    pub(crate) fn range_by_lex<'a>(&'a self, r: &'a LexRange, rev: bool) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        let start = if rev { self.last_in_lex(r) } else { self.first_in_lex(r) };
        self.walk(start.map_or(NIL, |(x, _)| x), rev).take_while(move |&(m, _)| r.contains(m))
    }

    /// How many elements have scores in `r` (O(log n)).
    pub(crate) fn count_in_score(&self, r: &ScoreRange) -> usize {
        match (self.first_in_score(r), self.last_in_score(r)) {
            (Some((_, a)), Some((_, b))) if b >= a => b - a + 1,
            _ => 0,
        }
    }

    /// How many elements have members in `r` (O(log n)).
    pub(crate) fn count_in_lex(&self, r: &LexRange) -> usize {
        match (self.first_in_lex(r), self.last_in_lex(r)) {
            (Some((_, a)), Some((_, b))) if b >= a => b - a + 1,
            _ => 0,
        }
    }

    /// Removes the elements of 0-based ranks `start..=end`, calling
    /// `removed` for each in ascending order; returns how many went.
    pub(crate) fn remove_range_by_rank(&mut self, start: usize, end: usize, removed: impl FnMut(&[u8], f64)) -> usize {
        if start > end || start >= self.len() {
            return 0;
        }
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && traversed + (l.span as usize) <= start {
                    traversed += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let mut n = end - start + 1;
        self.delete_after(&update, |_, _| n.checked_sub(1).map(|v| n = v).is_some(), removed)
    }

    /// Removes the elements with scores in `r`; returns how many went.
    pub(crate) fn remove_range_by_score(&mut self, r: &ScoreRange) -> usize {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && !r.gte_min(self.nodes[l.fwd as usize].score) {
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        self.delete_after(&update, |_, s| r.lte_max(s), |_, _| {})
    }

    /// Removes the elements with members in `r`; returns how many went.
    pub(crate) fn remove_range_by_lex(&mut self, r: &LexRange) -> usize {
        let update = self.lex_predecessors(r);
        self.delete_after(&update, |m, _| r.lte_max(m), |_, _| {})
    }

    /// Whether [`ZSet::remove_range_by_lex`] would remove anything. (With
    /// mixed scores the members are not sorted, and this follows the same
    /// walk rather than [`ZSet::count_in_lex`].)
    pub(crate) fn lex_removal_nonempty(&self, r: &LexRange) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        let update = self.lex_predecessors(r);
        let x = self.level(update[0], 0).fwd;
        x != NIL && r.lte_max(&self.nodes[x as usize].member)
    }

    fn lex_predecessors(&self, r: &LexRange) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && !r.gte_min(&self.nodes[l.fwd as usize].member) {
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        update
    }

    /// Removes up to `count` lowest (or highest if `max`) elements and
    /// returns them in pop order.
    pub(crate) fn pop(&mut self, count: usize, max: bool) -> Vec<(Vec<u8>, f64)> {
        let len = self.len();
        let count = count.min(len);
        if count == 0 {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(count);
        let start = if max { len - count } else { 0 };
        self.remove_range_by_rank(start, start + count - 1, |m, s| out.push((m.to_vec(), s)));
        if max {
            out.reverse();
        }
        out
    }

    // ----- the skip list ---------------------------------------------------

    fn walk(&self, start: u32, rev: bool) -> Iter<'_> {
        Iter { z: self, cur: start, rev }
    }

    fn first(&self) -> u32 {
        if self.nodes.is_empty() {
            NIL
        } else {
            self.nodes[HEAD as usize].l0.fwd
        }
    }

    fn level(&self, x: u32, i: usize) -> Level {
        let n = &self.nodes[x as usize];
        if i == 0 {
            n.l0
        } else {
            n.up[i - 1]
        }
    }

    fn level_mut(&mut self, x: u32, i: usize) -> &mut Level {
        let n = &mut self.nodes[x as usize];
        if i == 0 {
            &mut n.l0
        } else {
            &mut n.up[i - 1]
        }
    }

    /// Whether node `x` sorts strictly before (`score`, `member`).
    fn before(&self, x: u32, score: f64, member: &[u8]) -> bool {
        let n = &self.nodes[x as usize];
        n.score < score || (n.score == score && *n.member < *member)
    }

    /// The node at 0-based rank `rank`, found through the spans.
    fn node_at(&self, rank: usize) -> Option<u32> {
        if rank >= self.len() {
            return None;
        }
        let target = rank + 1;
        let mut x = HEAD;
        let mut traversed = 0usize;
        for i in (0..self.levels).rev() {
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && traversed + (l.span as usize) <= target {
                    traversed += l.span as usize;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            if traversed == target {
                return Some(x);
            }
        }
        None
    }

    /// For each level, the last node sorting before (`score`, `member`).
    fn predecessors(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEAD; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.levels).rev() {
            loop {
                let f = self.level(x, i).fwd;
                if f != NIL && self.before(f, score, member) {
                    x = f;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        update
    }

    fn random_level() -> usize {
        // Each level is kept with probability 1/4 (Redis' ZSKIPLIST_P): two
        // more trailing zero bits per level.
        1 + ((fastrand::u64(..).trailing_zeros() / 2) as usize).min(MAX_LEVEL - 1)
    }

    fn ensure_header(&mut self) {
        if self.nodes.is_empty() {
            let member: Arc<[u8]> = Arc::from(&[][..]);
            self.elem_bytes += member_bytes(0);
            self.nodes.push(Node { member, score: 0.0, back: NIL, l0: EMPTY_LEVEL, up: Box::new([]) });
            self.free = NIL;
            self.nfree = 0;
            self.tail = NIL;
            self.levels = 1;
        }
    }

    fn alloc_node(&mut self, member: Arc<[u8]>, score: f64, height: usize) -> u32 {
        self.elem_bytes += levels_bytes(height - 1);
        let node = Node { member, score, back: NIL, l0: EMPTY_LEVEL, up: vec![EMPTY_LEVEL; height - 1].into() };
        if self.free != NIL {
            let x = self.free;
            self.free = self.nodes[x as usize].back;
            self.nfree -= 1;
            self.nodes[x as usize] = node;
            x
        } else {
            debug_assert!(self.nodes.len() < NIL as usize);
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn free_node(&mut self, x: u32) {
        let placeholder = self.nodes[HEAD as usize].member.clone();
        let free = self.free;
        let n = &mut self.nodes[x as usize];
        let up = std::mem::take(&mut n.up);
        n.member = placeholder;
        n.score = 0.0;
        n.back = free;
        n.l0 = EMPTY_LEVEL;
        self.elem_bytes -= levels_bytes(up.len());
        self.free = x;
        self.nfree += 1;
    }

    /// Links a new node for (`score`, `member`), which must not be present.
    fn link(&mut self, score: f64, member: Arc<[u8]>) {
        self.ensure_header();
        let mut update = [HEAD; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let mut x = HEAD;
        for i in (0..self.levels).rev() {
            rank[i] = if i + 1 == self.levels { 0 } else { rank[i + 1] };
            loop {
                let l = self.level(x, i);
                if l.fwd != NIL && self.before(l.fwd, score, &member) {
                    rank[i] += l.span;
                    x = l.fwd;
                } else {
                    break;
                }
            }
            update[i] = x;
        }
        let height = Self::random_level();
        if height > self.levels {
            let have = self.nodes[HEAD as usize].height();
            if height > have {
                let head = &mut self.nodes[HEAD as usize];
                let mut up = std::mem::take(&mut head.up).into_vec();
                up.resize(height - 1, EMPTY_LEVEL);
                head.up = up.into_boxed_slice();
                self.elem_bytes = self.elem_bytes - levels_bytes(have - 1) + levels_bytes(height - 1);
            }
            // The dict already holds the new member: the old length is one less.
            let old_len = (self.len() - 1) as u32;
            for i in self.levels..height {
                rank[i] = 0;
                update[i] = HEAD;
                *self.level_mut(HEAD, i) = Level { fwd: NIL, span: old_len };
            }
            self.levels = height;
        }
        let x = self.alloc_node(member, score, height);
        for i in 0..height {
            let u = self.level(update[i], i);
            let before = rank[0] - rank[i];
            *self.level_mut(x, i) = Level { fwd: u.fwd, span: u.span - before };
            *self.level_mut(update[i], i) = Level { fwd: x, span: before + 1 };
        }
        for (i, &u) in update.iter().enumerate().take(self.levels).skip(height) {
            self.level_mut(u, i).span += 1;
        }
        self.nodes[x as usize].back = if update[0] == HEAD { NIL } else { update[0] };
        let next = self.nodes[x as usize].l0.fwd;
        if next != NIL {
            self.nodes[next as usize].back = x;
        } else {
            self.tail = x;
        }
    }

    /// Unlinks node `x` given its predecessors at every level.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        for (i, &u) in update.iter().enumerate().take(self.levels) {
            let ul = self.level(u, i);
            if ul.fwd == x {
                let xl = self.level(x, i);
                *self.level_mut(u, i) = Level { fwd: xl.fwd, span: ul.span + xl.span - 1 };
            } else {
                self.level_mut(u, i).span -= 1;
            }
        }
        let (next, back) = (self.nodes[x as usize].l0.fwd, self.nodes[x as usize].back);
        if next != NIL {
            self.nodes[next as usize].back = back;
        } else {
            self.tail = back;
        }
        while self.levels > 1 && self.level(HEAD, self.levels - 1).fwd == NIL {
            *self.level_mut(HEAD, self.levels - 1) = EMPTY_LEVEL;
            self.levels -= 1;
        }
    }

    /// Moves an existing member from `old` to `score`, in place when its
    /// position does not change (Redis' zslUpdateScore).
    fn rescore(&mut self, old: f64, member: Arc<[u8]>, score: f64) {
        let update = self.predecessors(old, &member);
        let x = self.level(update[0], 0).fwd;
        debug_assert!(x != NIL && *self.nodes[x as usize].member == *member);
        let (back, next) = (self.nodes[x as usize].back, self.nodes[x as usize].l0.fwd);
        let after_back = back == NIL || self.before(back, score, &member);
        let before_next = next == NIL || {
            let n = &self.nodes[next as usize];
            n.score > score || (n.score == score && *n.member > *member)
        };
        if after_back && before_next {
            self.nodes[x as usize].score = score;
            return;
        }
        self.unlink(x, &update);
        self.free_node(x);
        self.link(score, member);
    }

    /// Deletes nodes following `update[0]` while `more` says so.
    fn delete_after(
        &mut self,
        update: &[u32; MAX_LEVEL],
        mut more: impl FnMut(&[u8], f64) -> bool,
        mut removed: impl FnMut(&[u8], f64),
    ) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut count = 0;
        loop {
            let x = self.level(update[0], 0).fwd;
            if x == NIL {
                break;
            }
            let n = &self.nodes[x as usize];
            if !more(&n.member, n.score) {
                break;
            }
            removed(&n.member, n.score);
            let member = n.member.clone();
            self.unlink(x, update);
            self.free_node(x);
            self.dict.remove(&member);
            self.elem_bytes -= member_bytes(member.len());
            count += 1;
        }
        self.maybe_shrink();
        count
    }

    /// Releases everything once empty; rebuilds the arena densely once most
    /// of it is free.
    fn maybe_shrink(&mut self) {
        if self.dict.is_empty() {
            *self = ZSet::default();
            return;
        }
        if self.nodes.len() >= 64 && self.nfree * 4 >= self.nodes.len() * 3 {
            self.compact();
        }
    }

    fn compact(&mut self) {
        let placeholder = self.nodes[HEAD as usize].member.clone();
        let mut old = std::mem::take(&mut self.nodes);
        let mut map = vec![NIL; old.len()];
        let mut order = Vec::with_capacity(self.len() + 1);
        let mut x = HEAD;
        while x != NIL {
            map[x as usize] = order.len() as u32;
            order.push(x);
            x = old[x as usize].l0.fwd;
        }
        let remap = |p: u32| if p == NIL { NIL } else { map[p as usize] };
        let mut nodes = Vec::with_capacity(order.len());
        for &o in &order {
            let blank = Node { member: placeholder.clone(), score: 0.0, back: NIL, l0: EMPTY_LEVEL, up: Box::new([]) };
            let mut n = std::mem::replace(&mut old[o as usize], blank);
            n.back = remap(n.back);
            n.l0.fwd = remap(n.l0.fwd);
            for l in n.up.iter_mut() {
                l.fwd = remap(l.fwd);
            }
            nodes.push(n);
        }
        self.tail = remap(self.tail);
        self.nodes = nodes;
        self.free = NIL;
        self.nfree = 0;
    }

    /// Checks every invariant; for tests.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        if self.nodes.is_empty() {
            assert!(self.dict.is_empty());
            assert_eq!(self.mem(), self.dict.overhead_bytes());
            return;
        }
        // Level 0: order, back pointers, tail, dict agreement.
        let mut chain = vec![];
        let mut x = self.nodes[0].l0.fwd;
        let mut prev = NIL;
        while x != NIL {
            let n = &self.nodes[x as usize];
            assert_eq!(n.back, prev, "back pointer of {x}");
            assert!(n.height() <= self.levels);
            if prev != NIL {
                assert!(self.before(prev, n.score, &n.member), "order at {x}");
            }
            assert_eq!(self.dict.get(&n.member).map(|e| e.score), Some(n.score));
            chain.push(x);
            prev = x;
            x = n.l0.fwd;
        }
        assert_eq!(chain.len(), self.len());
        assert_eq!(self.tail, prev);
        let pos: std::collections::HashMap<u32, usize> = chain.iter().enumerate().map(|(i, &x)| (x, i + 1)).collect();
        // Spans at every level, from the header (rank 0) too.
        for i in 0..self.levels {
            let mut x = HEAD;
            let mut r = 0;
            loop {
                let l = self.level(x, i);
                if l.fwd == NIL {
                    assert_eq!(l.span as usize, self.len() - r, "span to end at level {i}");
                    break;
                }
                let fr = pos[&l.fwd];
                assert_eq!(l.span as usize, fr - r, "span at level {i}");
                r = fr;
                x = l.fwd;
            }
        }
        assert!(self.levels == 1 || self.level(HEAD, self.levels - 1).fwd != NIL);
        // Free list and memory.
        let mut nfree = 0;
        let mut f = self.free;
        while f != NIL {
            nfree += 1;
            f = self.nodes[f as usize].back;
        }
        assert_eq!(nfree, self.nfree);
        assert_eq!(self.nodes.len(), self.len() + 1 + nfree);
        let elem: usize = self.iter().map(|(m, _)| member_bytes(m.len())).sum::<usize>()
            + member_bytes(0)
            + self.nodes.iter().map(|n| levels_bytes(n.up.len())).sum::<usize>();
        assert_eq!(self.elem_bytes, elem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The model: (score, member) sorted like the skip list.
    fn model_sort(v: &mut [(f64, Vec<u8>)]) {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    }

    fn zs(pairs: &[(&str, f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in pairs {
            z.insert(m.as_bytes(), *s);
        }
        z
    }

    fn members<'a>(it: impl Iterator<Item = (&'a [u8], f64)>) -> Vec<String> {
        it.map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect()
    }

    #[test]
    fn basic_order_rank_and_update() {
        let mut z = zs(&[("c", 3.0), ("a", 1.0), ("b", 2.0), ("bb", 2.0)]);
        z.check();
        assert_eq!(members(z.iter()), ["a", "b", "bb", "c"]);
        assert_eq!(members(z.iter_from_rank(3, true)), ["c", "bb", "b", "a"]);
        assert_eq!(z.rank(b"bb"), Some(2));
        assert_eq!(z.rank(b"zz"), None);
        assert_eq!(z.get_by_rank(3), Some((&b"c"[..], 3.0)));
        assert_eq!(z.get_by_rank(4), None);
        assert!(!z.insert(b"a", 10.0));
        z.check();
        assert_eq!(members(z.iter()), ["b", "bb", "c", "a"]);
        // In-place update keeps the position.
        assert!(!z.insert(b"bb", 2.5));
        z.check();
        assert_eq!(z.score(b"bb"), Some(2.5));
        assert!(z.remove(b"c"));
        assert!(!z.remove(b"c"));
        z.check();
        assert_eq!(members(z.iter()), ["b", "bb", "a"]);
        let c = z.clone();
        c.check();
        assert_eq!(format!("{c:?}"), format!("{z:?}"));
        for m in ["a", "b", "bb"] {
            z.remove(m.as_bytes());
        }
        z.check();
        assert_eq!(z.mem(), 0);
    }

    #[test]
    fn ranges_and_counts() {
        let z = zs(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)]);
        let r = ScoreRange { min: 2.0, max: 3.0, minex: false, maxex: false };
        assert_eq!(members(z.range_by_score(&r, false)), ["b", "c"]);
        assert_eq!(members(z.range_by_score(&r, true)), ["c", "b"]);
        assert_eq!(z.count_in_score(&r), 2);
        let r = ScoreRange { min: 2.0, max: 3.0, minex: true, maxex: true };
        assert_eq!(z.count_in_score(&r), 0);
        let r = ScoreRange { min: f64::NEG_INFINITY, max: f64::INFINITY, minex: false, maxex: false };
        assert_eq!(z.count_in_score(&r), 4);
        let l = LexRange { min: LexBound::Excl(b"a".to_vec()), max: LexBound::Incl(b"c".to_vec()) };
        assert_eq!(members(z.range_by_lex(&l, false)), ["b", "c"]);
        assert_eq!(members(z.range_by_lex(&l, true)), ["c", "b"]);
        assert_eq!(z.count_in_lex(&l), 2);
        let l = LexRange { min: LexBound::PosInf, max: LexBound::NegInf };
        assert_eq!(z.count_in_lex(&l), 0);
        let l = LexRange { min: LexBound::NegInf, max: LexBound::NegInf };
        assert_eq!(z.count_in_lex(&l), 0);
        assert_eq!(members(z.iter_from_rank(2, true)), ["c", "b", "a"]);
    }

    #[test]
    fn pops() {
        let mut z = zs(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
        assert_eq!(z.pop(2, true), vec![(b"c".to_vec(), 3.0), (b"b".to_vec(), 2.0)]);
        z.check();
        assert_eq!(z.pop(5, false), vec![(b"a".to_vec(), 1.0)]);
        z.check();
        assert!(z.is_empty());
        assert!(z.pop(1, false).is_empty());
    }

    /// Random operations against a sorted Vec model: ranks, ranges, deletes.
    #[test]
    fn randomized_against_model() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        for round in 0..30 {
            let mut z = ZSet::default();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            let universe = [8, 50, 400][round % 3];
            // Lex ranges assume equal scores (Redis leaves mixed scores
            // unspecified), so every other round uses only score 0.
            let equal = round % 2 == 1;
            for step in 0..1500 {
                let m = format!("m{}", rng.usize(..universe)).into_bytes();
                // Few distinct scores, so ties ordered by member are common.
                let s = if equal { 0.0 } else { f64::from(rng.i32(-20..20)) / 2.0 };
                match rng.u8(..100) {
                    0..=49 => {
                        let new = !model.iter().any(|(_, x)| *x == m);
                        assert_eq!(z.insert(&m, s), new);
                        model.retain(|(_, x)| *x != m);
                        model.push((s, m));
                        model_sort(&mut model);
                    }
                    50..=69 => {
                        let had = model.iter().any(|(_, x)| *x == m);
                        assert_eq!(z.remove(&m), had);
                        model.retain(|(_, x)| *x != m);
                    }
                    70..=74 if !model.is_empty() => {
                        let a = rng.usize(..model.len());
                        let b = rng.usize(a..model.len());
                        let mut gone = vec![];
                        assert_eq!(z.remove_range_by_rank(a, b, |m, s| gone.push((s, m.to_vec()))), b - a + 1);
                        assert_eq!(gone, model.drain(a..=b).collect::<Vec<_>>());
                    }
                    75..=79 => {
                        let (lo, hi) = (f64::from(rng.i32(-22..22)) / 2.0, f64::from(rng.i32(-22..22)) / 2.0);
                        let r = ScoreRange { min: lo, max: hi, minex: rng.bool(), maxex: rng.bool() };
                        let before = model.len();
                        model.retain(|(s, _)| !r.contains(*s));
                        assert_eq!(z.remove_range_by_score(&r), before - model.len());
                    }
                    80..=84 if equal => {
                        let l = random_lex(&mut rng, universe);
                        let before = model.len();
                        model.retain(|(_, m)| !l.contains(m));
                        assert_eq!(z.remove_range_by_lex(&l), before - model.len());
                    }
                    _ => {
                        let r = ScoreRange {
                            min: f64::from(rng.i32(-22..22)) / 2.0,
                            max: f64::from(rng.i32(-22..22)) / 2.0,
                            minex: rng.bool(),
                            maxex: rng.bool(),
                        };
                        let want: Vec<_> = model.iter().filter(|(s, _)| r.contains(*s)).cloned().collect();
                        let got: Vec<_> = z.range_by_score(&r, false).map(|(m, s)| (s, m.to_vec())).collect();
                        assert_eq!(got, want);
                        let mut got_rev: Vec<_> = z.range_by_score(&r, true).map(|(m, s)| (s, m.to_vec())).collect();
                        got_rev.reverse();
                        assert_eq!(got_rev, want);
                        assert_eq!(z.count_in_score(&r), want.len());
                        let l = random_lex(&mut rng, universe);
                        let want: Vec<_> = model.iter().filter(|(_, m)| l.contains(m)).cloned().collect();
                        if equal {
                            let got: Vec<_> = z.range_by_lex(&l, false).map(|(m, s)| (s, m.to_vec())).collect();
                            assert_eq!(got, want);
                            assert_eq!(z.count_in_lex(&l), want.len());
                        }
                    }
                }
                if step % 97 == 0 || universe == 8 {
                    z.check();
                }
                assert_eq!(z.len(), model.len());
                if !model.is_empty() {
                    let i = rng.usize(..model.len());
                    assert_eq!(z.get_by_rank(i), Some((&model[i].1[..], model[i].0)));
                    assert_eq!(z.rank(&model[i].1), Some(i));
                    assert_eq!(z.score(&model[i].1), Some(model[i].0));
                    let got: Vec<_> = z.iter_from_rank(i, false).map(|(m, s)| (s, m.to_vec())).collect();
                    assert_eq!(got, model[i..]);
                }
            }
            z.check();
            let got: Vec<_> = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
            assert_eq!(got, model);
        }
    }

    fn random_lex(rng: &mut fastrand::Rng, universe: usize) -> LexRange {
        let bound = |rng: &mut fastrand::Rng| {
            let v = format!("m{}", rng.usize(..universe)).into_bytes();
            match rng.u8(..10) {
                0 => LexBound::NegInf,
                1 => LexBound::PosInf,
                2..=5 => LexBound::Incl(v),
                _ => LexBound::Excl(v),
            }
        };
        LexRange { min: bound(rng), max: bound(rng) }
    }

    #[test]
    fn lex_ranges_on_equal_scores() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut z = ZSet::default();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for i in 0..300 {
            let m = format!("m{}", rng.usize(..200)).into_bytes();
            if z.insert(&m, 0.0) {
                model.push(m);
            }
            if i % 3 == 0 {
                let m = format!("m{}", rng.usize(..200)).into_bytes();
                if z.remove(&m) {
                    model.retain(|x| *x != m);
                }
            }
        }
        model.sort();
        for _ in 0..500 {
            let l = random_lex(&mut rng, 200);
            let want: Vec<_> = model.iter().filter(|m| l.contains(m)).cloned().collect();
            let got: Vec<_> = z.range_by_lex(&l, false).map(|(m, _)| m.to_vec()).collect();
            assert_eq!(got, want, "{l:?}");
            let mut rev: Vec<_> = z.range_by_lex(&l, true).map(|(m, _)| m.to_vec()).collect();
            rev.reverse();
            assert_eq!(rev, want);
            assert_eq!(z.count_in_lex(&l), want.len());
        }
        z.check();
    }

    #[test]
    fn arena_compacts_and_memory_is_exact() {
        let mut z = ZSet::default();
        for i in 0..5000 {
            z.insert(format!("member-{i}").as_bytes(), f64::from(i % 97));
        }
        z.check();
        let big = z.mem();
        for i in 0..4990 {
            assert!(z.remove(format!("member-{i}").as_bytes()));
        }
        z.check();
        assert!(z.nodes.len() < 100, "arena not compacted: {}", z.nodes.len());
        assert!(z.mem() < big / 10);
        assert_eq!(z.remove_range_by_rank(0, 100, |_, _| {}), 10);
        assert_eq!(z.mem(), 0);
    }

    #[test]
    fn random_and_scan_cover_members() {
        let z = zs(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (m, s) = z.random(&mut rng).map(|(m, s)| (m.to_vec(), s)).unwrap_or_default();
            assert_eq!(z.score(&m), Some(s));
            seen.insert(m);
        }
        assert_eq!(seen.len(), 3);
        let mut scanned = vec![];
        let mut cursor = 0;
        loop {
            cursor = z.scan(cursor, |m, s| scanned.push((m.to_vec(), s)));
            if cursor == 0 {
                break;
            }
        }
        scanned.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(scanned, vec![(b"a".to_vec(), 1.0), (b"b".to_vec(), 2.0), (b"c".to_vec(), 3.0)]);
    }
}
