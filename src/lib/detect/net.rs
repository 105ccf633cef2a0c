//! Connection failures and retransmits, aggregated into bursts per destination.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::{Detector, Evidence, Facts, Finding, FindingKind, MAX_EVIDENCE};
use crate::event::{Event, TcpMeaning, TcpRetransmit, TcpStateChange, Ts};
use crate::topology::Entity;

#[derive(Default)]
pub(crate) struct Bursts {
    open: HashMap<(FindingKind, IpAddr, u16), Burst>,
    /// Event time of the last sweep for bursts that went quiet.
    swept: Ts,
}

struct Burst {
    node: String,
    first: Ts,
    last: Ts,
    count: u64,
    sources: BTreeSet<IpAddr>,
    /// The failing processes, for clients that share the node's address (host network).
    pids: BTreeSet<u32>,
    evidence: Vec<Evidence>,
}

impl Detector {
    pub(crate) fn tcp_state(&mut self, e: &Event, t: &TcpStateChange) {
        let kind = match t.meaning {
            TcpMeaning::Refused => FindingKind::ConnRefused,
            TcpMeaning::Timeout => FindingKind::ConnTimeout,
            TcpMeaning::Reset => FindingKind::ConnReset,
            _ => return self.sweep(e.ts),
        };
        self.burst(e, kind, t.daddr, t.dport, t.saddr, 1);
        if t.pid != 0 {
            if let Some(b) = self.net.open.get_mut(&(kind, t.daddr, t.dport)) {
                if b.pids.len() < 64 {
                    b.pids.insert(t.pid);
                }
            }
        }
    }

    pub(crate) fn retransmit(&mut self, e: &Event, r: &TcpRetransmit) {
        self.burst(
            e,
            FindingKind::RetransmitSpike,
            r.daddr,
            r.dport,
            r.saddr,
            u64::from(r.count),
        );
    }

    fn burst(
        &mut self,
        e: &Event,
        kind: FindingKind,
        daddr: IpAddr,
        dport: u16,
        saddr: IpAddr,
        n: u64,
    ) {
        self.sweep(e.ts);
        let window = self.cfg.burst_window_ns;
        let key = (kind, daddr, dport);
        // A burst goes on while failures keep coming (a dependency down for a day is one burst,
        // not 8,640); it ends after a quiet window.
        if let Some(b) = self.net.open.get(&key) {
            if e.ts.saturating_sub(b.last) > window {
                let b = self.net.open.remove(&key);
                self.emit_burst(key, b);
            }
        }
        let b = self.net.open.entry(key).or_insert_with(|| Burst {
            node: e.node.to_string(),
            first: e.ts,
            last: e.ts,
            count: 0,
            sources: BTreeSet::new(),
            pids: BTreeSet::new(),
            evidence: Vec::new(),
        });
        b.count += n;
        b.last = e.ts;
        if b.sources.len() < 64 {
            b.sources.insert(saddr);
        }
        if b.evidence.len() < MAX_EVIDENCE {
            b.evidence.push(Evidence {
                seq: e.seq,
                ts: e.ts,
                line: e.to_string(),
            });
        }
    }

    /// Emits bursts quiet for longer than the window (all of them at the end: `now` = `None`).
    pub(crate) fn close_bursts(&mut self, now: Option<Ts>) {
        let window = self.cfg.burst_window_ns;
        let mut done: Vec<_> = self
            .net
            .open
            .iter()
            .filter(|(_, b)| now.is_none_or(|t| t.saturating_sub(b.last) > window))
            .map(|(k, _)| *k)
            .collect();
        done.sort();
        for key in done {
            let b = self.net.open.remove(&key);
            self.emit_burst(key, b);
        }
    }

    fn sweep(&mut self, now: Ts) {
        if now.saturating_sub(self.net.swept) > self.cfg.burst_window_ns {
            self.net.swept = now;
            self.close_bursts(Some(now));
        }
    }

    fn emit_burst(&mut self, key: (FindingKind, IpAddr, u16), b: Option<Burst>) {
        let Some(b) = b else { return };
        if let Some(mut f) = self.burst_finding(key, &b) {
            f.id = self.findings.len();
            self.findings.push(f);
        }
    }

    /// The bursts still open that already count as findings (for live views: a storm of refused
    /// connections that goes on is shown before it stops).
    pub(crate) fn open_bursts(&self) -> Vec<Finding> {
        let mut keys: Vec<_> = self.net.open.keys().copied().collect();
        keys.sort();
        keys.into_iter()
            .filter_map(|k| self.burst_finding(k, &self.net.open[&k]))
            .collect()
    }

    fn burst_finding(
        &self,
        (kind, daddr, dport): (FindingKind, IpAddr, u16),
        b: &Burst,
    ) -> Option<Finding> {
        let min = if kind == FindingKind::RetransmitSpike {
            self.cfg.retransmit_min
        } else {
            self.cfg.burst_min
        };
        // At least `min` per window on average over the burst: a steady trickle is not a burst.
        let window = self.cfg.burst_window_ns as u128;
        let span = u128::from(b.last.saturating_sub(b.first)).max(window);
        if b.count < min || u128::from(b.count) * window < u128::from(min) * span {
            return None;
        }
        let dest = self.topo.owner_of_ip(daddr);
        let entity = dest.clone().unwrap_or_else(|| Entity::Host {
            node: b.node.clone(),
            what: format!("{daddr}:{dport}"),
        });
        let clients: Vec<Entity> = {
            let mut c: Vec<Entity> = b
                .sources
                .iter()
                .filter_map(|ip| self.topo.owner_of_ip(*ip))
                .collect();
            for pid in &b.pids {
                if let Some(cg) = self.pids.get(pid).cloned() {
                    if let Some(p) = self.topo.peek_pod_of_cgroup(&cg) {
                        c.push(p.entity());
                    }
                }
            }
            c.sort();
            c.dedup();
            c
        };
        let verb = match kind {
            FindingKind::ConnRefused => "connections refused",
            FindingKind::ConnTimeout => "connections timed out",
            FindingKind::ConnReset => "connections reset",
            _ => "segments retransmitted",
        };
        let from = match clients.len() {
            0 => String::new(),
            1 => format!(" from {}", clients[0].short()),
            n => format!(" from {n} pods"),
        };
        let summary = format!(
            "{daddr}:{dport} ({}) {} {verb}{from}",
            entity.short(),
            b.count
        );
        Some(Finding {
            id: 0,
            kind,
            layer: kind.layer(),
            entity,
            start: b.first,
            end: b.last,
            count: b.count,
            summary,
            facts: Facts {
                peer: dest,
                clients,
                node: Some(b.node.clone()).filter(|n| !n.is_empty()),
                ..Facts::default()
            },
            evidence: b.evidence.clone(),
        })
    }
}
