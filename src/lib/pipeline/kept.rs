//! A verdict kept beside captures (`tapio index --verdict`): the whole pipeline's answer over a
//! set of captures, written once, so that questions about those captures (`correlate
//! --trace-id`, `--pod`, …) answer from it instead of replaying the minutes around the request
//! — a day's capture answers in the time it takes to find the request's spans.
//!
//! It is the verdict of a whole read, so it is what a whole read answers, as long as nothing it
//! came from changed: it is kept with what it was computed by and from — this tapio (its version,
//! and the size and modification time of its executable, so that any other build computes anew),
//! the detectors' configuration, and each capture (its size, and a checksum of its header and of
//! its index, which holds every block's place, times, counts and filters' checksums) — and used
//! only when all of them are the same. A capture that grew, a
//! rebuilt tapio, another set of captures: the question is answered by reading, as without it.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Options, Outcome};
use crate::analysis::Incident;
use crate::capture::{Error, ReadOptions, Reader};
use crate::detect::Finding;
use crate::event::Ts;

/// The kept verdict of captures is beside the first of them (by path), with this appended.
pub const SUFFIX: &str = ".verdict";
/// What a kept verdict file starts with, and the version of its layout.
const MAGIC: &str = "tapio-verdict 1";
/// The bytes at each end of a capture whose checksum, with its index's, identifies it.
const TAIL: u64 = 64 * 1024;
/// The largest index checksummed whole (a day's capture of a busy node has one of 2.6 MB).
const MOST_INDEX: u64 = 256 << 20;

/// A verdict read back.
#[derive(Debug)]
pub struct Kept {
    /// Every incident, numbered as a whole read numbers them, with its findings.
    pub incidents: Vec<Incident>,
    /// When the first finding began (relative times count from it).
    pub first_finding: Ts,
    /// The file it was read from.
    pub path: PathBuf,
}

/// The file: written from the outcome's incidents (borrowed), read back owned.
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    magic: String,
    key: Key,
    /// The captures' names, in the key's order, for whoever reads the file.
    names: Vec<String>,
    events: u64,
    first_finding: Ts,
    incidents: Vec<StoredIncident<'a>>,
}

/// An incident, and its findings (which its JSON form leaves out).
#[derive(Serialize, Deserialize)]
struct StoredIncident<'a> {
    incident: Cow<'a, Incident>,
    findings: Cow<'a, [Finding]>,
}

/// What a verdict was computed by and from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Key {
    tapio: String,
    build: String,
    config: String,
    captures: Vec<Capture>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Capture {
    len: u64,
    /// Of its first 64 KiB, then its index to the end (or, without one, its last 64 KiB).
    crc32: u32,
}

/// Where the verdict of these captures is kept.
pub fn path(paths: &[PathBuf]) -> Option<PathBuf> {
    let first = paths.iter().min()?;
    let mut p = first.clone().into_os_string();
    p.push(SUFFIX);
    Some(PathBuf::from(p))
}

/// Why a verdict was not kept.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error(transparent)]
    Capture(#[from] Error),
    #[error("{}: {warning}; a read that skipped damage keeps no verdict", path.display())]
    Damaged { path: PathBuf, warning: String },
}

/// Keeps the verdict of a whole read of `paths` beside them. A read that met damage (corrupt
/// blocks skipped) keeps nothing: what it answers is not what the captures hold.
pub fn keep(
    paths: &[PathBuf],
    opts: &Options,
    outcome: &Outcome,
) -> Result<Option<PathBuf>, KeepError> {
    if let Some((p, w)) = outcome.warnings.first() {
        return Err(KeepError::Damaged {
            path: p.clone(),
            warning: w.to_string(),
        });
    }
    keep_verdict(
        paths,
        &opts.detect,
        outcome.events,
        outcome.detected.first_finding(),
        &outcome.verdict.incidents,
    )
}

/// Keeps beside `paths` a verdict computed with `detect` over every event they hold (`events`
/// of them), in order: a whole read's, or the recorder's own over what it wrote.
pub fn keep_verdict(
    paths: &[PathBuf],
    detect: &crate::detect::Config,
    events: u64,
    first_finding: Ts,
    incidents: &[Incident],
) -> Result<Option<PathBuf>, KeepError> {
    let Some(path) = path(paths) else {
        return Ok(None);
    };
    let (key, names) = key(paths, detect)?;
    let stored = Stored {
        magic: MAGIC.into(),
        key,
        names,
        events,
        first_finding,
        incidents: incidents
            .iter()
            .map(|i| StoredIncident {
                incident: Cow::Borrowed(i),
                findings: Cow::Borrowed(&i.findings),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| Error::io(&path, e.into()))?;
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io(&path, e))?;
    Ok(Some(path))
}

/// The verdict kept beside `paths`, when there is one computed by this tapio, with this
/// configuration, from these very captures. A kept verdict that cannot be read is said in
/// `notes` (and the question is answered by reading).
pub fn load(
    paths: &[PathBuf],
    opts: &Options,
    notes: &mut crate::capture::index::Notes,
) -> Result<Option<Kept>, Error> {
    let Some(path) = path(paths) else {
        return Ok(None);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            notes.push((path, format!("{e}; answering by reading the captures")));
            return Ok(None);
        }
    };
    // The key first: a verdict of another build or of other captures is not read further.
    #[derive(Deserialize)]
    struct Head {
        magic: String,
        key: Key,
    }
    let head: Head = match serde_json::from_slice(&bytes) {
        Ok(h) => h,
        Err(e) => {
            notes.push((
                path,
                format!("not a kept verdict ({e}); answering by reading the captures"),
            ));
            return Ok(None);
        }
    };
    if head.magic != MAGIC || head.key != key(paths, &opts.detect)?.0 {
        return Ok(None);
    }
    let stored: Stored = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            notes.push((
                path,
                format!("a damaged kept verdict ({e}); answering by reading the captures"),
            ));
            return Ok(None);
        }
    };
    Ok(Some(Kept {
        incidents: stored
            .incidents
            .into_iter()
            .map(|s| Incident {
                findings: s.findings.into_owned(),
                ..s.incident.into_owned()
            })
            .collect(),
        first_finding: stored.first_finding,
        path,
    }))
}

