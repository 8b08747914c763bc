//! Helpers for the engine's unit tests: run commands as text, keep the
//! journal, and check that replaying it rebuilds the same state.

use std::collections::BTreeMap;

use crate::clock::ManualClock;
use crate::engine::{Engine, EngineConfig, Session};
use crate::record::Record;
use crate::reply::Reply;

/// A test engine with a manual clock (starting at 1,000,000,000,000 ms)
/// and a journal that keeps every record.
pub(crate) struct T {
    pub(crate) engine: Engine,
    pub(crate) session: Session,
    pub(crate) clock: ManualClock,
    pub(crate) log: Vec<Record>,
}

impl T {
    pub(crate) fn new() -> T {
        let clock = ManualClock::new(1_000_000_000_000);
        let engine = Engine::new(EngineConfig { clock: std::sync::Arc::new(clock.clone()), ..EngineConfig::default() });
        let session = engine.session();
        T { engine, session, clock, log: Vec::new() }
    }

    /// Runs a command given as whitespace-free words.
    pub(crate) fn run(&mut self, args: &[&str]) -> Reply {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.run_bytes(&argv)
    }

    /// Runs a command that must not fail.
    pub(crate) fn ok(&mut self, args: &[&str]) -> Reply {
        let r = self.run(args);
        assert!(!r.is_error(), "{args:?} failed: {r:?}");
        r
    }

    pub(crate) fn run_bytes(&mut self, argv: &[&[u8]]) -> Reply {
        let log = &mut self.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        self.engine.execute_with(&mut self.session, argv, &mut journal).reply
    }

    /// The ops of the last journal record, as text.
    pub(crate) fn last_ops(&self) -> Vec<Vec<String>> {
        self.log
            .last()
            .map(|r| {
                r.ops
                    .iter()
                    .map(|op| op.argv.iter().map(|a| String::from_utf8_lossy(&a.0).into_owned()).collect())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replays the journal into a fresh engine and asserts that both hold
    /// the same keys, values and deadlines.
    pub(crate) fn check_replay(&self) {
        let copy =
            Engine::new(EngineConfig { clock: std::sync::Arc::new(self.clock.clone()), ..EngineConfig::default() });
        for (i, r) in self.log.iter().enumerate() {
            if let Err(e) = copy.apply_record(r) {
                panic!("replaying record {i} {r:?} failed: {e}");
            }
        }
        assert_eq!(state(&self.engine), state(&copy), "replayed state differs; log: {:?}", self.log);
    }
}

/// A canonical dump of every key: (db, key) → (type and value rendered in a
/// stable order, deadline).
pub(crate) fn state(engine: &Engine) -> BTreeMap<(usize, Vec<u8>), (String, u64)> {
    let mut out = BTreeMap::new();
    for s in engine.0.shards.iter() {
        let s = s.lock();
        for (dbi, db) in s.dbs.iter().enumerate() {
            for e in db.keys.iter() {
                use crate::table::Keyed;
                out.insert((dbi, e.key().to_vec()), (e.canonical(), e.deadline));
            }
        }
    }
    out
}

/// A bulk reply from text.
pub(crate) fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// An array of bulk replies from text.
pub(crate) fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| bulk(s)).collect())
}

/// An error reply from text.
pub(crate) fn err(s: &str) -> Reply {
    Reply::Error(s.to_string().into())
}
