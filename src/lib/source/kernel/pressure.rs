//! Memory pressure (PSI), sampled from user space: `/proc/pressure/memory` for the node, and each
//! cgroup's `memory.pressure` where the memory controller is on cgroup v2.
//!
//! A sample becomes an event only when something stalled since the previous one: a quiet node
//! writes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::event::{MemoryPressure, Name};

/// One `some` or `full` line of a PSI file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Psi {
    /// avg10 in hundredths of a percent.
    pub avg10: u32,
    /// Total stall time in microseconds.
    pub total_us: u64,
}

/// Parses a PSI file: `some avg10=1.23 avg60=… avg300=… total=N` and the same for `full`.
pub fn parse(text: &str) -> Option<(Psi, Psi)> {
    let mut some = None;
    let mut full = Psi::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let which = words.next()?;
        let mut psi = Psi::default();
        for w in words {
            match w.split_once('=') {
                Some(("avg10", v)) => psi.avg10 = centi(v)?,
                Some(("total", v)) => psi.total_us = v.parse().ok()?,
                _ => {}
            }
        }
        match which {
            "some" => some = Some(psi),
            "full" => full = psi,
            _ => {}
        }
    }
    Some((some?, full))
}

/// "12.34" → 1234.
fn centi(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, "0"));
    let frac = format!("{frac:0<2}");
    Some(int.parse::<u32>().ok()? * 100 + frac.get(..2)?.parse::<u32>().ok()?)
}

struct Last {
    some: u64,
    full: u64,
    at: Instant,
}

/// Samples the node's and the cgroups' memory pressure.
pub struct Sampler {
    node_file: PathBuf,
    /// The cgroup v2 hierarchy holding `memory.pressure` files, when the memory controller is there.
    v2_root: Option<PathBuf>,
    last: HashMap<PathBuf, Last>,
}

impl Sampler {
    pub fn new(v2_root: Option<PathBuf>) -> Sampler {
        Sampler {
            node_file: PathBuf::from("/proc/pressure/memory"),
            v2_root: v2_root.filter(|r| {
                r.join("memory.pressure").exists() || r.join("cgroup.controllers").exists()
            }),
            last: HashMap::new(),
        }
    }

    /// Whether the kernel reports pressure at all (PSI needs CONFIG_PSI and `psi=1`).
    pub fn available(&self) -> bool {
        self.node_file.exists()
    }

    /// Reads every file; returns the pressures that grew since the previous sample.
    pub fn sample(&mut self) -> Vec<MemoryPressure> {
        let mut out = Vec::new();
        let node_file = self.node_file.clone();
        self.one(&node_file, Name::default(), &mut out);
        if let Some(root) = self.v2_root.clone() {
            let mut stack = vec![(root, String::new())];
            while let Some((dir, rel)) = stack.pop() {
                let file = dir.join("memory.pressure");
                if file.exists() && !rel.is_empty() {
                    self.one(&file, Name::from(rel.as_str()), &mut out);
                }
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        let name = entry.file_name();
                        stack.push((entry.path(), format!("{rel}/{}", name.to_string_lossy())));
                    }
                }
            }
        }
        out
    }

    fn one(&mut self, file: &Path, cgroup: Name, out: &mut Vec<MemoryPressure>) {
        let Some((some, full)) = std::fs::read_to_string(file).ok().and_then(|t| parse(&t)) else {
            return;
        };
        let now = Instant::now();
        let prev = self.last.insert(
            file.to_path_buf(),
            Last {
                some: some.total_us,
                full: full.total_us,
                at: now,
            },
        );
        let Some(prev) = prev else {
            return; // the first sample is the baseline
        };
        let some_stall = some.total_us.saturating_sub(prev.some);
        if some_stall == 0 {
            return;
        }
        out.push(MemoryPressure {
            cgroup,
            some_avg10: some.avg10,
            full_avg10: full.avg10,
            some_stall_us: some_stall,
            full_stall_us: full.total_us.saturating_sub(prev.full),
            interval_ms: now
                .duration_since(prev.at)
                .as_millis()
                .min(u32::MAX as u128) as u32,
        });
    }

    #[cfg(test)]
    fn with_files(node_file: PathBuf, v2_root: Option<PathBuf>) -> Sampler {
        Sampler {
            node_file,
            v2_root,
            last: HashMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_files_parse() {
        let text = "some avg10=12.34 avg60=1.50 avg300=0.00 total=123456\nfull avg10=0.5 avg60=0.00 avg300=0.00 total=42\n";
        let (some, full) = parse(text).unwrap();
        assert_eq!(
            some,
            Psi {
                avg10: 1234,
                total_us: 123456
            }
        );
        assert_eq!(
            full,
            Psi {
                avg10: 50,
                total_us: 42
            }
        );
        assert!(parse("").is_none());
        assert!(parse("some avg10=x total=1").is_none());
    }

    #[test]
    fn only_growing_stalls_become_events() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("memory");
        let cg = dir.path().join("kubepods/pod1");
        std::fs::create_dir_all(&cg).unwrap();
        let write = |p: &Path, some: u64, full: u64| {
            std::fs::write(
                p,
                format!("some avg10=3.00 avg60=0 avg300=0 total={some}\nfull avg10=1.00 avg60=0 avg300=0 total={full}\n"),
            )
            .unwrap()
        };
        write(&node, 100, 10);
        write(&cg.join("memory.pressure"), 5, 0);
        let mut s = Sampler::with_files(node.clone(), Some(dir.path().to_path_buf()));
        assert!(s.sample().is_empty(), "the first sample is a baseline");
        assert!(s.sample().is_empty(), "nothing grew");
        write(&cg.join("memory.pressure"), 2005, 1000);
        let got = s.sample();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].cgroup.as_str(), "/kubepods/pod1");
        assert_eq!((got[0].some_stall_us, got[0].full_stall_us), (2000, 1000));
        assert_eq!((got[0].some_avg10, got[0].full_avg10), (300, 100));
    }
}
