//! Reading records back, from any LSN, while the log is being appended to.
//!
//! A reader holds the segment it is in (an `Arc`, so the mapping stays
//! valid even if `truncate_before` unlinks the file) and copies each
//! payload out of the frozen part of the mapping: it never hands out a
//! slice into a mapping. It re-verifies every checksum.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::record::{self, HeaderParse, HEADER_LEN};
use crate::segment::Segment;
use crate::writer::Core;
use crate::Lsn;

/// An iterator over `(lsn, payload)` from a starting LSN.
///
/// `next()` returns `None` when it has caught up with the end of the log;
/// records appended later are returned by later calls, so a reader can be
/// polled again to follow a writer. After an error it returns `None`.
pub struct Reader {
    core: Arc<Core>,
    seg: Arc<Segment>,
    off: u64,
    /// The LSN the next record must have; `None` right after a lossy jump.
    next_lsn: Option<Lsn>,
    from: Lsn,
    failed: bool,
}

impl Reader {
    pub(crate) fn new(core: Arc<Core>, from: Lsn) -> Result<Reader> {
        let seg = {
            let segs = core.segments.read();
            // Under the segments lock: `restart_after` changes both together.
            let last = core.last_lsn.load(std::sync::atomic::Ordering::Acquire);
            let first = segs.first().map_or(last + 1, |s| s.first_lsn);
            let from = if from == 0 { first } else { from };
            // LSNs in a gap before the first segment belong to no record:
            // a reader from there starts at that segment.
            let lowest = segs.first().filter(|s| s.continues_at(from)).map_or(first, |_| from);
            if from < lowest || from > last + 1 {
                return Err(Error::LsnUnavailable { lsn: from, first, last });
            }
            // The last segment starting at or before `from`.
            let i = segs.partition_point(|s| s.first_lsn <= from).saturating_sub(1);
            match segs.get(i) {
                Some(s) => s.clone(),
                None => return Err(Error::LsnUnavailable { lsn: from, first, last }),
            }
        };
        let off = start_of(&seg);
        Ok(Reader { core, next_lsn: Some(seg.first_lsn), seg, off, from: from.max(1), failed: false })
    }

    /// The LSN of the next record this reader will return (once it exists).
    pub fn next_lsn(&self) -> Lsn {
        self.next_lsn.unwrap_or(self.from).max(self.from)
    }

    fn fail(&mut self, e: Error) -> Option<Result<(Lsn, Vec<u8>)>> {
        self.failed = true;
        Some(Err(e))
    }

    fn corrupted(&self, reason: String) -> Error {
        Error::Corrupted { segment: self.seg.path.clone(), offset: self.off, reason }
    }
}

/// Offset of the first record of a segment (later than the header after a
/// lossy recovery skipped its start).
fn start_of(seg: &Segment) -> u64 {
    seg.start
}

impl Iterator for Reader {
    type Item = Result<(Lsn, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            while let Some(&(_, to)) = self.seg.skips.iter().find(|(at, to)| *at == self.off && *to > *at) {
                self.off = to;
                self.next_lsn = None;
            }
            // `complete` before `end`: once complete, the end is final.
            let complete = self.seg.is_complete();
            let end = self.seg.end();
            if self.off + HEADER_LEN as u64 <= end {
                let mut head = [0u8; HEADER_LEN];
                if let Err(e) = self.seg.region.read(self.off, &mut head) {
                    return self.fail(Error::io("read record", &self.seg.path, e));
                }
                let h = match record::parse_header(&head) {
                    HeaderParse::Header(h) => h,
                    HeaderParse::Zero => return self.fail(self.corrupted("zero record header inside the log".into())),
                    HeaderParse::Invalid(why) => return self.fail(self.corrupted(why.into())),
                };
                if self.next_lsn.is_some_and(|n| n != h.lsn) || self.off + h.total_len() > end {
                    let why = format!("record LSN {} / length {} does not fit the log", h.lsn, h.len);
                    return self.fail(self.corrupted(why));
                }
                let mut payload = vec![0u8; h.len as usize];
                if let Err(e) = self.seg.region.read(self.off + HEADER_LEN as u64, &mut payload) {
                    return self.fail(Error::io("read record", &self.seg.path, e));
                }
                let got = record::computed_crc(&h, &payload);
                if got != h.crc {
                    let e = Error::ChecksumMismatch {
                        segment: self.seg.path.clone(),
                        offset: self.off,
                        expected: h.crc,
                        got,
                    };
                    return self.fail(e);
                }
                self.off += h.total_len();
                self.next_lsn = Some(h.lsn + 1);
                if h.lsn >= self.from {
                    return Some(Ok((h.lsn, payload)));
                }
                continue;
            }
            if !complete {
                // Records appended under `Always` may still be buffered in
                // memory: write them out (the reader never sees bytes that
                // are not in the file) and look again.
                match self.core.write_pending_of(&self.seg) {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => return self.fail(e),
                }
            }
            // This segment is finished: continue in the next one.
            let next = {
                let segs = self.core.segments.read();
                match segs.iter().position(|s| Arc::ptr_eq(s, &self.seg)) {
                    Some(i) => segs.get(i + 1).cloned(),
                    None => {
                        // Our segment was truncated away (or the log
                        // restarted); so may be the next.
                        let want = self.next_lsn();
                        match segs.iter().find(|s| s.first_lsn >= want) {
                            Some(s) if s.continues_at(want) => Some(s.clone()),
                            _ => {
                                let first = segs.first().map_or(0, |s| s.first_lsn);
                                let last = self.core.last_lsn.load(std::sync::atomic::Ordering::Acquire);
                                drop(segs);
                                return self.fail(Error::LsnUnavailable { lsn: want, first, last });
                            }
                        }
                    }
                }
            };
            let next = next?;
            self.off = start_of(&next);
            // Contiguous across segments except after a gap or where a lossy
            // recovery dropped damaged ones; either way the segment says
            // where it starts.
            self.next_lsn = Some(next.first_lsn);
            self.seg = next;
        }
    }
}
