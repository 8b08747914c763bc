//! The command table: every command the engine executes, its arity, flags,
//! the keys it touches, and its handler.
//!
//! A handler is `fn(&mut Cx, argv) -> Reply`. It validates every argument
//! before it writes anything, so an error reply always means "nothing
//! changed" (the engine records no effect for it). Each file holds one
//! family of commands and exports its `COMMANDS` table.

use std::collections::HashMap;
use std::sync::OnceLock;

use smallvec::SmallVec;

use crate::cx::Cx;
use crate::reply::Reply;

mod hash;
mod keys;
mod list;
mod server;
mod set;
mod sort;
mod string;
mod zset;

/// A command handler.
pub(crate) type Handler = fn(&mut Cx<'_>, &[&[u8]]) -> Reply;

/// Which argument positions are keys, for commands whose keys are not a
/// fixed range (ZUNIONSTORE's `numkeys`, SORT's patterns, …).
pub(crate) type KeysFn = fn(&[&[u8]]) -> LockSet;

/// Command flags (a subset of Redis' command flags, same meaning).
pub mod flags {
    /// May modify the dataset.
    pub const WRITE: u32 = 1 << 0;
    /// Never modifies the dataset.
    pub const READONLY: u32 = 1 << 1;
    /// May use more memory; refused when over `maxmemory` with no room.
    pub const DENYOOM: u32 = 1 << 2;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 3;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 4;
    /// Touches every key: locks every shard.
    pub const ALL_KEYS: u32 = 1 << 5;
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH: handled by the session, never
    /// queued.
    pub const TRANSACTION: u32 = 1 << 6;
    /// Key positions depend on other arguments.
    pub const MOVABLE_KEYS: u32 = 1 << 7;
    /// Uses randomness; its effect is logged in a deterministic form.
    pub const RANDOM: u32 = 1 << 8;
}

/// Which shards a command must lock.
pub enum LockSet {
    /// Touches no key.
    None,
    /// Touches potentially every key.
    All,
    /// The keys at these argument positions.
    Args(SmallVec<[usize; 4]>),
}

/// A command: name, Redis' arity convention (`n` exactly n arguments
/// including the name, `-n` at least n), flags, and Redis' legacy key
/// specification (first key, last key, step) as COMMAND reports it.
#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Arity (Redis convention).
    pub arity: i32,
    /// [`flags`] bits.
    pub flags: u32,
    /// Position of the first key (0 = none).
    pub first_key: i32,
    /// Position of the last key (negative counts from the end).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// The command group, as in COMMAND DOCS (`string`, `list`, …).
    pub group: &'static str,
    pub(crate) keys: Option<KeysFn>,
    pub(crate) handler: Handler,
}

impl std::fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSpec").field("name", &self.name).field("arity", &self.arity).finish()
    }
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) fit the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether the command may modify data.
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    /// Whether the command is refused when over `maxmemory`.
    pub fn denies_oom(&self) -> bool {
        self.flags & flags::DENYOOM != 0
    }

    /// MULTI/EXEC/DISCARD/WATCH/UNWATCH.
    pub fn is_transaction_control(&self) -> bool {
        self.flags & flags::TRANSACTION != 0
    }

    /// The shards this invocation must lock.
    pub fn lock_set(&self, argv: &[&[u8]]) -> LockSet {
        if self.flags & flags::ALL_KEYS != 0 {
            return LockSet::All;
        }
        if let Some(f) = self.keys {
            return f(argv);
        }
        key_range(argv, self.first_key, self.last_key, self.step)
    }

    /// The key arguments of this invocation (`None`: it may touch any key).
    pub fn keys<'a>(&self, argv: &[&'a [u8]]) -> Option<Vec<&'a [u8]>> {
        match self.lock_set(argv) {
            LockSet::None => Some(Vec::new()),
            LockSet::All => None,
            LockSet::Args(p) => Some(p.into_iter().filter_map(|i| argv.get(i).copied()).collect()),
        }
    }
}

/// Keys at `first..=last` every `step` (negative `last` counts from the end).
pub(crate) fn key_range(argv: &[&[u8]], first: i32, last: i32, step: i32) -> LockSet {
    if first <= 0 {
        return LockSet::None;
    }
    let argc = argv.len() as i32;
    let last = if last < 0 { argc + last } else { last.min(argc - 1) };
    let mut out = SmallVec::new();
    let mut i = first;
    while i <= last {
        out.push(i as usize);
        i += step.max(1);
    }
    LockSet::Args(out)
}

/// Builds a [`CommandSpec`] with the usual key range.
pub(crate) const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    (first_key, last_key, step): (i32, i32, i32),
    group: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key, last_key, step, group, keys: None, handler }
}

/// Builds a [`CommandSpec`] whose keys a function finds.
pub(crate) const fn cmd_keys(
    name: &'static str,
    arity: i32,
    flags: u32,
    (first_key, last_key, step): (i32, i32, i32),
    group: &'static str,
    keys: KeysFn,
    handler: Handler,
) -> CommandSpec {
    CommandSpec { name, arity, flags, first_key, last_key, step, group, keys: Some(keys), handler }
}

struct Table {
    all: Vec<CommandSpec>,
    by_name: HashMap<&'static [u8], usize, foldhash::fast::FixedState>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all: Vec<CommandSpec> = [
            string::COMMANDS,
            keys::COMMANDS,
            list::COMMANDS,
            hash::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            sort::COMMANDS,
            server::COMMANDS,
        ]
        .concat();
        let by_name = all.iter().enumerate().map(|(i, c)| (c.name.as_bytes(), i)).collect();
        Table { all, by_name }
    })
}

/// Finds a command by name, case-insensitively.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (b, c) in buf.iter_mut().zip(name) {
        *b = c.to_ascii_lowercase();
    }
    let t = table();
    t.by_name.get(&buf[..name.len()]).map(|&i| &t.all[i])
}

/// Every command.
pub(crate) fn all() -> &'static [CommandSpec] {
    &table().all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "duplicate command {}", c.name);
            assert!(c.arity != 0, "{} has arity 0", c.name);
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn key_ranges() {
        let argv: [&[u8]; 5] = [b"mset", b"a", b"1", b"b", b"2"];
        match key_range(&argv, 1, -1, 2) {
            LockSet::Args(p) => assert_eq!(p.as_slice(), &[1, 3]),
            _ => panic!("expected keys"),
        }
    }
}
