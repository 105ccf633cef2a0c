//! The capture file's promises, tested on real captures: a cut at any byte offset reads back
//! exactly the events of the complete blocks, with one warning; a flipped byte is detected with
//! the block's offset; `skip_corrupt` reads on past it.

use std::path::Path;

use tapio::capture::{Header, ReadOptions, Reader, Warning, WriteOptions, Writer};
use tapio::event::Event;
use tapio::source::generate::{generate, Config};

/// A generated capture with small blocks; returns its bytes, its events, and the end offset of
/// each block.
fn small_block_capture(dir: &Path, events: u64) -> (Vec<u8>, Vec<Event>, Vec<u64>) {
    blocks_of(dir, events, 4096)
}

fn blocks_of(dir: &Path, events: u64, block_bytes: usize) -> (Vec<u8>, Vec<Event>, Vec<u64>) {
    let path = dir.join("real.tapio");
    let opts = WriteOptions {
        block_bytes,
        ..WriteOptions::default()
    };
    let mut w = Writer::create(&path, &Header::new("node-1"), opts).unwrap();
    let mut written = Vec::new();
    generate(
        &Config {
            events,
            incident: true,
            ..Config::default()
        },
        |mut e| {
            w.append(&mut e)?;
            written.push(e);
            Ok::<_, tapio::capture::Error>(())
        },
    )
    .unwrap();
    w.finish().unwrap();

    let mut r = Reader::open(&path, ReadOptions::default()).unwrap();
    let mut ends = Vec::new();
    let mut buf = Vec::new();
    while r.next_block(&mut buf).unwrap() {
        ends.push(r.position());
    }
    assert_eq!(buf, written, "a clean capture reads back exactly");
    assert!(r.warnings().is_empty());
    assert!(r.trailer().is_some());
    (std::fs::read(&path).unwrap(), written, ends)
}

fn events_per_block(path: &Path) -> Vec<usize> {
    let mut r = Reader::open(path, ReadOptions::default()).unwrap();
    let mut sizes = Vec::new();
    let mut buf = Vec::new();
    while r.next_block(&mut buf).unwrap() {
        sizes.push(buf.len());
        buf.clear();
    }
    sizes
}

#[test]
fn a_capture_cut_at_any_offset_reads_back_its_complete_blocks_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, events, ends) = small_block_capture(dir.path(), 3000);
    let per_block = events_per_block(&dir.path().join("real.tapio"));
    assert!(
        ends.len() >= 10,
        "enough blocks to cut between: {}",
        ends.len()
    );
    let header_len = 16 + u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as u64 + 4;

    // Every offset inside the header and around every block boundary, and a stride through the rest.
    let mut cuts: Vec<u64> = (0..header_len + 2).collect();
    for &end in &ends {
        cuts.extend([end - 1, end, end + 1, end + 3, end + 47, end + 48, end + 49]);
    }
    cuts.extend((0..bytes.len() as u64).step_by(97));
    cuts.retain(|&c| c < bytes.len() as u64);
    cuts.sort_unstable();
    cuts.dedup();

    eprintln!(
        "cutting a {}-byte capture of {} blocks at {} offsets",
        bytes.len(),
        ends.len(),
        cuts.len()
    );
    let cut_path = dir.path().join("cut.tapio");
    for &cut in &cuts {
        std::fs::write(&cut_path, &bytes[..cut as usize]).unwrap();
        let mut r = Reader::open(&cut_path, ReadOptions::default())
            .unwrap_or_else(|e| panic!("cut at {cut}: open failed: {e}"));
        let got = r.read_all().unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        let expected: usize = per_block[..complete].iter().sum();
        assert_eq!(
            got.len(),
            expected,
            "cut at {cut}: events of the {complete} complete blocks"
        );
        assert_eq!(got[..], events[..expected], "cut at {cut}: the same events");
        let warnings = r.warnings();
        assert_eq!(
            warnings.len(),
            1,
            "cut at {cut}: exactly one warning, got {warnings:?}"
        );
        assert!(
            matches!(warnings[0], Warning::Truncated { .. }),
            "cut at {cut}: {warnings:?}"
        );
        if cut < header_len {
            assert!(r.header().is_none());
        }
    }
}

