//! The reorder window: events of many nodes, arriving in the order the stream stored them, merged
//! back into time order.
//!
//! Each input (a subject: one node's source) arrives in its own time order. An event is released
//! when two things hold: it has waited `max_lateness` of stream time (the NATS server's receive
//! clock, so that the same stream is merged the same way whenever it is read), so that inputs not
//! heard from yet have had their chance; and every input still sending has gone past its time
//! (the watermark: the lowest "latest time" among the inputs heard from within `max_lateness`).
//! An input quiet for longer is not waited for. An event that arrives behind what was already
//! released is late: it still enters the pipeline, and is counted. At equal times, events are
//! ordered by node, then by arrival: the tie rule of `replay` given the nodes' captures in name
//! order.

use std::collections::{BTreeMap, HashMap};

use crate::event::{Event, Name, Ts};

/// At most this many events wait in the window; past it, the oldest go on (counted as forced).
pub const MAX_PENDING: usize = 500_000;

#[derive(Clone, Copy)]
struct Input {
    latest: Ts,
    last_received: Ts,
}

pub struct Reorder {
    lateness: u64,
    /// Waiting events, by time, node and arrival, with the stream time they arrived at.
    pending: BTreeMap<(Ts, Name, u64), (Event, Ts)>,
    arrival: u64,
    inputs: HashMap<String, Input>,
    stream_now: Ts,
    released: Option<Ts>,
    max_pending: usize,
    /// Events that arrived behind what was already released.
    pub late: u64,
    /// Events released before their time because the window was full.
    pub forced: u64,
}

impl Reorder {
    pub fn new(max_lateness_ns: u64) -> Reorder {
        Reorder {
            lateness: max_lateness_ns,
            pending: BTreeMap::new(),
            arrival: 0,
            inputs: HashMap::new(),
            stream_now: Ts(0),
            released: None,
            max_pending: MAX_PENDING,
            late: 0,
            forced: 0,
        }
    }

    pub fn with_max_pending(mut self, n: usize) -> Reorder {
        self.max_pending = n.max(1);
        self
    }

    /// Events waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A batch of `input` (in time order), stored by the stream at `received`; what can be
    /// released now is appended to `out`, in time order (late events first, as they came).
    pub fn push(&mut self, input: &str, received: Ts, events: Vec<Event>, out: &mut Vec<Event>) {
        let mut latest = None;
        for e in events {
            latest = Some(latest.map_or(e.ts, |l: Ts| l.max(e.ts)));
            if self.released.is_some_and(|r| e.ts < r) {
                self.late += 1;
                out.push(e);
                continue;
            }
            self.arrival += 1;
            self.pending
                .insert((e.ts, e.node.clone(), self.arrival), (e, received));
        }
        self.stream_now = self.stream_now.max(received);
        let st = self.inputs.entry(input.to_string()).or_insert(Input {
            latest: Ts(0),
            last_received: received,
        });
        st.last_received = st.last_received.max(received);
        if let Some(l) = latest {
            st.latest = st.latest.max(l);
        }
        self.release(out);
    }

    /// The watermark: the lowest latest time among the inputs still sending.
    fn watermark(&self) -> Option<Ts> {
        let horizon = Ts(self.stream_now.0.saturating_sub(self.lateness));
        self.inputs
            .values()
            .filter(|i| i.last_received >= horizon)
            .map(|i| i.latest)
            .min()
    }

    fn release(&mut self, out: &mut Vec<Event>) {
        let w = self.watermark();
        loop {
            let full = self.pending.len() > self.max_pending;
            let Some(entry) = self.pending.first_entry() else {
                break;
            };
            let (ts, arrived) = (entry.key().0, entry.get().1);
            let waited = arrived.0.saturating_add(self.lateness) <= self.stream_now.0;
            let ready = waited && w.is_some_and(|w| ts <= w);
            if !ready && !full {
                break;
            }
            if !ready {
                self.forced += 1;
            }
            let (e, _) = entry.remove();
            self.released = Some(self.released.map_or(e.ts, |r| r.max(e.ts)));
            out.push(e);
        }
    }

    /// Stream time went on to `now` with no message (a live consumer between messages: the
    /// server's clock goes on); what has waited long enough is released.
    pub fn advance_to(&mut self, now: Ts, out: &mut Vec<Event>) {
        self.stream_now = self.stream_now.max(now);
        self.release(out);
    }

    /// Nothing arrived for a while (wall clock): nothing more is waited for.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        let all = std::mem::take(&mut self.pending);
        if let Some(((last, _, _), _)) = all.last_key_value() {
            self.released = Some(self.released.map_or(*last, |r| r.max(*last)));
        }
        out.extend(all.into_values().map(|(e, _)| e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Meta, Source};

    const S: u64 = 1_000_000_000;

    fn ev(node: &str, secs: u64) -> Event {
        Event::new(
            Ts(secs * S),
            node,
            Source::Tapio,
            Body::Meta(Meta::Annotation {
                text: String::new(),
            }),
        )
    }

    fn times(out: &[Event]) -> Vec<(String, u64)> {
        out.iter()
            .map(|e| (e.node.as_str().to_string(), e.ts.0 / S))
            .collect()
    }

    #[test]
    fn events_wait_their_window_and_for_every_input_still_sending_and_late_ones_are_counted() {
        let mut r = Reorder::new(5 * S);
        let mut out = Vec::new();
        r.push("a", Ts(100 * S), vec![ev("a", 10), ev("a", 12)], &mut out);
        r.push("b", Ts(101 * S), vec![ev("b", 13), ev("b", 15)], &mut out);
        assert_eq!(times(&out), [], "nothing has waited 5 s of stream time yet");
        r.push("a", Ts(106 * S), vec![ev("a", 14)], &mut out);
        assert_eq!(
            times(&out),
            [("a".into(), 10), ("a".into(), 12), ("b".into(), 13)],
            "14 has not waited; 15 is past a's 14"
        );
        out.clear();
        // a goes quiet: once stream time is 5 s past its last batch, b is not held back by it.
        r.push("b", Ts(112 * S), vec![ev("b", 20)], &mut out);
        assert_eq!(times(&out), [("a".into(), 14), ("b".into(), 15)]);
        out.clear();
        // a comes back with something older than what was released: late, still passed on.
        r.push("a", Ts(113 * S), vec![ev("a", 11), ev("a", 21)], &mut out);
        assert_eq!(r.late, 1);
        assert_eq!(times(&out), [("a".into(), 11)]);
        out.clear();
        r.flush(&mut out);
        assert_eq!(times(&out), [("b".into(), 20), ("a".into(), 21)]);
    }

    #[test]
    fn ties_go_by_node_then_arrival_and_a_full_window_releases_the_oldest() {
        let mut r = Reorder::new(5 * S);
        let mut out = Vec::new();
        r.push("z", Ts(1), vec![ev("z", 6)], &mut out);
        r.push(
            "a",
            Ts(1),
            vec![ev("a", 5), ev("a", 6), ev("a", 7)],
            &mut out,
        );
        r.flush(&mut out);
        assert_eq!(
            times(&out),
            [
                ("a".into(), 5),
                ("a".into(), 6),
                ("z".into(), 6),
                ("a".into(), 7)
            ]
        );
        let mut r = Reorder::new(5 * S).with_max_pending(3);
        out.clear();
        for t in 0..5 {
            r.push("q", Ts(2), vec![ev("q", 100 + t)], &mut out);
        }
        assert_eq!(r.forced, 2);
        assert_eq!(times(&out), [("q".into(), 100), ("q".into(), 101)]);
        assert_eq!(r.pending(), 3);
    }
}
