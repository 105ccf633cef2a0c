//! tapio's integration tests, in one binary (one link of tapio, not one per file): the real
//! command line against fixtures, real data (`../shared/data`), a local Kubernetes list/watch
//! server, the OpenTelemetry Python SDK, a real nats-server and, as root, the real kernel.
//!
//! Tests that need root are `#[ignore = "needs root"]`: a plain `cargo test` reports them as
//! ignored, and CI (root) runs them with `--include-ignored`.

mod support;

#[cfg(feature = "tables")]
mod analysis;
mod capture;
mod cli;
mod cluster;
#[cfg(feature = "tables")]
mod export;
mod faults;
mod fixtures;
mod import;
mod index;
mod kube;
mod logs;
mod otlp;
mod record;
mod redact;
mod replay;
mod report;
