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
