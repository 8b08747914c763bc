//! The in-memory representations of Redis' collection types, one file per
//! type. Each keeps a running count of the heap bytes it holds so memory
//! accounting never has to walk a collection.
//!
//! These are engine-internal types; what is persisted is the
//! [`Record`](crate::Record) (and, later, snapshot DTOs), never these.

mod hash;
mod list;
mod set;
mod zset;

pub(crate) use hash::Hash;
pub(crate) use list::{End, List};
pub(crate) use set::Set;
pub(crate) use zset::{LexBound, LexRange, ScoreRange, ZSet};
