//! A chain: one full backup (the base) and the incremental backups after
//! it, each starting where the one before it ends. Verifying and loading.
//!
//! # Invariants
//! - `incrementals[0].from_lsn == base.to_lsn` and
//!   `incrementals[i].from_lsn == incrementals[i - 1].to_lsn`: applied in
//!   order on the base, the links give the state at each link's `to_lsn`
//!   with no record of the log missing. A chain that breaks this (a
//!   hand-edited manifest) is reported, never loaded.
//! - A link's file header agrees with the manifest (kind, LSNs, creation
//!   time, keys, size): a file swapped for another is a `Mismatch`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastcache_core::Engine;
use fastcache_snapshot::{LoadError, SnapshotError, SnapshotKind, SnapshotReader};

use crate::error::{ChainProblem, Error, Result};
use crate::manifest;
use crate::naming::parse_chain_dir_name;

/// What a backup file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// Every key as it was at `to_lsn` (a snapshot file).
    Full,
    /// The keys written or deleted after `from_lsn` up to `to_lsn`, as they
    /// were at `to_lsn`, and the databases cleared in between.
    Incremental,
}

/// One backup file of a chain, as the chain's manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// Full or incremental.
    pub kind: LinkKind,
    /// The file.
    pub path: PathBuf,
    /// The LSN the previous link ends at (0 for a full backup: it starts at
    /// the beginning of history).
    pub from_lsn: u64,
    /// The state it gives is that of the log up to and including this LSN.
    pub to_lsn: u64,
    /// When that state was current: unix milliseconds by the engine's
    /// clock, read at the backup's barrier (for a consolidated base, the
    /// time of the link it was consolidated up to).
    pub created_unix_ms: u64,
    /// Entries in the file: keys for a full backup; changed keys,
    /// deletions and cleared-database markers for an incremental one.
    pub keys: u64,
    /// The file's length.
    pub file_bytes: u64,
}

/// A base and the incrementals after it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The chain's directory (`chain-<base lsn>-<created>`).
    pub dir: PathBuf,
    /// The full backup the chain starts with.
    pub base: Link,
    /// The incremental backups, in order.
    pub incrementals: Vec<Link>,
}

impl Chain {
    /// Reads the chain in `dir` from its manifest (no backup file is read).
    ///
    /// # Errors
    /// `Io` if the manifest cannot be read (`NotFound` included),
    /// `Corrupted` / `UnsupportedVersion` if it does not parse, `Corrupted`
    /// if the directory's name disagrees with the base it lists.
    pub fn open(dir: &Path) -> Result<Chain> {
        let mut links = manifest::read(dir)?.into_iter();
        let Some(base) = links.next() else {
            return Err(Error::Corrupted { file: manifest::path_in(dir), offset: 0, reason: "no base".into() });
        };
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if parse_chain_dir_name(name) != Some((base.to_lsn, base.created_unix_ms)) {
            return Err(Error::Corrupted {
                file: manifest::path_in(dir),
                offset: 0,
                reason: format!(
                    "the chain directory's name does not match its base (LSN {}, created {})",
                    base.to_lsn, base.created_unix_ms
                ),
            });
        }
        Ok(Chain { dir: dir.to_path_buf(), base, incrementals: links.collect() })
    }

    /// The links, base first.
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        std::iter::once(&self.base).chain(&self.incrementals)
    }

    /// The last link.
    pub fn tip(&self) -> &Link {
        self.incrementals.last().unwrap_or(&self.base)
    }

    /// The LSN the whole chain restores to (its last link's).
    pub fn lsn(&self) -> u64 {
        self.tip().to_lsn
    }

    /// The chain's manifest.
    pub fn manifest_path(&self) -> PathBuf {
        manifest::path_in(&self.dir)
    }
}

/// What [`verify_chain`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain's directory.
    pub dir: PathBuf,
    /// Files checked (base included).
    pub links: usize,
    /// The base's LSN.
    pub base_lsn: u64,
    /// The last link's LSN.
    pub lsn: u64,
    /// Sum of the files' entries.
    pub keys: u64,
    /// Sum of the files' lengths.
    pub file_bytes: u64,
    /// Sum of the files' payload bytes before compression.
    pub raw_bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// Gaps between the links of `links` (base first), without reading files.
fn structure_problems(links: &[&Link]) -> Vec<ChainProblem> {
    let mut problems = Vec::new();
    for pair in links.windows(2) {
        let (prev, link) = (pair[0], pair[1]);
        if link.from_lsn != prev.to_lsn {
            problems.push(ChainProblem::Gap {
                file: link.path.clone(),
                from_lsn: link.from_lsn,
                expected_from: prev.to_lsn,
                previous: prev.path.clone(),
            });
        }
    }
    problems
}