#[test]
fn a_small_capture_cut_at_every_single_offset_reads_back_its_complete_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, events, ends) = blocks_of(dir.path(), 150, 1024);
    let per_block = events_per_block(&dir.path().join("real.tapio"));
    let cut_path = dir.path().join("cut.tapio");
    for cut in 0..bytes.len() {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let mut r = Reader::open(&cut_path, ReadOptions::default()).unwrap();
        let got = r.read_all().unwrap();
        let complete = ends.iter().filter(|&&end| end <= cut as u64).count();
        let expected: usize = per_block[..complete].iter().sum();
        assert_eq!(got[..], events[..expected], "cut at {cut}");
        assert_eq!(r.warnings().len(), 1, "cut at {cut}");
    }
    eprintln!(
        "cut a {}-byte capture of {} blocks at every offset",
        bytes.len(),
        ends.len()
    );
}

#[test]
fn a_flipped_byte_is_reported_with_its_block_offset_and_skip_corrupt_reads_on() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, events, ends) = small_block_capture(dir.path(), 2000);
    let per_block = events_per_block(&dir.path().join("real.tapio"));
    let k = 3;
    let block_start = ends[k - 1];
    for (what, at) in [
        ("payload", block_start + 48 + 10),
        ("frame header", block_start + 13),
    ] {
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= 0x40;
        let path = dir.path().join("flipped.tapio");
        std::fs::write(&path, &damaged).unwrap();

        let mut r = Reader::open(&path, ReadOptions::default()).unwrap();
        let mut got = Vec::new();
        let err = loop {
            match r.next_block(&mut got) {
                Ok(true) => {}
                Ok(false) => panic!("{what}: the flip went unnoticed"),
                Err(e) => break e,
            }
        };
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("byte offset {block_start}")),
            "{what}: {msg}"
        );
        assert_eq!(
            got.len(),
            per_block[..k].iter().sum::<usize>(),
            "{what}: blocks before it were read"
        );

        let opts = ReadOptions {
            skip_corrupt: true,
            ..ReadOptions::default()
        };
        let mut r = Reader::open(&path, opts).unwrap();
        let got = r.read_all().unwrap();
        let lost = per_block[k];
        assert_eq!(
            got.len(),
            events.len() - lost,
            "{what}: everything but the damaged block"
        );
        assert_eq!(r.warnings().len(), 1, "{what}: {:?}", r.warnings());
        assert!(
            matches!(r.warnings()[0], Warning::SkippedCorrupt { offset, .. } if offset == block_start)
        );
        assert!(r.trailer().is_some(), "{what}: read on to the trailer");
    }
}

#[test]
fn not_a_capture_and_a_newer_version_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tapio");
    std::fs::write(&p, b"{\"kind\":\"List\"}").unwrap();
    let err = Reader::open(&p, ReadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("not a tapio capture") && err.contains("x.tapio"),
        "{err}"
    );
    let mut v = b"TAPIOCAP".to_vec();
    v.extend_from_slice(&[9, 0, 0, 0, 2, 0, 0, 0, b'{', b'}', 0, 0, 0, 0]);
    std::fs::write(&p, &v).unwrap();
    let err = Reader::open(&p, ReadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("version 9") && err.contains("upgrade"),
        "{err}"
    );
}

