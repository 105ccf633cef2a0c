//! The publisher's spool: batches NATS did not take yet, on disk, sent in order later. Bounded:
//! a batch that does not fit is dropped and counted (the publisher sends a drop marker for it).
//! A batch is one file, written under a temporary name and renamed, so a crash never leaves half
//! a batch; files left by an earlier run are sent first.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use super::wire::Outgoing;
use super::Error;

pub(super) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<(PathBuf, u64)>,
    bytes: u64,
    next: u64,
}

impl Spool {
    /// Opens (creating) the spool directory and finds what an earlier run left in it.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, Error> {
        let err = |e: std::io::Error| Error::Spool {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        };
        fs::create_dir_all(dir).map_err(err)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            let entry = entry.map_err(err)?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(n) = name
                .strip_suffix(".batch")
                .and_then(|n| n.parse::<u64>().ok())
            {
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.push((n, path, len));
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            }
        }
        files.sort();
        let next = files.last().map_or(0, |f| f.0 + 1);
        let bytes = files.iter().map(|f| f.2).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            files: files.into_iter().map(|(_, p, l)| (p, l)).collect(),
            bytes,
            next,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends a batch; `Ok(false)` when it does not fit.
    pub fn push(&mut self, b: &Outgoing) -> Result<bool, Error> {
        let data = postcard::to_stdvec(b).map_err(|e| Error::Spool {
            path: self.dir.clone(),
            detail: format!("cannot encode a batch: {e}"),
        })?;
        if self.bytes + data.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        let path = self.dir.join(format!("{:020}.batch", self.next));
        let tmp = path.with_extension("tmp");
        let err = |e: std::io::Error| Error::Spool {
            path: path.clone(),
            detail: e.to_string(),
        };
        fs::write(&tmp, &data).map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        self.next += 1;
        self.bytes += data.len() as u64;
        self.files.push_back((path, data.len() as u64));
        Ok(true)
    }

    /// The oldest `n` batches. A file that cannot be read back is removed and reported (an error
    /// of this call; the next call goes on after it).
    pub fn peek(&mut self, n: usize) -> Result<Vec<Outgoing>, Error> {
        let mut out = Vec::new();
        for i in 0..n.min(self.files.len()) {
            let path = self.files[i].0.clone();
            let read = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|d| postcard::from_bytes::<Outgoing>(&d).map_err(|e| e.to_string()));
            match read {
                Ok(b) => out.push(b),
                Err(detail) if i == 0 => {
                    self.pop();
                    return Err(Error::Spool { path, detail });
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Removes the oldest batch (sent).
    pub fn pop(&mut self) {
        if let Some((path, len)) = self.files.pop_front() {
            let _ = fs::remove_file(&path);
            self.bytes = self.bytes.saturating_sub(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Ts;

    fn batch(seq: u64, size: usize) -> Outgoing {
        Outgoing {
            subject: "tapio.c.n.ebpf".into(),
            node: "n".into(),
            source: "ebpf".into(),
            run: "r".into(),
            seq,
            events: 1,
            first_ts: Ts(seq),
            last_ts: Ts(seq),
            live_clock: true,
            frame: vec![7; size],
        }
    }

    #[test]
    fn the_spool_keeps_order_across_reopening_and_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 3000).unwrap();
        assert!(s.push(&batch(0, 1000)).unwrap());
        assert!(s.push(&batch(1, 1000)).unwrap());
        assert!(!s.push(&batch(2, 1000)).unwrap(), "over 3000 bytes");
        drop(s);
        let mut s = Spool::open(dir.path(), 3000).unwrap();
        assert_eq!(s.peek(10).unwrap().len(), 2);
        assert_eq!(s.peek(1).unwrap()[0].seq, 0);
        s.pop();
        assert!(s.push(&batch(3, 10)).unwrap());
        assert_eq!(s.peek(1).unwrap()[0].seq, 1);
        s.pop();
        assert_eq!(s.peek(1).unwrap()[0].seq, 3);
        s.pop();
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }
}
