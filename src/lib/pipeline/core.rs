//! The core every way in feeds — replay, `replay --follow`, the recorder's live path, tests:
//! ordered batches of events → attribute and detect → link → analysis, and incidents handed out
//! as they close (and, live, as they open and change).
//!
//! Whatever feeds it, the closed incidents are the same for the same events: the checks that close
//! incidents fall on whole minutes of event time, never on batch edges or the wall clock.

use std::collections::HashSet;
use std::path::PathBuf;

use super::live::{Change, Live};
use crate::analysis::{self, Incident, Verdict};
use crate::capture::Warning;
use crate::detect::{self, Blind, Detected, Detector, View};
use crate::event::{Body, Event, Span, TraceId, Ts};
use crate::link::{self, Group};

/// Event time an incident must have been quiet before it is closed: the longest rule window and
/// a burst window, so that nothing still to come can link to it.
pub const QUIET_NS: u64 = (1800 + 60) * Ts::NANOS_PER_SEC;
/// How often (in event time) the core looks for incidents to close.
const CHECK_NS: u64 = 60 * Ts::NANOS_PER_SEC;

/// Where incidents go as they open, change and close.
pub type Sink<'a> = dyn FnMut(Change<'_>) + Send + 'a;

/// The detect → link → analysis stage over a stream of ordered batches.
pub struct Core {
    detector: Detector,
    closed: Vec<Incident>,
    next_check: Option<Ts>,
    events: u64,
    live: Option<Live>,
    trace: Option<TraceId>,
    trace_spans: Vec<Span>,
}

/// What the core produced at the end of its stream.
pub struct Finished {
    pub verdict: Verdict,
    pub detected: Detected,
    pub events: u64,
    /// The spans of the trace asked for ([`Core::collect_trace`]).
    pub trace_spans: Vec<Span>,
}

impl Core {
    /// A core that hands out incidents as they close.
    pub fn new(cfg: detect::Config) -> Core {
        Core {
            detector: Detector::new(cfg),
            closed: Vec::new(),
            next_check: None,
            events: 0,
            live: None,
            trace: None,
            trace_spans: Vec::new(),
        }
    }

    /// Also hands out incidents as they open and change (live output).
    pub fn live(mut self) -> Core {
        self.live = Some(Live::default());
        self
    }

    /// Keeps the spans of one trace while the stream goes by (`correlate --trace-id` reads its
    /// captures once).
    pub fn collect_trace(mut self, trace: Option<TraceId>) -> Core {
        self.trace = trace;
        self
    }

    /// Events seen so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The time of the last event seen.
    pub fn last_ts(&self) -> Ts {
        self.detector.last_ts
    }

    /// Looks at a batch of events (in time order, after every earlier batch).
    pub fn feed(&mut self, batch: &[Event], sink: &mut Sink<'_>) {
        self.events += batch.len() as u64;
        for e in batch {
            match self.next_check {
                None => self.next_check = Some(next_minute(e.ts)),
                Some(t) if e.ts >= t => {
                    self.close_quiet(t, sink);
                    self.next_check = Some(next_minute(e.ts));
                }
                Some(_) => {}
            }
            if let (Some(want), Body::Span(s)) = (self.trace, &e.body) {
                if s.trace_id == want {
                    self.trace_spans.push((**s).clone());
                }
            }
            self.detector.observe(e);
        }
        self.look_live(sink);
    }

    /// Time went on to `now` with no event (a live source that is quiet): the checks due by then
    /// run, as they would have run at the next event.
    pub fn advance(&mut self, now: Ts, sink: &mut Sink<'_>) {
        if self.next_check.is_some_and(|t| now >= t) {
            // The last check due by now: after a long quiet stretch, everything quiet long enough
            // by then closes at once.
            self.close_quiet(Ts(now.0 / CHECK_NS * CHECK_NS), sink);
            self.next_check = Some(next_minute(now));
        }
        self.look_live(sink);
    }

    /// The end of the stream: what is still open closes. `warnings` (torn captures, skipped blocks)
    /// become gaps in the evidence.
    pub fn finish(mut self, warnings: &[(PathBuf, Warning)], sink: &mut Sink<'_>) -> Finished {
        // A capture cut short (or with a skipped corrupt block) may miss what came last or inside.
        for (path, w) in warnings {
            let last = self.detector.last_ts;
            let (from, what) = match w {
                Warning::Truncated { .. } => (last, "ends torn"),
                Warning::SkippedCorrupt { .. } => (Ts(0), "has a corrupt block that was skipped"),
                Warning::Missing { .. } => (Ts(0), "lost blocks when it was written"),
            };
            self.detector.blind.push(Blind {
                from,
                to: last,
                what: format!("{} {what}", path.display()),
                lost: None,
            });
        }
        let detected = self.detector.finish();
        let groups = link::link(detected.view());
        let rest = analysis::verdict(analysis::incidents(detected.view(), &groups));
        for inc in &rest.incidents {
            close(&mut self.live, inc, sink);
        }
        let mut all = self.closed;
        all.extend(rest.incidents);
        Finished {
            verdict: analysis::verdict(all),
            detected,
            events: self.events,
            trace_spans: self.trace_spans,
        }
    }

