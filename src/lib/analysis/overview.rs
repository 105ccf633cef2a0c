//! What a capture holds, at a glance: its time range, nodes, and how many events each source gave
//! second by second (a report's overview draws them over time).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::event::{Body, Event, Meta, Source, Ts};

/// Counts of events, kept per second and source while the events go by.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overview {
    pub first: Option<Ts>,
    pub last: Option<Ts>,
    pub events: u64,
    /// Events per node (events with no node, such as a cluster's objects, are not counted here).
    pub nodes: BTreeMap<String, u64>,
    pub sources: BTreeMap<Source, u64>,
    /// Events lost before they reached the capture, as the drop markers count them.
    pub dropped: u64,
    /// Per second since the epoch, per source.
    #[serde(skip)]
    seconds: BTreeMap<u64, [u64; SOURCES]>,
    /// The second being counted (events come in time order, mostly).
    #[serde(skip)]
    current: Option<(u64, [u64; SOURCES])>,
}

const SOURCES: usize = Source::ALL.len();

/// Events per source in equal slices of the capture's time.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub from: Ts,
    /// Nanoseconds a bucket.
    pub width: u64,
    /// Per source that gave events: a count per bucket.
    pub series: Vec<(Source, Vec<u64>)>,
}

impl Overview {
    pub fn observe(&mut self, e: &Event) {
        self.events += 1;
        self.first = Some(self.first.map_or(e.ts, |t| t.min(e.ts)));
        self.last = Some(self.last.map_or(e.ts, |t| t.max(e.ts)));
        if !e.node.is_empty() {
            match self.nodes.get_mut(&*e.node) {
                Some(n) => *n += 1,
                None => {
                    self.nodes.insert(e.node.to_string(), 1);
                }
            }
        }
        *self.sources.entry(e.source).or_default() += 1;
        if let Body::Meta(Meta::Drop { count, .. }) = &e.body {
            self.dropped += count;
        }
        let sec = e.ts.0 / Ts::NANOS_PER_SEC;
        let i = Source::ALL.iter().position(|s| *s == e.source).unwrap_or(0);
        match &mut self.current {
            Some((s, counts)) if *s == sec => counts[i] += 1,
            _ => {
                self.flush();
                let mut counts = [0; SOURCES];
                counts[i] = 1;
                self.current = Some((sec, counts));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((sec, counts)) = self.current.take() {
            let into = self.seconds.entry(sec).or_insert([0; SOURCES]);
            for (a, b) in into.iter_mut().zip(counts) {
                *a += b;
            }
        }
    }

    /// The events per source in `buckets` equal slices of the time range (none when empty).
    pub fn histogram(&mut self, buckets: usize) -> Option<Histogram> {
        self.flush();
        let (first, last) = (self.first?, self.last?);
        let buckets = buckets.max(1) as u64;
        let span = last.0 - first.0 + 1;
        let width = span.div_ceil(buckets).max(1);
        let mut series: Vec<(Source, Vec<u64>)> = Vec::new();
        for (i, source) in Source::ALL.iter().enumerate() {
            if !self.sources.contains_key(source) {
                continue;
            }
            let mut counts = vec![0; buckets as usize];
            for (sec, c) in &self.seconds {
                if c[i] == 0 {
                    continue;
                }
                let at = (sec * Ts::NANOS_PER_SEC).max(first.0) - first.0;
                let b = ((at / width) as usize).min(counts.len() - 1);
                counts[b] += c[i];
            }
            series.push((*source, counts));
        }
        Some(Histogram {
            from: first,
            width,
            series,
        })
    }
}

/// The distinct nodes, for a line of text.
pub fn node_names(o: &Overview) -> BTreeSet<&str> {
    o.nodes.keys().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kernel;

    fn at(secs: u64, source: Source) -> Event {
        Event::new(
            Ts(secs * Ts::NANOS_PER_SEC),
            "n1",
            source,
            Kernel::Exit(crate::event::Exit {
                pid: 1,
                comm: "a".into(),
                code: 0,
                signal: 0,
                cgroup: "".into(),
            }),
        )
    }

    #[test]
    fn counts_land_in_their_slice_of_time() {
        let mut o = Overview::default();
        for s in [100, 100, 101, 150, 199] {
            o.observe(&at(s, Source::Ebpf));
        }
        o.observe(&at(130, Source::Kube));
        o.observe(&at(100, Source::Ebpf)); // late, out of order
        let h = o.histogram(4).unwrap();
        assert_eq!(h.from, Ts::from_secs(100));
        assert_eq!(h.series.len(), 2);
        assert_eq!(h.series[0], (Source::Ebpf, vec![4, 0, 1, 1]));
        assert_eq!(h.series[1], (Source::Kube, vec![0, 1, 0, 0]));
        assert_eq!(o.events, 7);
        assert_eq!(o.nodes["n1"], 7);
    }

    #[test]
    fn an_empty_capture_has_no_histogram() {
        assert!(Overview::default().histogram(10).is_none());
    }
}
