//! tapio: incident investigation for Linux and Kubernetes.
//!
//! tapio joins what the kernel, Kubernetes and the applications saw into one timeline. The
//! library is organised by the stages of that data flow; the `tapio` binary is a thin shell over
//! it (the library never prints).
//!
//! - [`event`]: the one envelope and the typed bodies every layer's events share;
//! - [`capture`]: the append-only, crash-tolerant capture file;
//! - [`source`]: what turns the outside world into events (`source::import` for the dumps people
//!   already have, `source::generate` for synthetic captures);
//! - [`record`]: live sources (the kernel's eBPF probes, the Kubernetes watchers) into a capture;
//! - [`filter`]: the event filters of `cat` and the commands after it;
//! - [`topology`], [`detect`], [`link`]: attribute events to pods and services, turn them into
//!   findings, link findings into incidents with their roots and chains;
//! - [`knowledge`]: every finding and root-cause kind with its properties, in one table each;
//! - [`analysis`]: the decisions about an incident (kind, severity, confidence, impact, actions);
//! - [`pipeline`]: the one core that replay, record and the tests feed (and that export, stats
//!   and query tap);
//! - `table` (the `tables` feature): events and the verdict as typed polars tables, written as
//!   Parquet, CSV, JSON lines or Arrow; `tapio stats` and `tapio query` over them;
//! - [`report`]: how events, incidents and tables read for people (one line each, summaries,
//!   tables) and for machines (JSON, CSV); it only renders.

/// For a fieldless enum whose variants each have one name on the command line and in JSON:
/// `ALL`, `as_str`, `Display`, and `parse_name` with an error that lists the names.
macro_rules! named {
    ($ty:ident, $what:literal { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            pub fn parse_name(s: &str) -> Result<$ty, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?}; expected one of {}", $what, names.join(", "))
                })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

pub mod analysis;
pub mod capture;
pub mod cluster;
pub mod detect;
pub mod event;
pub mod filter;
#[doc(hidden)]
pub mod fuzz;
pub mod knowledge;
pub mod link;
pub mod notify;
pub mod pipeline;
pub mod record;
pub mod redact;
pub mod report;
pub mod source;
#[cfg(feature = "tables")]
pub mod table;
pub mod topology;
pub mod units;

/// Tests that read the real third-party data in `../shared/data`: `true` when it is there. A plain
/// clone has none: the test says it is skipped and why, and returns; CI sets
/// `TAPIO_REQUIRE_SHARED_DATA`, and there a missing directory fails.
#[cfg(test)]
pub(crate) fn shared_data(test: &str) -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.is_dir() {
        return true;
    }
    if std::env::var_os("TAPIO_REQUIRE_SHARED_DATA").is_some() {
        panic!("{test}: {} is missing", dir.display());
    }
    eprintln!(
        "skipped {test}: ../shared/data (the real third-party data) is not beside the repository"
    );
    false
}
