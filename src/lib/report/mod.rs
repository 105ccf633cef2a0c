//! Report: what people and machines read — event lines, incident verdicts and their summaries.
//!
//! The library renders, the binary prints. Event lines follow the timeline layout of the incident
//! summaries (`time  LAYER  kind  node  what happened`), so raw evidence and verdicts read alike.

mod expect;
#[cfg(feature = "tables")]
pub mod frame;
mod live;
mod request;
mod summary;

pub use self::expect::{Expected, ExpectedIncident};
pub use self::live::{change_json, change_text};
pub use self::request::request_text;
pub use self::summary::{explain, incident_text};