    /// Live: the incidents as they stand now, compared with what was last said of them.
    fn look_live(&mut self, sink: &mut Sink<'_>) {
        let Some(live) = &mut self.live else { return };
        let findings = self.detector.live_findings();
        if !live.changed(&findings) {
            return;
        }
        let view = View {
            findings: &findings,
            topology: self.detector.topology(),
            blind: &self.detector.blind,
        };
        let groups = link::link(view);
        live.look(analysis::incidents(view, &groups), sink);
    }

    /// Closes the incidents whose findings are all settled and older than the quiet period.
    fn close_quiet(&mut self, now: Ts, sink: &mut Sink<'_>) {
        let horizon = Ts(now.0.saturating_sub(QUIET_NS));
        let view = self.detector.view();
        if !view.findings.iter().any(|f| f.end < horizon) {
            return;
        }
        let open = self.detector.open_findings();
        let groups: Vec<Group> = link::link(view)
            .into_iter()
            .filter(|g| {
                g.members
                    .iter()
                    .all(|&i| !open.contains(&i) && view.findings[i].end < horizon)
            })
            .collect();
        if groups.is_empty() {
            return;
        }
        let done: HashSet<usize> = groups
            .iter()
            .flat_map(|g| g.members.iter().copied())
            .collect();
        let mut incidents = analysis::incidents(view, &groups);
        incidents
            .sort_by(|a, b| (a.start, &a.root_cause.entity).cmp(&(b.start, &b.root_cause.entity)));
        for inc in incidents {
            close(&mut self.live, &inc, sink);
            self.closed.push(inc);
        }
        self.detector.forget(&done);
    }
}

fn close(live: &mut Option<Live>, inc: &Incident, sink: &mut Sink<'_>) {
    match live {
        Some(live) => live.close(inc, sink),
        None => sink(Change::closed(inc)),
    }
}

fn next_minute(ts: Ts) -> Ts {
    Ts((ts.0 / CHECK_NS + 1) * CHECK_NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::RootKind;
    use crate::pipeline::State;
    use crate::source::generate::{generate, Config};

    #[test]
    fn live_incidents_open_before_the_end_keep_their_id_and_close_as_replay_does() {
        let mut events = Vec::new();
        let cfg = Config {
            events: 200_000,
            incident: true,
            ..Config::default()
        };
        generate(&cfg, |mut e| {
            e.seq = events.len() as u64;
            events.push(e);
            Ok::<_, ()>(())
        })
        .unwrap();
        // (state, id, root kind, the incident's JSON — empty for one merged or withdrawn)
        let row = |c: Change<'_>| {
            (
                c.state,
                c.id,
                c.incident.root_cause.kind,
                if c.merged_into.is_some() || c.withdrawn {
                    String::new()
                } else {
                    serde_json::to_string(c.incident).unwrap()
                },
            )
        };
        let mut changes: Vec<(State, u64, RootKind, String)> = Vec::new();
        let mut core = Core::new(detect::Config::default()).live();
        for batch in events.chunks(4096) {
            core.feed(batch, &mut |c| changes.push(row(c)));
        }
        let during = changes.len();
        let live = core.finish(&[], &mut |c| changes.push(row(c)));
        assert!(
            changes[..during]
                .iter()
                .any(|(s, _, k, _)| *s == State::Open && *k == RootKind::OomContainerLimit),
            "the OOM opened before the stream ended: {:?}",
            changes.iter().map(|c| (c.0, c.1, c.2)).collect::<Vec<_>>()
        );
        for (s, id, _, _) in changes.iter().filter(|c| c.0 == State::Open) {
            let closed = changes
                .iter()
                .filter(|c| c.0 == State::Closed && c.1 == *id)
                .count();
            assert_eq!(closed, 1, "incident {id} ({s:?}) closes once");
        }
        // What closed is what a run without live output says, incident for incident.
        // Those closed as part of another (an empty text) go on under that one.
        let mut closed: Vec<String> = changes
            .iter()
            .filter(|c| c.0 == State::Closed && !c.3.is_empty())
            .map(|c| {
                let mut v: serde_json::Value = serde_json::from_str(&c.3).unwrap();
                v.as_object_mut().unwrap().remove("id");
                v.to_string()
            })
            .collect();
        closed.sort();
        let (replayed, _) = crate::pipeline::run_events([events], detect::Config::default());
        let mut want: Vec<String> = replayed
            .incidents
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(i).unwrap();
                v.as_object_mut().unwrap().remove("id");
                v.to_string()
            })
            .collect();
        want.sort();
        assert_eq!(closed, want);
        assert_eq!(live.verdict.incidents.len(), want.len());
    }
}