/// Opens a link's file and checks that its header and footer verify and
/// agree with the manifest. `Err` for an operation that failed (not a
/// problem of the chain).
fn open_link(link: &Link) -> Result<std::result::Result<SnapshotReader, ChainProblem>> {
    let reader = match SnapshotReader::open(&link.path) {
        Ok(r) => r,
        Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Err(ChainProblem::Missing {
                file: link.path.clone(),
                from_lsn: link.from_lsn,
                to_lsn: link.to_lsn,
            }));
        }
        Err(e) if e.is_corruption() => {
            return Ok(Err(ChainProblem::Damaged {
                file: link.path.clone(),
                from_lsn: link.from_lsn,
                to_lsn: link.to_lsn,
                error: e,
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let info = reader.info();
    let kind = match link.kind {
        LinkKind::Full => SnapshotKind::Full,
        LinkKind::Incremental => SnapshotKind::Incremental { from_lsn: link.from_lsn },
    };
    let found = (info.kind, info.meta.lsn, info.meta.created_unix_ms, info.keys, info.file_bytes);
    let listed = (kind, link.to_lsn, link.created_unix_ms, link.keys, link.file_bytes);
    if found != listed {
        return Ok(Err(ChainProblem::Mismatch {
            file: link.path.clone(),
            reason: format!(
                "the file's (kind, LSN, created, keys, bytes) = {found:?} does not match the manifest's {listed:?}"
            ),
        }));
    }
    Ok(Ok(reader))
}

/// Checks a whole chain: every file's header, footer and chunk checksums,
/// its agreement with the manifest, and that each link starts where the
/// previous one ends. Reads every byte of every file; loads nothing.
///
/// # Errors
/// [`Error::BrokenChain`] listing every problem found (a gap, a missing,
/// damaged or swapped file, each named with its LSNs); `Io` for a failed
/// read.
pub fn verify_chain(chain: &Chain) -> Result<ChainReport> {
    let start = Instant::now();
    let links: Vec<&Link> = chain.links().collect();
    let mut problems = structure_problems(&links);
    let mut report = ChainReport {
        dir: chain.dir.clone(),
        links: links.len(),
        base_lsn: chain.base.to_lsn,
        lsn: chain.lsn(),
        keys: 0,
        file_bytes: 0,
        raw_bytes: 0,
        elapsed: Duration::ZERO,
    };
    for link in &links {
        let reader = match open_link(link)? {
            Ok(r) => r,
            Err(p) => {
                problems.push(p);
                continue;
            }
        };
        match reader.verify() {
            Ok(()) => {
                report.keys += reader.info().keys;
                report.file_bytes += reader.info().file_bytes;
                report.raw_bytes += reader.info().raw_bytes;
            }
            Err(e) if e.is_corruption() => problems.push(ChainProblem::Damaged {
                file: link.path.clone(),
                from_lsn: link.from_lsn,
                to_lsn: link.to_lsn,
                error: e,
            }),
            Err(e) => return Err(e.into()),
        }
    }
    if !problems.is_empty() {
        return Err(Error::BrokenChain { chain: chain.dir.clone(), problems });
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Loads a chain into `engine` (which must be empty): the base, then the
/// incrementals whose `to_lsn` is at most `upto_lsn` (all of them for
/// `None`), in order. Returns the LSN reached: the last applied link's.
///
/// Every byte is verified as it is read, so a damaged file is refused
/// even though the chain is not verified first; the engine then holds a
/// partial state and must be discarded.
///
/// # Errors
/// [`Error::InvalidArgument`] if `upto_lsn` is below the base;
/// [`Error::BrokenChain`] naming the file for a gap, a missing, damaged or
/// swapped file, or entries that do not apply; `Io`.
pub fn load_chain(engine: &Engine, chain: &Chain, upto_lsn: Option<u64>) -> Result<u64> {
    if let Some(upto) = upto_lsn {
        if upto < chain.base.to_lsn {
            return Err(Error::InvalidArgument(format!(
                "LSN {upto} is before the base of chain {} (LSN {})",
                chain.dir.display(),
                chain.base.to_lsn
            )));
        }
    }
    let n = chain.incrementals.iter().take_while(|l| upto_lsn.is_none_or(|u| l.to_lsn <= u)).count();
    load_links(engine, chain, n, default_threads(), &mut |_| {})
}

/// Applies to `engine`, which holds the state at LSN `lsn` (a snapshot
/// loaded by recovery, say), the incrementals of `chain` that continue from
/// there — the first one with `from_lsn ≤ lsn < to_lsn`, then each after it
/// — up to the last one whose `to_lsn` is at most `upto_lsn` (all for
/// `None`). An incremental `(from, to]` holds, for every key changed in
/// that range, its value (or absence) at `to`, and every other key did not
/// change in the range; so applied to the state at any LSN inside it, it
/// gives the state at `to` (a `ClearDb` inside the range is re-applied
/// harmlessly: every key written after it is in the file). Returns the LSN
/// reached: `lsn` itself when no incremental covers it (the engine is
/// unchanged then). Each applied file is verified as it is
/// read; the WAL after the returned LSN completes the state.
///
/// # Errors
/// [`Error::BrokenChain`] naming the file for a gap, a missing, damaged or
/// swapped file, or entries that do not apply (the engine then holds a
/// partial state and must be discarded); `Io`.
pub fn apply_incrementals(engine: &Engine, chain: &Chain, lsn: u64, upto_lsn: Option<u64>) -> Result<u64> {
    let Some(first) = chain.incrementals.iter().position(|l| l.from_lsn <= lsn && lsn < l.to_lsn) else {
        return Ok(lsn);
    };
    let links: Vec<&Link> =
        chain.incrementals[first..].iter().take_while(|l| upto_lsn.is_none_or(|u| l.to_lsn <= u)).collect();
    apply_links(engine, chain, &links, default_threads(), &mut |_| {}).map(|reached| reached.unwrap_or(lsn))
}

/// Threads for loading a base: every core.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What loading is doing, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadProgress {
    /// A backup file is being loaded: chunks done of the total.
    File {
        /// The file.
        path: PathBuf,
        /// Chunks loaded.
        chunks_done: u64,
        /// Chunks in the file.
        chunks: u64,
    },
}

/// Loads the base and the first `incrementals` incrementals of `chain`.
pub(crate) fn load_links(
    engine: &Engine,
    chain: &Chain,
    incrementals: usize,
    threads: usize,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<u64> {
    let links: Vec<&Link> = chain.links().take(1 + incrementals).collect();
    apply_links(engine, chain, &links, threads, progress).map(|reached| reached.unwrap_or(0))
}

/// Loads `links` (contiguous links of `chain`, in order) into `engine`;
/// the LSN of the last one.
fn apply_links(
    engine: &Engine,
    chain: &Chain,
    links: &[&Link],
    threads: usize,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<Option<u64>> {
    if let Some(gap) = structure_problems(links).into_iter().next() {
        return Err(Error::broken(&chain.dir, gap));
    }
    let mut lsn = None;
    for &link in links {
        let reader = open_link(link)?.map_err(|p| Error::broken(&chain.dir, p))?;
        let chunks = u64::from(reader.info().chunks);
        progress(LoadProgress::File { path: link.path.clone(), chunks_done: 0, chunks });
        let loaded = match link.kind {
            LinkKind::Full => load_full(engine, &reader, link, threads)?,
            LinkKind::Incremental => apply_incremental(engine, &reader, link)?,
        };
        if loaded != link.keys {
            return Err(Error::broken(
                &chain.dir,
                ChainProblem::Undecodable {
                    file: link.path.clone(),
                    reason: format!("the file says it holds {} entries but {loaded} were applied", link.keys),
                },
            ));
        }
        progress(LoadProgress::File { path: link.path.clone(), chunks_done: chunks, chunks });
        lsn = Some(link.to_lsn);
    }
    Ok(lsn)
}

/// A read error of a link as the problem it is, or a failed operation.
fn read_failure(link: &Link, e: SnapshotError) -> Error {
    if e.is_corruption() {
        Error::broken(
            link.path.parent().unwrap_or(Path::new(".")),
            ChainProblem::Damaged { file: link.path.clone(), from_lsn: link.from_lsn, to_lsn: link.to_lsn, error: e },
        )
    } else {
        e.into()
    }
}

fn undecodable(link: &Link, chunk: u32, reason: impl std::fmt::Display) -> Error {
    Error::broken(
        link.path.parent().unwrap_or(Path::new(".")),
        ChainProblem::Undecodable { file: link.path.clone(), reason: format!("chunk {chunk}: {reason}") },
    )
}

/// Loads a full backup's chunks on `threads` threads.
pub(crate) fn load_full(engine: &Engine, reader: &SnapshotReader, link: &Link, threads: usize) -> Result<u64> {
    let loaded = AtomicU64::new(0);
    let result = reader.load_parallel_indexed(threads, |i, raw, entries| {
        let n = engine.load_snapshot_chunk(raw).map_err(|e| (i, e.to_string()))?;
        if n != u64::from(entries) {
            return Err((i, format!("{n} entries decoded, the chunk says {entries}")));
        }
        loaded.fetch_add(n, Ordering::Relaxed);
        Ok(())
    });
    match result {
        Ok(_) => Ok(loaded.into_inner()),
        Err(LoadError::Snapshot(e)) => Err(read_failure(link, e)),
        Err(LoadError::Callback { chunk, error: (_, reason), .. }) => Err(undecodable(link, chunk, reason)),
    }
}

/// Applies an incremental file's chunks in order.
fn apply_incremental(engine: &Engine, reader: &SnapshotReader, link: &Link) -> Result<u64> {
    let mut applied = 0;
    for (i, chunk) in reader.chunks().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let (raw, entries) = chunk.map_err(|e| read_failure(link, e))?;
        let n = engine.apply_change_chunk(&raw).map_err(|e| undecodable(link, i, e))?;
        if n != u64::from(entries) {
            return Err(undecodable(link, i, format!("{n} changes decoded, the chunk says {entries}")));
        }
        applied += n;
    }
    Ok(applied)
}
