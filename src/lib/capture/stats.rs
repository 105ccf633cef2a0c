//! Counters over the events of a capture: what the trailer stores and `tapio info` prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Body, Event, Kind, Meta, Source, Ts};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub events: u64,
    pub first_ts: Option<Ts>,
    pub last_ts: Option<Ts>,
    pub by_kind: BTreeMap<Kind, u64>,
    pub by_source: BTreeMap<Source, u64>,
    /// Events that sources reported lost (the sum of the drop markers' counts).
    pub dropped: u64,
    /// How many drop markers and gap markers the capture holds.
    pub drop_markers: u64,
    pub gap_markers: u64,
    /// Secrets replaced by `[REDACTED:<kind>]`, by kind (see [`crate::redact`]).
    pub redacted: BTreeMap<String, u64>,
}

impl Stats {
    pub fn add(&mut self, e: &Event) {
        self.events += 1;
        self.first_ts = Some(self.first_ts.map_or(e.ts, |t| t.min(e.ts)));
        self.last_ts = Some(self.last_ts.map_or(e.ts, |t| t.max(e.ts)));
        *self.by_kind.entry(e.kind()).or_default() += 1;
        *self.by_source.entry(e.source).or_default() += 1;
        match &e.body {
            Body::Meta(Meta::Drop { count, .. }) => {
                self.dropped = self.dropped.saturating_add(*count);
                self.drop_markers += 1;
            }
            Body::Meta(Meta::Gap { .. }) => self.gap_markers += 1,
            _ => crate::redact::count_event(e, &mut self.redacted),
        }
    }
}
