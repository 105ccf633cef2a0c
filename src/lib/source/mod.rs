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
