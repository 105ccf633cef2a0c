//! What `export`, `query` and `stats` share: the filters of `cat`, and one run of the pipeline
//! that shows every event to the command's rows.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Result;
use tapio::capture::{index, ReadOptions, Warning};
use tapio::event::{Event, Kind, TraceId};
use tapio::filter::{Filter, TimeSpec};
use tapio::pipeline::{self, Change, Options, Outcome};

use crate::common;

/// The filters of `tapio cat`, for the rows of the tables.
#[derive(clap::Args, Clone, Default)]
pub struct Narrow {
    /// Only these kinds of event, comma-separated (as `tapio cat --kind`).
    #[arg(long, value_delimiter = ',', value_parser = crate::cat::parse_kind)]
    pub kind: Vec<Kind>,
    /// Only events seen on this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Only events about objects in this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Only events about this pod (NAMESPACE/NAME or NAME).
    #[arg(long)]
    pub pod: Option<String>,
    /// Only spans and logs of this trace (32 hex digits).
    #[arg(long, value_parser = crate::cat::parse_trace)]
    pub trace_id: Option<TraceId>,
    /// Only spans and application logs of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// From this time (as `tapio cat --since`: 10:02, 2024-05-01T10:02:00Z, +5m).
    #[arg(long, value_parser = TimeSpec::parse)]
    pub since: Option<TimeSpec>,
    /// Up to this time (as --since; +5m is five minutes after the start of the capture).
    #[arg(long, value_parser = TimeSpec::parse)]
    pub until: Option<TimeSpec>,
    /// Read on past corrupt blocks (reported as warnings) instead of stopping at the first.
    #[arg(long)]
    pub skip_corrupt: bool,
    /// Read every block, not only those the captures' indexes say can match the filters (the
    /// rows are the same either way).
    #[arg(long)]
    pub no_index: bool,
}

/// A run over captures: every event is shown to `row` with whether the filters want it.
pub struct Run {
    pub files: Vec<PathBuf>,
    pub filter: Filter,
    pub read: ReadOptions,
    /// Read only the blocks the filters can match, where every capture has an index (and no
    /// verdict is asked for: the core needs every event).
    pub use_index: bool,
}

impl Run {
    pub fn new(files: &[PathBuf], narrow: &Narrow) -> Result<Run> {
        let files = common::expand(files);
        let mut filter = Filter {
            kinds: narrow.kind.iter().copied().collect(),
            sources: Default::default(),
            node: narrow.node.clone(),
            namespace: narrow.namespace.clone(),
            pod: narrow.pod.clone(),
            trace_id: narrow.trace_id,
            service: narrow.service.clone(),
            since: narrow.since,
            until: narrow.until,
            pod_uids: HashSet::new(),
        };
        let read = ReadOptions {
            skip_corrupt: narrow.skip_corrupt,
            ..Default::default()
        };
        if filter.wants_pod_uids() {
            crate::cat::learn_pods(&files, &read, &mut filter, !narrow.no_index)?;
        }
        Ok(Run {
            files,
            filter,
            read,
            use_index: !narrow.no_index,
        })
    }

    /// Runs the pipeline; with `verdict`, its core too (the outcome's verdict is empty without).
    /// `row` sees every event in order; its error stops the run and is returned.
    pub fn go(
        &self,
        verdict: bool,
        quiet: bool,
        what: &str,
        mut row: impl FnMut(&Event, bool) -> Result<()> + Send,
    ) -> Result<Outcome> {
        let bar = common::counter(quiet, what);
        let opts = Options {
            read: self.read.clone(),
            ..Options::default()
        };
        let mut window = None;
        // The captures opened and narrowed to what the filters can match, when that is done.
        let mut opened = None;
        if self.use_index && !verdict {
            // Times resolved from the indexes (the first event's time), to narrow the blocks read
            // too; the blocks of Kubernetes objects are read whatever the filters, for the rows'
            // pods and containers.
            let mut readers = common::open_all(&self.files, &self.read)?;
            let mut notes: index::Notes = readers
                .iter()
                .filter_map(|r| r.index().err().map(|e| index::damaged(r.path(), &e)))
                .collect();
            if let Some(start) = index::first_ts(&readers) {
                let (since, until) = (
                    self.filter.since.map(|s| s.resolve(start)),
                    self.filter.until.map(|s| s.resolve(start)),
                );
                window = Some((since, until));
                let mut want = self.filter.want(since, until);
                want.always = [Kind::K8sObject].into();
                // A damaged index was noted above; a damaged filter is found here.
                for note in index::select(&mut readers, &want) {
                    if !notes.iter().any(|(p, _)| *p == note.0) {
                        notes.push(note);
                    }
                }
            }
            for (path, note) in notes {
                common::warn(&path, note);
            }
            opened = Some(readers);
        }
        let mut seen = 0u64;
        let mut failed = None;
        let filter = &self.filter;
        let mut tap = |batch: &[Event]| -> ControlFlow<()> {
            for e in batch {
                let (since, until) = *window.get_or_insert_with(|| {
                    (
                        filter.since.map(|s| s.resolve(e.ts)),
                        filter.until.map(|s| s.resolve(e.ts)),
                    )
                });
                if let Err(e) = row(e, filter.matches(e, since, until)) {
                    failed = Some(e);
                    return ControlFlow::Break(());
                }
            }
            seen += batch.len() as u64;
            bar.set_position(seen);
            ControlFlow::Continue(())
        };
        let mut no_live = |_: Change<'_>| {};
        let sink = verdict.then_some(&mut no_live as &mut pipeline::Sink<'_>);
        let outcome = match opened {
            Some(readers) => pipeline::run_readers(readers, &opts, sink, &mut tap),
            None => pipeline::run_tapped(&self.files, &opts, sink, &mut tap),
        };
        bar.finish_and_clear();
        if let Some(e) = failed {
            return Err(e);
        }
        let outcome = outcome?;
        for (path, note) in &outcome.notes {
            common::warn(path, note);
        }
        for (path, w) in &outcome.warnings {
            common::warn(path, w);
        }
        Ok(outcome)
    }
}

/// The exit status of a run that read everything: 1 when corrupt data was skipped.
pub fn exit(outcome: &Outcome) -> std::process::ExitCode {
    common::exit(
        outcome
            .warnings
            .iter()
            .any(|(_, w)| matches!(w, Warning::SkippedCorrupt { .. })),
    )
}
