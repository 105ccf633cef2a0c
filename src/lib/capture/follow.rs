//! Following a capture while it is written: one file until its writer closes it, or a directory
//! of rotated files (`record -C/-G/-W`, the flight recorder), moving to the next file as each one
//! is closed — as `tail -F` does for logs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Blocks, Error, ReadOptions, Reader, StopWhen, Warning};
use crate::event::Event;

/// The captures of a directory in the order they were written: by name, with the numbers in names
/// compared as numbers (`x-9.tapio` before `x-10.tapio`), so both `-C`'s counters and `-G`'s
/// timestamps sort right.
pub fn rotated_set(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "tapio"))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_cached_key(|p| natural_key(&p.file_name().unwrap_or_default().to_string_lossy()));
    v
}

/// A name split into text and numbers, numbers compared by value.
fn natural_key(name: &str) -> Vec<(String, u128)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut digits = String::from(c);
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            out.push((
                std::mem::take(&mut text),
                digits.parse().unwrap_or(u128::MAX),
            ));
        } else {
            text.push(c);
        }
    }
    out.push((text, 0));
    out
}

/// Reads a capture (or a rotated set) as it is written, until `stop` is set and everything
/// written so far is read.
pub struct Follower {
    path: PathBuf,
    dir: Option<PathBuf>,
    current: Option<Reader>,
    /// The files of the set already read.
    read: Vec<PathBuf>,
    opts: ReadOptions,
    stop: Arc<AtomicBool>,
    warnings: Vec<Warning>,
    poll: Duration,
}

impl Follower {
    pub fn new(path: &Path, opts: ReadOptions, stop: &Arc<AtomicBool>) -> Follower {
        Follower {
            path: path.to_path_buf(),
            dir: path.is_dir().then(|| path.to_path_buf()),
            current: None,
            read: Vec::new(),
            poll: opts.poll.unwrap_or(Duration::from_millis(200)),
            opts: ReadOptions {
                follow: true,
                ..opts
            },
            stop: Arc::clone(stop),
            warnings: Vec::new(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The next file of the set not read yet, if it exists already.
    fn next_file(&self) -> Option<PathBuf> {
        match &self.dir {
            // A file not there yet is waited for, as `tail -F` does.
            None => (self.read.is_empty() && self.path.exists()).then(|| self.path.clone()),
            Some(dir) => rotated_set(dir)
                .into_iter()
                .find(|p| !self.read.contains(p)),
        }
    }

    /// Opens the next file, waiting for it; `None` once stopped with no file left.
    fn open_next(&mut self) -> Result<Option<Reader>, Error> {
        loop {
            if let Some(p) = self.next_file() {
                self.read.push(p.clone());
                // Waiting in the file ends on Ctrl-C, or when a newer file of the set appears
                // (the writer moved on: a crash left this one torn).
                let stop = Arc::clone(&self.stop);
                let (dir, seen) = (self.dir.clone(), self.read.clone());
                let when = move || {
                    stop.load(Ordering::Relaxed)
                        || dir
                            .as_ref()
                            .is_some_and(|d| rotated_set(d).iter().any(|f| !seen.contains(f)))
                };
                let opts = ReadOptions {
                    stop: Some(StopWhen(Arc::new(when))),
                    ..self.opts.clone()
                };
                match Reader::open(&p, opts) {
                    // Rotated away (`-W`, the ring) before it was reached.
                    Err(_) if self.dir.is_some() && !p.exists() => continue,
                    r => return r.map(Some),
                }
            }
            if self.stopped() || (self.dir.is_none() && !self.read.is_empty()) {
                return Ok(None);
            }
            std::thread::sleep(self.poll);
        }
    }
}

impl Blocks for Follower {
    fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
        loop {
            if self.current.is_none() {
                match self.open_next()? {
                    Some(r) => self.current = Some(r),
                    None => return Ok(false),
                }
            }
            let Some(r) = self.current.as_mut() else {
                continue;
            };
            let more = r.next_block(out);
            let mut w = r.take_warnings();
            // A file cut short because we stopped following is not torn: its writer goes on.
            if self.stop.load(Ordering::Relaxed) {
                w.retain(|w| !matches!(w, Warning::Truncated { .. }));
            }
            self.warnings.extend(w);
            if more? {
                return Ok(true);
            }
            self.current = None;
            if self.dir.is_none() {
                return Ok(false);
            }
        }
    }

    fn path(&self) -> &Path {
        self.current.as_ref().map_or(&self.path, |r| r.path())
    }

    fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_files_sort_by_their_numbers() {
        let mut v = ["x-10.tapio", "x-9.tapio", "x-1.tapio", "a.tapio"];
        v.sort_by_cached_key(|n| natural_key(n));
        assert_eq!(v, ["a.tapio", "x-1.tapio", "x-9.tapio", "x-10.tapio"]);
        let mut t = ["n-20261204T101500.tapio", "n-20261204T100000.tapio"];
        t.sort_by_cached_key(|n| natural_key(n));
        assert_eq!(t[0], "n-20261204T100000.tapio");
    }
}
