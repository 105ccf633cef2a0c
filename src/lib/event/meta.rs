//! Capture metadata events: what tapio knows about the completeness of its own evidence.

use serde::{Deserialize, Serialize};

use super::{Source, Ts};

/// A time range, both ends inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub from: Ts,
    pub to: Ts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meta {
    /// Events that a source had and could not keep (a full ring buffer, a rate limit).
    Drop {
        source: Source,
        count: u64,
        range: Span,
        reason: String,
    },
    /// A time during which a source saw nothing (a lost watch, a restarted recorder).
    Gap {
        source: Source,
        range: Span,
        reason: String,
    },
    /// A note written into the capture by a person or a tool.
    Annotation { text: String },
}
