//! Sources: what turns the outside world into [`Event`](crate::event::Event)s.
//!
//! - [`import`]: the dumps people already have (`kubectl get -o json`, `dmesg`, OTLP JSON …);
//! - [`generate`]: a deterministic synthetic cluster, for benchmarks and demos;
//! - [`kernel`]: the eBPF probes of `tapio record`;
//! - [`kube`]: the Kubernetes watchers of `tapio record`;
//! - [`logs`]: container log files, followed live or imported;
//! - [`otlp`]: the OTLP receiver of `tapio record`.

pub mod generate;
pub mod import;
pub mod kernel;
pub mod kube;
pub mod logs;
pub mod otlp;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam_channel::Sender;

use crate::event::Event;

/// What a running source is given: where its batches of events go, where its warnings go (a lost
/// API server, a skipped object), and the flag that tells it to stop. A full events channel
/// blocks the source: that is the backpressure of the recorder.
#[derive(Clone)]
pub struct Outlet {
    pub events: Sender<Vec<Event>>,
    pub warnings: Sender<String>,
    pub halt: Arc<AtomicBool>,
}

/// What a source counted while it ran, for the closing summary.
#[derive(Clone, Copy, Debug)]
pub enum Counters {
    Kernel(kernel::Counters),
    Kube(kube::Counters),
    Otlp(otlp::Counters),
    Logs(logs::follow::Counters),
}

/// A live source of `tapio record`, started and ready: each runs on its own thread until
/// [`Outlet::halt`], sends what it sees, and says what it counted. Record, the cluster publisher
/// and the tests run every source through this one interface.
pub trait Source: Send {
    /// Its name in the capture header (`ebpf`, `kube`, `otlp`, `pod-logs`).
    fn name(&self) -> &'static str;
    /// What it records, for the banner ("Kubernetes at https://…").
    fn describe(&self) -> String;
    /// What the user should know before the recording starts.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Runs until halted; what the source saw before the halt still goes out.
    fn run(self: Box<Self>, out: &Outlet) -> Counters;
}

/// Decompresses gzip as a stream, refusing to go past `cap` bytes (a gzip bomb is an error that
/// says so, not an allocation failure).
pub fn gunzip(mut gz: impl std::io::Read, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    (&mut gz)
        .take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress gzip: {e}"))?;
    if out.len() as u64 > cap {
        return Err(format!(
            "decompresses to more than {} MiB (a gzip bomb, or a dump to decompress and split first)",
            cap >> 20
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod gunzip_tests {
    use std::io::Write;

    #[test]
    fn a_gzip_past_the_cap_is_an_error_that_says_so_and_one_under_it_reads() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![b'a'; 3 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 64 << 10, "a small file that grows");
        let err = super::gunzip(flate2::read::GzDecoder::new(&gz[..]), 1 << 20).unwrap_err();
        assert!(err.contains("more than 1 MiB"), "{err}");
        let ok = super::gunzip(flate2::read::GzDecoder::new(&gz[..]), 3 << 20).unwrap();
        assert_eq!(ok.len(), 3 << 20);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dmesg.txt.gz");
        std::fs::write(&path, &gz).unwrap();
        let err = super::import::read::read_text_capped(&path, 1 << 20).unwrap_err();
        assert!(err.contains("gzip bomb"), "{err}");
        assert_eq!(
            super::import::read::read_text_capped(&path, 4 << 20)
                .unwrap()
                .len(),
            3 << 20
        );
    }
}
