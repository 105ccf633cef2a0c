//! From the cgroup ids the probes send to cgroup paths.
//!
//! A probe sends the kernfs id of a task's memory cgroup; that id is the inode number of the
//! cgroup's directory in the memory hierarchy (`/sys/fs/cgroup/memory` on cgroup v1,
//! `/sys/fs/cgroup` on v2). The resolver walks that hierarchy once, and again when it meets an id
//! it does not know (a container that just started), at most a few times a second.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::event::Name;

/// How often an unknown id may trigger a new walk.
const RESCAN_EVERY: Duration = Duration::from_millis(200);
/// Ids kept; a node has far fewer live cgroups.
const MAX_IDS: usize = 1 << 16;

/// Where the memory controller's hierarchy is mounted, from `/proc/self/mountinfo`: a cgroup v1
/// mount with the `memory` option, else the cgroup2 mount.
pub fn memory_hierarchy(mountinfo: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        // "36 25 0:31 / /sys/fs/cgroup/memory rw,… shared:15 - cgroup cgroup rw,memory"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4);
        let mut r = right.split(' ');
        let (fstype, _src, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        match (fstype, mount_point) {
            (Some("cgroup"), Some(mp)) if opts.split(',').any(|o| o == "memory") => {
                return Some(PathBuf::from(unescape(mp)));
            }
            (Some("cgroup2"), Some(mp)) if v2.is_none() => v2 = Some(PathBuf::from(unescape(mp))),
            _ => {}
        }
    }
    v2
}

/// mountinfo escapes spaces and a few other bytes as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cgroup id → path (relative to the hierarchy's root, starting with `/`).
pub struct Resolver {
    root: Option<PathBuf>,
    by_id: HashMap<u64, Name>,
    last_scan: Option<Instant>,
}

impl Resolver {
    pub fn new(root: Option<PathBuf>) -> Resolver {
        let mut r = Resolver {
            root,
            by_id: HashMap::new(),
            last_scan: None,
        };
        r.scan();
        r
    }

    /// The hierarchy this resolver walks.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The path of a cgroup id; empty when the id is 0 or names no cgroup (any more).
    pub fn path(&mut self, id: u64) -> Name {
        if id == 0 {
            return Name::default();
        }
        if let Some(p) = self.by_id.get(&id) {
            return p.clone();
        }
        if self.last_scan.is_none_or(|t| t.elapsed() >= RESCAN_EVERY) {
            self.scan();
            if let Some(p) = self.by_id.get(&id) {
                return p.clone();
            }
        }
        Name::default()
    }

    /// Remembers a path learned another way (an OOM record carries its path).
    pub fn learn(&mut self, id: u64, path: &Name) {
        if id != 0 && !path.is_empty() && self.by_id.len() < MAX_IDS {
            self.by_id.insert(id, path.clone());
        }
    }

    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(root) = self.root.clone() else {
            return;
        };
        if self.by_id.len() >= MAX_IDS {
            self.by_id.clear();
        }
        let mut stack = vec![(root, String::from("/"))];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.by_id
                .entry(meta.ino())
                .or_insert_with(|| Name::from(rel.as_str()));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    let child = if rel == "/" {
                        format!("/{name}")
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((entry.path(), child));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_hierarchy_is_the_v1_memory_mount_else_cgroup2() {
        let v1 = "25 18 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 25 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:8 - cgroup cgroup rw,cpu
33 25 0:29 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
40 25 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
        assert_eq!(
            memory_hierarchy(v1),
            Some(PathBuf::from("/sys/fs/cgroup/memory"))
        );
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";
        assert_eq!(memory_hierarchy(v2), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(memory_hierarchy("garbage\n\n"), None);
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
    }

    #[test]
    fn ids_are_the_inodes_of_the_hierarchy_directories() {
        let dir = tempfile::tempdir().unwrap();
        let leaf = dir.path().join("kubepods/burstable/podabc/0123");
        std::fs::create_dir_all(&leaf).unwrap();
        let mut r = Resolver::new(Some(dir.path().to_path_buf()));
        let ino = std::fs::metadata(&leaf).unwrap().ino();
        assert_eq!(r.path(ino).as_str(), "/kubepods/burstable/podabc/0123");
        let root = std::fs::metadata(dir.path()).unwrap().ino();
        assert_eq!(r.path(root).as_str(), "/");
        assert_eq!(r.path(0).as_str(), "");
        // A cgroup made after the first walk is found by the next one.
        let late = dir.path().join("kubepods/late");
        std::fs::create_dir(&late).unwrap();
        std::thread::sleep(RESCAN_EVERY);
        let ino = std::fs::metadata(&late).unwrap().ino();
        assert_eq!(r.path(ino).as_str(), "/kubepods/late");
    }
}
