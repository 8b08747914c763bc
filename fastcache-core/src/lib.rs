//! `fastcache-core` — FastCache's engine.
//!
//! An embeddable, thread-safe Redis keyspace: 16 logical databases of
//! strings, lists, hashes, sets and sorted sets with TTLs, eviction under
//! `maxmemory`, and MULTI/EXEC/WATCH, executing Redis commands given as
//! argument vectors and answering typed [`Reply`] values with Redis 7's
//! semantics and error strings. The server, WAL replay and replication all
//! go through [`Engine::execute_with`] / [`Engine::apply_record_with`], one
//! code path.
//!
//! What it is not: it does no I/O, knows no protocol and starts no
//! threads. Time comes from a [`Clock`]; persistence plugs in as a
//! [`Journal`] that receives each write's deterministic [`Record`] while
//! the written keys are still locked.
//!
//! ```
//! use fastcache_core::{Engine, Record, Reply};
//!
//! let engine = Engine::default();
//! let mut session = engine.session();
//! let mut log: Vec<Record> = Vec::new();
//! let mut journal = |r: &Record| {
//!     log.push(r.clone());
//!     Ok(())
//! };
//! let out = engine.execute_with(&mut session, &[b"SET", b"k", b"v", b"EX", b"60"], &mut journal);
//! assert_eq!(out.reply, Reply::OK);
//! // The relative TTL was logged as an absolute one.
//! assert_eq!(log[0].ops[0].argv[3].0, b"PXAT");
//!
//! // Replaying the log onto an empty engine rebuilds the same state.
//! let copy = Engine::default();
//! for r in &log {
//!     copy.apply_record(r).unwrap();
//! }
//! assert_eq!(copy.execute(&mut copy.session(), &[b"GET", b"k"]), Reply::Bulk(b"v".to_vec()));
//! ```

mod changes;
mod clock;
mod commands;
mod cx;
mod dump;
mod engine;
mod error;
mod evict;
mod expire;
mod keyspace;
pub mod notify;
mod record;
mod reply;
mod snapshot;
mod table;
#[cfg(test)]
mod testutil;
mod types;
pub mod util;

pub use changes::{decode_changes, ChangeCursor, ChangeEntry, IncrementalError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use commands::{flags, CommandSpec, LockSet};
pub use dump::{ByteStr, ValueDto, DUMP_VERSION};
pub use engine::{Engine, EngineConfig, Journal, JournalError, NoJournal, Outcome, Session, Stats};
pub use error::{Error, Result};
pub use evict::EvictionPolicy;
pub use expire::ExpireReport;
pub use record::{Arg, Op, OpRef, Record, RecordRef, RECORD_VERSION};
pub use reply::{errors, Reply};
pub use snapshot::{decode_entries, SnapshotBusy, SnapshotCursor, SnapshotEntry, SnapshotLoadError};