/// The key of a verdict of `paths`, and the captures' names in its order.
fn key(paths: &[PathBuf], detect: &crate::detect::Config) -> Result<(Key, Vec<String>), Error> {
    let mut captures = paths
        .iter()
        .map(|p| Ok((capture(p)?, p)))
        .collect::<Result<Vec<_>, Error>>()?;
    captures.sort_by_key(|(c, _)| (c.len, c.crc32));
    let names = captures
        .iter()
        .map(|(_, p)| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let key = Key {
        tapio: env!("CARGO_PKG_VERSION").into(),
        build: build(),
        config: format!("{:08x}", crc32fast::hash(format!("{detect:?}").as_bytes())),
        captures: captures.into_iter().map(|(c, _)| c).collect(),
    };
    Ok((key, names))
}

fn capture(path: &Path) -> Result<Capture, Error> {
    let io = |e| Error::io(path, e);
    let reader = Reader::open(path, ReadOptions::default())?;
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    // A closed capture: its index (which holds every block's place, times, counts and its
    // filters' checksums), trailer and footer; else its last bytes.
    let from = match reader.footer()? {
        Some((index_at, _)) if len - index_at.min(len) <= MOST_INDEX => index_at,
        _ => len.saturating_sub(TAIL),
    };
    let mut crc = crc32fast::Hasher::new();
    for (at, n) in [(0, TAIL.min(len)), (from, len - from)] {
        f.seek(SeekFrom::Start(at)).map_err(io)?;
        let mut bytes = Vec::with_capacity(n as usize);
        (&mut f).take(n).read_to_end(&mut bytes).map_err(io)?;
        crc.update(&bytes);
    }
    Ok(Capture {
        len,
        crc32: crc.finalize(),
    })
}

/// This build of tapio: its executable's size and modification time (unknown: never the same).
fn build() -> String {
    let meta = std::env::current_exe().and_then(std::fs::metadata);
    match meta.and_then(|m| Ok((m.len(), m.modified()?))) {
        Ok((len, modified)) => {
            let ns = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("{len}-{ns}")
        }
        Err(_) => format!("unknown-{}", std::process::id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every incident fixture's verdict, kept and read back, is the verdict: every field the
    /// JSON schema has, and every finding.
    #[test]
    fn every_fixtures_verdict_reads_back_whole() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incidents");
        let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|d| d.unwrap().path())
            .filter(|p| p.join("expected.json").exists())
            .collect();
        fixtures.sort();
        assert!(fixtures.len() >= 30, "{} fixtures", fixtures.len());
        let opts = Options::default();
        let mut findings = 0;
        for fixture in fixtures {
            let dir = tempfile::tempdir().unwrap();
            let mut paths = Vec::new();
            for f in std::fs::read_dir(&fixture).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|x| x == "tapio") {
                    let to = dir.path().join(f.file_name().unwrap());
                    std::fs::copy(&f, &to).unwrap();
                    paths.push(to);
                }
            }
            let outcome = super::super::run(&paths, &opts, &mut |_| {}).unwrap();
            let at = keep(&paths, &opts, &outcome).unwrap().unwrap();
            let mut notes = Vec::new();
            let kept = load(&paths, &opts, &mut notes).unwrap().expect("kept");
            assert!(notes.is_empty(), "{notes:?}");
            assert_eq!(kept.path, at);
            let json = |i: &[Incident]| serde_json::to_string_pretty(i).unwrap();
            assert_eq!(
                json(&kept.incidents),
                json(&outcome.verdict.incidents),
                "{}",
                fixture.display()
            );
            for (a, b) in kept.incidents.iter().zip(&outcome.verdict.incidents) {
                findings += a.findings.len();
                let json = |f: &[Finding]| serde_json::to_string(f).unwrap();
                let (a, b) = (json(&a.findings), json(&b.findings));
                let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                assert_eq!(
                    a,
                    b,
                    "{}: {}",
                    fixture.display(),
                    &a[at.saturating_sub(200)..]
                );
            }
            assert_eq!(kept.first_finding, outcome.detected.first_finding());
            // Another configuration of the detectors computes anew.
            let mut other = opts.clone();
            other.detect.burst_min += 1;
            assert!(load(&paths, &other, &mut notes).unwrap().is_none());
        }
        assert!(findings > 100, "{findings} findings");
    }
}