#[test]
fn a_reader_follows_a_capture_while_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.tapio");
    let mut w = Writer::create(&path, &Header::new("node-1"), WriteOptions::default()).unwrap();
    let opts = ReadOptions {
        follow: true,
        poll: Some(std::time::Duration::from_millis(5)),
        ..Default::default()
    };
    let reader = std::thread::spawn({
        let path = path.clone();
        move || Reader::open(&path, opts).unwrap().read_all().unwrap()
    });
    let mut written = Vec::new();
    generate(
        &Config {
            events: 500,
            ..Config::default()
        },
        |mut e| {
            w.append(&mut e)?;
            written.push(e);
            if written.len() % 100 == 0 {
                w.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok::<_, tapio::capture::Error>(())
        },
    )
    .unwrap();
    w.finish().unwrap();
    assert_eq!(reader.join().unwrap(), written);
}

#[test]
fn a_damaged_header_length_or_a_forged_block_count_is_corruption_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, events, ends) = small_block_capture(dir.path(), 1000);
    let path = dir.path().join("damaged.tapio");

    // The header's length points past the end of the file.
    let mut b = bytes.clone();
    b[14] ^= 0x10;
    std::fs::write(&path, &b).unwrap();
    // Valid blocks after it show it is corruption, not a capture cut inside its header.
    let err = Reader::open(&path, ReadOptions::default()).err().unwrap();
    assert!(
        err.to_string()
            .contains("points past the end of the file, but valid blocks follow"),
        "{err}"
    );
    let opts = ReadOptions {
        skip_corrupt: true,
        ..ReadOptions::default()
    };
    let mut r = Reader::open(&path, opts).unwrap();
    assert_eq!(r.read_all().unwrap(), events, "every block is still there");
    assert!(
        matches!(r.warnings(), [Warning::SkippedCorrupt { offset: 0, .. }]),
        "{:?}",
        r.warnings()
    );

    // A block frame that claims 4 billion events, with its checksum forged to match.
    let mut b = bytes.clone();
    let at = ends[1] as usize;
    b[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let crc = crc32fast::hash(&b[at..at + 44]);
    b[at + 44..at + 48].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let err = Reader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "corrupt block header (lengths and count do not fit together) at byte offset {at}"
        )),
        "{err}"
    );
}

#[test]
fn a_damaged_trailer_length_and_a_repeated_block_are_corruption_not_a_torn_end_or_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, events, ends) = small_block_capture(dir.path(), 1000);
    let path = dir.path().join("damaged.tapio");
    // The trailer is the last frame: its length field sits 4 bytes into it.
    let trailer = bytes
        .windows(4)
        .rposition(|w| w == b"TEND")
        .expect("a closed capture has a trailer");
    // Its length made larger: it points past the end of the file (before, this read as a
    // capture cut inside its trailer).
    let mut b = bytes.clone();
    b[trailer + 5] ^= 0x10;
    std::fs::write(&path, &b).unwrap();
    let err = Reader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(
        err.to_string().contains("corrupt trailer (its length"),
        "{err}"
    );
    // Cut inside the trailer: a torn end, as before.
    std::fs::write(&path, &bytes[..trailer + 10]).unwrap();
    let mut r = Reader::open(&path, ReadOptions::default()).unwrap();
    assert_eq!(r.read_all().unwrap(), events);
    assert!(matches!(r.warnings(), [Warning::Truncated { .. }]));

    // The second block written twice (a copy gone wrong).
    let (a, b2) = (ends[0] as usize, ends[1] as usize);
    let mut b = bytes[..b2].to_vec();
    b.extend_from_slice(&bytes[a..b2]);
    b.extend_from_slice(&bytes[b2..]);
    std::fs::write(&path, &b).unwrap();
    let err = Reader::open(&path, ReadOptions::default())
        .unwrap()
        .read_all()
        .unwrap_err();
    assert!(err.to_string().contains("block repeated"), "{err}");
    let opts = ReadOptions {
        skip_corrupt: true,
        ..ReadOptions::default()
    };
    let mut r = Reader::open(&path, opts).unwrap();
    assert_eq!(r.read_all().unwrap(), events, "each event once");
    assert!(
        matches!(r.warnings(), [Warning::SkippedCorrupt { offset, .. }] if *offset == b2 as u64),
        "{:?}",
        r.warnings()
    );
}
