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
//! - [`filter`]: the event filters of `cat` and the commands after it;
//! - [`report`]: how events read for people (one line each) and for machines (JSON).

pub mod capture;
pub mod event;
pub mod filter;
pub mod report;
pub mod source;
