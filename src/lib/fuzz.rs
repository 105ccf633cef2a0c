//! The entry points of the fuzz targets (`fuzz/`): each takes arbitrary bytes and runs them
//! through one of tapio's readers of untrusted input, the way tapio itself runs it. They live in
//! the library so that every build compiles them and the unit tests below run them on seeds; each
//! target in `fuzz/fuzz_targets/` is one call.
//!
//! They check what the readers promise besides not panicking: placed events are in time order,
//! and every kept record's time is a real one.

use std::path::Path;

use crate::capture::index::{self, Want};
use crate::capture::{ReadOptions, Reader};
use crate::event::Ts;
use crate::source::import::{self, container_log::Owner, ClockOptions, Format, Placement};

/// The formats of the structured importers (JSON and YAML).
const STRUCTURED: [Format; 7] = [
    Format::KubeJson,
    Format::KubeYaml,
    Format::WatchJson,
    Format::WatchYaml,
    Format::OtlpJson,
    Format::ZipkinJson,
    Format::JournalJson,
];

/// The formats of the text importers.
const TEXT: [Format; 6] = [
    Format::KernelLog,
    Format::Syslog,
    Format::ContainerLog,
    Format::KubectlDescribe,
    Format::KubectlTable,
    Format::TapioJson,
];

/// One input of `tapio import` in one of the structured formats (the first byte chooses which).
pub fn import_structured(data: &[u8]) {
    import_as(data, |sel| {
        Some(STRUCTURED[sel as usize % STRUCTURED.len()])
    });
}

/// One input of `tapio import` in one of the text formats (the first byte chooses which).
pub fn import_text(data: &[u8]) {
    import_as(data, |sel| Some(TEXT[sel as usize % TEXT.len()]));
}

/// One input of `tapio import` whose format is detected, as without `--format`.
pub fn import_detected(data: &[u8]) {
    import_as(data, |_| None);
}

/// The first byte chooses the format (through `format`) and, by its top bit, whether `--pod` was
/// given; the rest is the file's content, read as `tapio import` reads a file.
fn import_as(data: &[u8], format: impl Fn(u8) -> Option<Format>) {
    let Some((&sel, content)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(content);
    let opts = import::Options {
        owner: (sel & 0x80 != 0).then(|| Owner {
            namespace: "shop".into(),
            pod: "cart-0".into(),
            container: None,
            previous: sel & 0x40 != 0,
        }),
        ..import::Options::default()
    };
    let path = Path::new("fuzz.log");
    let modified = Some(crate::event::Ts::from_secs(1_760_000_000));
    let (_, parsed) = import::parse_text(path, &text, format(sel & 0x3f), &opts, modified);
    let (events, _) = import::place(
        vec![Placement {
            name: "fuzz.log".into(),
            modified,
            parsed,
        }],
        &ClockOptions::default(),
    );
    assert!(
        events.windows(2).all(|w| w[0].ts <= w[1].ts),
        "placed events are in time order"
    );
}

/// A capture file, read to its end as `tapio cat` reads it, then again with `--skip-corrupt`;
/// and the same bytes as one message of the cluster stream (a block frame).
pub fn capture(data: &[u8]) {
    thread_local! {
        static FILE: std::path::PathBuf = fuzz_dir().join(format!(
            "tapio-fuzz-{}-{:?}.tapio",
            std::process::id(),
            std::thread::current().id()
        ));
    }
    FILE.with(|path| {
        std::fs::write(path, data).expect("the fuzzed capture is written");
        for skip_corrupt in [false, true] {
            let opts = ReadOptions {
                skip_corrupt,
                ..ReadOptions::default()
            };
            let Ok(mut r) = Reader::open(path, opts) else {
                return;
            };
            // Its index (a damaged one is an error, never a panic), and the blocks questions
            // would read through it (filters read from wherever the index says).
            for want in [
                Want {
                    traces: vec![index::key(index::Set::Trace, &[7; 16])],
                    ..Want::default()
                },
                Want {
                    from: Some(Ts(1_773_482_400_000_000_000)),
                    to: Some(Ts(1_773_482_460_000_000_000)),
                    places: vec![index::key(index::Set::Place, b"pod:shop/cart")],
                    ..Want::default()
                },
            ] {
                let _ = r.plan(&want);
            }
            let mut events = Vec::new();
            // Each block is read once: a reader that never ends is a bug.
            for _ in 0..=data.len() {
                match r.next_block(&mut events) {
                    Ok(true) => {}
                    Ok(false) | Err(_) => break,
                }
            }
        }
    });
    thread_local! {
        static ZSTD: std::cell::RefCell<zstd::bulk::Decompressor<'static>> =
            std::cell::RefCell::new(zstd::bulk::Decompressor::new().expect("a zstd decompressor"));
    }
    ZSTD.with(|z| {
        let mut events = Vec::new();
        let _ = crate::capture::decode_frame(data, &mut z.borrow_mut(), &mut events);
    });
}

/// Where the capture target writes its file: memory when the system has it.
fn fuzz_dir() -> std::path::PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// One OTLP/HTTP request through the receiver's own routes (the first byte chooses the path and
/// headers).
pub fn otlp_http(data: &[u8]) {
    crate::source::otlp::fuzz_request(false, data);
}

/// One OTLP/gRPC call through the receiver's own services (the first byte chooses the service and
/// compression; the rest is the body, gRPC's length-prefixed messages).
pub fn otlp_grpc(data: &[u8]) {
    crate::source::otlp::fuzz_request(true, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target on a few seeds of each kind, so that the entry points stay working.
    #[test]
    fn the_targets_run_on_seeds() {
        let dmesg = b"\x00[  12.5] Out of memory: Killed process 42 (java)\n";
        import_text(dmesg);
        import_detected(&dmesg[1..]);
        import_structured(b"\x00{\"kind\":\"List\",\"items\":[]}");
        import_detected(b"{\"level\":\"error\",\"msg\":\"boom\",\"ts\":1760000000.5}\n");
        import_text(b"\x82not a time\n\x1b[31mred\x1b[0m\n");
        let demo = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/captures/v1-oom-demo.tapio"),
        )
        .unwrap();
        capture(&demo);
        capture(&demo[..demo.len() / 2]);
        capture(b"TAPIO");
        for sel in 0..16u8 {
            otlp_http(&[sel, b'{', b'}']);
            otlp_grpc(&[sel, 0, 0, 0, 0, 0]);
        }
        let (status, events) =
            crate::source::otlp::fuzz_request(false, b"\x04{\"resourceSpans\":[]}");
        assert_eq!((status, events), (200, 0));
        let (status, _) = crate::source::otlp::fuzz_request(true, &[0, 0, 0, 0, 0, 0]);
        assert_eq!(status, 200);
    }
}
