//! Incremental backup files: the same container with a header flag and a
//! from-LSN; a tool given only the file can tell, and a snapshot store
//! never takes one for a snapshot.

mod common;

use common::{payload, write_snapshot, TestResult};
use fastcache_snapshot::{
    SnapshotError, SnapshotKind, SnapshotMeta, SnapshotReader, SnapshotStore, SnapshotWriter, WriterOptions,
    MANIFEST_FILE,
};

const META: SnapshotMeta = SnapshotMeta { lsn: 500, created_unix_ms: 1_700_000_000_000 };

fn write_incremental(path: &std::path::Path, from_lsn: u64) -> TestResult<fastcache_snapshot::SnapshotInfo> {
    let mut w = SnapshotWriter::create_incremental(path, META, from_lsn, WriterOptions::default())?;
    w.write_chunk(&payload(1, 5000, true), 40)?;
    w.write_chunk(&payload(2, 300, false), 3)?;
    Ok(w.finish()?)
}

#[test]
fn an_incremental_file_round_trips_and_says_what_it_is() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("inc.fcs");
    let written = write_incremental(&path, 420)?;
    assert_eq!(written.kind, SnapshotKind::Incremental { from_lsn: 420 });
    let reader = SnapshotReader::open(&path)?;
    assert_eq!(reader.info(), &written);
    reader.verify()?;
    let chunks: Vec<(Vec<u8>, u32)> = reader.chunks().collect::<Result<_, _>>()?;
    assert_eq!(chunks, vec![(payload(1, 5000, true), 40), (payload(2, 300, false), 3)]);

    // A full snapshot still reads as before: flags 0, reserved bytes 0.
    let full = dir.path().join("full.fcs");
    let info = write_snapshot(&full, META, &[(b"abc".to_vec(), 1)])?;
    assert_eq!(info.kind, SnapshotKind::Full);
    let bytes = std::fs::read(&full)?;
    assert_eq!(&bytes[12..16], &[0, 0, 0, 0]);
    assert!(bytes[52..60].iter().all(|&b| b == 0));
    assert_eq!(SnapshotReader::open(&full)?.info().kind, SnapshotKind::Full);

    // The flag and the from-LSN sit where docs/formats.md says.
    let bytes = std::fs::read(&path)?;
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into()?), 1);
    assert_eq!(u64::from_le_bytes(bytes[52..60].try_into()?), 420);
    Ok(())
}

#[test]
fn an_inverted_range_is_refused_when_writing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let r = SnapshotWriter::create_incremental(&dir.path().join("x.fcs"), META, 501, WriterOptions::default());
    assert!(matches!(r, Err(SnapshotError::InvalidArgument(_))), "{r:?}");
    assert!(std::fs::read_dir(dir.path())?.next().is_none(), "nothing is created");
    // An empty range is fine: no write happened between two backups.
    write_incremental(&dir.path().join("y.fcs"), 500)?;
    Ok(())
}

#[test]
fn every_bit_flip_in_the_header_of_an_incremental_file_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("inc.fcs");
    write_incremental(&path, 420)?;
    let good = std::fs::read(&path)?;
    let bad = dir.path().join("bad.fcs");
    for i in 0..64 {
        for bit in 0..8 {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            std::fs::write(&bad, &b)?;
            let r = SnapshotReader::open(&bad);
            assert!(r.as_ref().is_err_and(SnapshotError::is_corruption), "byte {i} bit {bit}: {r:?}");
        }
    }
    Ok(())
}

#[test]
fn a_snapshot_store_never_takes_an_incremental_file_for_a_snapshot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    // Written under a snapshot's name in the store's directory…
    let name = dir.path().join("snapshot-00000000000000000500-1700000000000.fcs");
    let info = write_incremental(&name, 420)?;
    // …it cannot be published,
    assert!(matches!(store.publish(&info), Err(SnapshotError::InvalidArgument(_))));
    // a rebuilt manifest leaves it out,
    assert!(store.rebuild_manifest()?.is_empty());
    // and a manifest naming it (a hand edit) gets a corruption error.
    let body = format!(
        "FCSNAP-MANIFEST 1\nsnapshot-00000000000000000500-1700000000000.fcs 500 1700000000000 {} {}\n",
        info.keys, info.file_bytes
    );
    std::fs::write(dir.path().join(MANIFEST_FILE), format!("{body}crc32c {:08x}\n", crc32c_of(body.as_bytes())))?;
    let entry = store.list()?.remove(0);
    let err = store.open_snapshot(&entry).err();
    assert!(matches!(&err, Some(SnapshotError::Corrupted { offset: 0, .. })), "{err:?}");
    assert!(err.map(|e| e.to_string()).unwrap_or_default().contains("incremental"));
    Ok(())
}

/// crc32c (Castagnoli), bitwise: the test does not need the crate.
fn crc32c_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}
