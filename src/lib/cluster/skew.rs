//! Clock skew between nodes. Each live recorder stamps its batches with its clock when it sends
//! them (`Tapio-Sent`); JetStream stamps them with the server's clock when it stores them. On
//! loopback or a LAN the difference is the node's clock offset to within milliseconds, and one
//! reference clock (the server's) serves the whole cluster. The estimate is the median of a node's
//! recent samples; past the threshold, the node's event times are corrected by it (and the
//! correction is kept until the estimate falls under half the threshold, so that it does not
//! flap). Captures uploaded after the fact carry no stamp: their clock cannot be judged this way.

use std::collections::{BTreeMap, VecDeque};

use crate::event::Ts;

/// Samples per node the estimate is taken over.
const SAMPLES: usize = 31;

#[derive(Clone, Debug, Default)]
struct Clock {
    samples: VecDeque<i64>,
    applied: i64,
    /// When (event time) the current correction started.
    since: Option<Ts>,
}

/// A node's clock as estimated.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSkew {
    pub node: String,
    /// Its clock minus the server's, nanoseconds (positive: ahead).
    pub estimate_ns: i64,
    /// What is subtracted from its event times now.
    pub applied_ns: i64,
}

#[derive(Clone, Debug)]
pub struct Skew {
    threshold: Option<u64>,
    nodes: BTreeMap<String, Clock>,
}

impl Skew {
    /// `threshold_ns`: correct a node whose clock is off by more; `None`: estimate, never correct.
    pub fn new(threshold_ns: Option<u64>) -> Skew {
        Skew {
            threshold: threshold_ns,
            nodes: BTreeMap::new(),
        }
    }

    /// A batch of `node` sent at `sent` (its clock) and stored at `received` (the server's):
    /// returns the correction to subtract from its events' times.
    pub fn observe(&mut self, node: &str, sent: Ts, received: Ts, at: Ts) -> i64 {
        let c = self.nodes.entry(node.to_string()).or_default();
        c.samples.push_back(sent.0 as i64 - received.0 as i64);
        if c.samples.len() > SAMPLES {
            c.samples.pop_front();
        }
        let est = median(&c.samples);
        if let Some(th) = self.threshold {
            let off = est.unsigned_abs();
            if off > th {
                // Whole milliseconds: the estimate is not finer than that.
                let ms = (est as f64 / 1e6).round() as i64 * 1_000_000;
                if c.applied != ms {
                    c.since.get_or_insert(at);
                }
                c.applied = ms;
            } else if off < th / 2 {
                c.applied = 0;
                c.since = None;
            }
        }
        c.applied
    }

    /// The correction applied to `node` now.
    pub fn correction(&self, node: &str) -> i64 {
        self.nodes.get(node).map_or(0, |c| c.applied)
    }

    /// Every node seen with a clock stamp.
    pub fn report(&self) -> Vec<NodeSkew> {
        self.nodes
            .iter()
            .map(|(n, c)| NodeSkew {
                node: n.clone(),
                estimate_ns: median(&c.samples),
                applied_ns: c.applied,
            })
            .collect()
    }

    /// The corrections in force, with when they started (event time).
    pub fn applied(&self) -> Vec<(String, i64, Ts)> {
        self.nodes
            .iter()
            .filter(|(_, c)| c.applied != 0)
            .map(|(n, c)| (n.clone(), c.applied, c.since.unwrap_or(Ts(0))))
            .collect()
    }
}

fn median(s: &VecDeque<i64>) -> i64 {
    if s.is_empty() {
        return 0;
    }
    let mut v: Vec<i64> = s.iter().copied().collect();
    v.sort_unstable();
    v[v.len() / 2]
}

/// A correction in words: "+7.012 s".
pub fn seconds(ns: i64) -> String {
    format!("{:+.3} s", ns as f64 / 1e9)
}

/// Applies a correction to an event time.
pub fn correct(ts: Ts, correction_ns: i64) -> Ts {
    Ts((ts.0 as i64).saturating_sub(correction_ns).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn a_clock_seven_seconds_ahead_is_corrected_and_a_small_one_is_left_alone() {
        let mut s = Skew::new(Some(2_000 * MS as u64));
        let base = 1_700_000_000_000_000_000u64;
        for i in 0..10 {
            let recv = Ts(base + i * 1_000_000_000);
            // 7 s ahead, with a few milliseconds of network delay.
            let sent = Ts((recv.0 as i64 + 7_000 * MS - (i as i64 % 3) * MS) as u64);
            s.observe("node-c", sent, recv, recv);
            s.observe("node-a", Ts(recv.0 - 2 * MS as u64), recv, recv);
        }
        assert_eq!(s.correction("node-c"), 6_999 * MS);
        assert_eq!(s.correction("node-a"), 0);
        assert_eq!(
            correct(Ts(10_000 * MS as u64), 7_000 * MS),
            Ts(3_000 * MS as u64)
        );
        assert_eq!(s.applied().len(), 1);
        assert_eq!(seconds(6_999 * MS), "+6.999 s");
        // Without a threshold: estimated, never corrected.
        let mut n = Skew::new(None);
        n.observe("node-c", Ts(base + 7_000_000_000), Ts(base), Ts(base));
        assert_eq!(n.correction("node-c"), 0);
        assert_eq!(n.report()[0].estimate_ns, 7_000 * MS);
    }
}
