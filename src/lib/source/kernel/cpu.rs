//! CPU throttling, sampled from user space: each pod cgroup's `cpu.stat` under the cpu
//! controller (`nr_periods`, `nr_throttled`, and `throttled_time` in ns on cgroup v1 or
//! `throttled_usec` on v2).
//!
//! A container at its CPU limit is not killed and logs nothing: it gets slow. The kernel counts the
//! periods in which its quota ran out; a sample becomes an event only when that count grew, so an
//! unthrottled node writes nothing. Only the kubelet's subtrees (`kubepods*`) are walked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::event::{CpuThrottle, Name};

/// The counters of one `cpu.stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub periods: u64,
    pub throttled: u64,
    pub throttled_us: u64,
}

/// Parses `cpu.stat` (v1: `throttled_time` in ns; v2: `throttled_usec`).
pub fn parse(text: &str) -> Option<Stat> {
    let mut s = Stat::default();
    let mut seen = false;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let Ok(v) = v.trim().parse::<u64>() else {
            continue;
        };
        match k {
            "nr_periods" => {
                s.periods = v;
                seen = true;
            }
            "nr_throttled" => s.throttled = v,
            "throttled_time" => s.throttled_us = v / 1000,
            "throttled_usec" => s.throttled_us = v,
            _ => {}
        }
    }
    seen.then_some(s)
}

/// Where the cpu controller is mounted: v1 `cpu` (or `cpu,cpuacct`), else the v2 hierarchy.
pub fn cpu_root(mountinfo: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split_whitespace().nth(4);
        let mut r = right.split_whitespace();
        let (fstype, options) = (r.next(), r.nth(1));
        match (fstype, mount, options) {
            (Some("cgroup"), Some(m), Some(o)) if o.split(',').any(|x| x == "cpu") => {
                return Some(PathBuf::from(m))
            }
            (Some("cgroup2"), Some(m), _) => v2 = Some(PathBuf::from(m)),
            _ => {}
        }
    }
    v2
}

struct Last {
    stat: Stat,
    at: Instant,
}

/// Samples the pods' CPU throttling.
pub struct Sampler {
    root: PathBuf,
    last: HashMap<PathBuf, Last>,
}

/// Cgroups remembered at most (pods and containers of one node).
const MAX_CGROUPS: usize = 8192;

impl Sampler {
    pub fn new(root: PathBuf) -> Sampler {
        Sampler {
            root,
            last: HashMap::new(),
        }
    }

    /// Reads every pod and container cgroup; returns the throttling that grew since the previous
    /// sample.
    pub fn sample(&mut self) -> Vec<CpuThrottle> {
        let mut out = Vec::new();
        let mut stack: Vec<(PathBuf, String)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("kubepods") && e.path().is_dir() {
                    stack.push((e.path(), format!("/{name}")));
                }
            }
        }
        let mut seen = 0;
        while let Some((dir, rel)) = stack.pop() {
            seen += 1;
            if seen > MAX_CGROUPS {
                break;
            }
            self.one(&dir.join("cpu.stat"), &rel, &mut out);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name();
                    stack.push((e.path(), format!("{rel}/{}", name.to_string_lossy())));
                }
            }
        }
        if self.last.len() > MAX_CGROUPS {
            self.last.retain(|p, _| p.exists());
        }
        out.sort_by(|a, b| a.cgroup.cmp(&b.cgroup));
        out
    }

    fn one(&mut self, file: &Path, rel: &str, out: &mut Vec<CpuThrottle>) {
        let Some(stat) = std::fs::read_to_string(file).ok().and_then(|t| parse(&t)) else {
            return;
        };
        let now = Instant::now();
        let prev = self.last.insert(file.to_path_buf(), Last { stat, at: now });
        let Some(prev) = prev else {
            return; // the first sample is the baseline
        };
        let throttled = stat.throttled.saturating_sub(prev.stat.throttled);
        if throttled == 0 {
            return;
        }
        out.push(CpuThrottle {
            cgroup: Name::from(rel),
            periods: stat.periods.saturating_sub(prev.stat.periods),
            throttled_periods: throttled,
            throttled_us: stat.throttled_us.saturating_sub(prev.stat.throttled_us),
            interval_ms: now
                .duration_since(prev.at)
                .as_millis()
                .min(u32::MAX as u128) as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_parses_on_both_versions() {
        let v1 = "nr_periods 120\nnr_throttled 80\nthrottled_time 4200000000\n";
        assert_eq!(
            parse(v1),
            Some(Stat {
                periods: 120,
                throttled: 80,
                throttled_us: 4_200_000
            })
        );
        let v2 = "usage_usec 1\nuser_usec 1\nsystem_usec 0\nnr_periods 10\nnr_throttled 2\nthrottled_usec 5000\n";
        assert_eq!(
            parse(v2),
            Some(Stat {
                periods: 10,
                throttled: 2,
                throttled_us: 5000
            })
        );
        assert_eq!(parse("usage_usec 5\n"), None);
    }

    #[test]
    fn the_cpu_controller_is_found_in_mountinfo() {
        let v1 = "34 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n35 25 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            cpu_root(v1),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"))
        );
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(cpu_root(v2), Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn only_growing_throttling_becomes_events() {
        let dir = tempfile::tempdir().unwrap();
        let pod = dir.path().join("kubepods/burstable/pod1/abc");
        std::fs::create_dir_all(&pod).unwrap();
        std::fs::create_dir_all(dir.path().join("system.slice")).unwrap();
        let write = |periods: u64, thr: u64, ns: u64| {
            std::fs::write(
                pod.join("cpu.stat"),
                format!("nr_periods {periods}\nnr_throttled {thr}\nthrottled_time {ns}\n"),
            )
            .unwrap()
        };
        write(100, 0, 0);
        let mut s = Sampler::new(dir.path().to_path_buf());
        assert!(s.sample().is_empty(), "the first sample is a baseline");
        write(200, 0, 0);
        assert!(s.sample().is_empty(), "not throttled");
        write(300, 60, 3_000_000_000);
        let got = s.sample();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].cgroup.as_str(), "/kubepods/burstable/pod1/abc");
        assert_eq!(
            (
                got[0].periods,
                got[0].throttled_periods,
                got[0].throttled_us
            ),
            (100, 60, 3_000_000)
        );
    }
}
