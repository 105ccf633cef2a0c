//! Reading only the part of large captures that a question needs: `correlate --trace-id` and
//! `report --trace-id` find the request's blocks through the captures' indexes, then run the
//! pipeline over a window of time around it (the incidents that answer are those with a finding
//! going on within 5 minutes of the request), from the detectors' baselines before it — plus
//! every block that holds Kubernetes objects and Events (which explain the other events whenever
//! they were recorded) and tapio's own markers. Then, for every finding of the incidents that
//! answer, the window must hold each cause and effect a causal rule could link to it (each rule's
//! window, by the finding's kind) and the baselines before it; where it does not, the window grows
//! and the run is done again, until the incidents are whole. The answer is the one a whole read
//! gives, read from minutes of a capture of days.

use std::path::PathBuf;

use super::{run_readers, run_tapped, Options, Outcome, Sink, Tap};
use crate::analysis::scope::Scope;
use crate::capture::index::{self, Set, Want};
use crate::capture::{Error, Merge, Reader};
use crate::detect::service::BASELINE_NS;
use crate::detect::FindingKind;
use crate::event::{Body, Kind, Span, TraceId, Ts};
use crate::filter::TimeSpec;
use crate::link::{reach_ahead_ns, reach_back_ns};

/// A finding's kind and time span, which say how far around it a window must reach.
type Extent = (FindingKind, Ts, Ts);

/// A window is read through the index while it holds at most one block in this many.
const MOST: usize = 4;
/// How long after a finding its detector may still be judging it (a trace settling, a bucket
/// being tested).
const BURST_NS: u64 = 60 * Ts::NANOS_PER_SEC;

/// The kinds read whatever the window: the Kubernetes objects and Events, the tasks a recorder
/// found running when it started, and tapio's markers of drops and gaps.
fn always() -> std::collections::HashSet<Kind> {
    [
        Kind::K8sObject,
        Kind::K8sEvent,
        Kind::Task,
        Kind::Drop,
        Kind::Gap,
        Kind::Annotation,
    ]
    .into()
}

/// What a narrowed run read.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// The window of time read, besides the blocks always read.
    pub from: Ts,
    pub to: Ts,
    /// Runs made (the window grew between them).
    pub passes: u32,
    /// Blocks read in the last run, of the captures' blocks.
    pub blocks: usize,
    pub of_blocks: usize,
}

/// A request as the captures' indexes find it.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// The time span of its spans and logs (`None`: it is in no capture).
    pub span: Option<(Ts, Ts)>,
    /// Its spans, in the order a whole read meets them.
    pub spans: Vec<Span>,
}

/// A trace's spans and the time span of its spans and logs, found through the indexes; `None`
/// when a capture has no index (a damaged one is put in `notes`).
pub fn find_trace(
    paths: &[PathBuf],
    opts: &Options,
    trace: TraceId,
    notes: &mut index::Notes,
) -> Result<Option<Found>, Error> {
    let want = Want {
        traces: vec![index::key(Set::Trace, &trace.0)],
        ..Want::default()
    };
    let mut readers = Vec::new();
    for p in paths {
        let mut r = Reader::open(p, opts.read.clone())?;
        match r.plan(&want) {
            Ok(Some(blocks)) => r.select(blocks),
            Ok(None) => return Ok(None),
            Err(e) => {
                notes.push(index::damaged(p, &e));
                return Ok(None);
            }
        }
        readers.push(r);
    }
    let mut merge = Merge::new(readers);
    let mut found = Found::default();
    while let Some(e) = merge.next_event()? {
        let (start, end) = match &e.body {
            Body::Span(s) if s.trace_id == trace => {
                found.spans.push((**s).clone());
                (s.start, s.end)
            }
            Body::Log(l) if l.trace_id == Some(trace) => (e.ts, e.ts),
            Body::AppLog(a) if a.log.trace_id == Some(trace) => (e.ts, e.ts),
            _ => continue,
        };
        let (start, end) = (start.min(e.ts), end.max(e.ts));
        found.span = Some(
            found
                .span
                .map_or((start, end), |(a, b)| (a.min(start), b.max(end))),
        );
    }
    Ok(Some(found))
}

/// Runs the pipeline over the window around `[first, last]` (and the blocks always read): from
/// the detectors' baselines before it to a detector's burst after. `kept` gives the findings of
/// the incidents an outcome answers with, as `(kind, start, end)`; the window grows until it
/// holds, for each of them, every cause and effect a rule could link to it and the baselines
/// before it — then those incidents are as a whole read gives them. `None` when a capture has
/// no index (a damaged one is put in `notes`): the caller reads everything.
#[allow(clippy::too_many_arguments)]
pub fn run(
    paths: &[PathBuf],
    opts: &Options,
    (first, last): (Ts, Ts),
    kept: &dyn Fn(&Outcome) -> Vec<Extent>,
    sink: &mut Sink<'_>,
    pass: &mut dyn FnMut(),
    tap: &mut Tap<'_>,
    notes: &mut index::Notes,
) -> Result<Option<(Outcome, Read)>, Error> {
    let mut from = Ts(first.0.saturating_sub(BASELINE_NS));
    let mut to = Ts(last.0.saturating_add(BURST_NS));
    let mut passes = 0;
    loop {
        passes += 1;
        let want = Want {
            from: Some(from),
            to: Some(to),
            always: always(),
            ..Want::default()
        };
        let mut blocks = 0;
        let mut of_blocks = 0;
        // Each capture opened (and its index read) once a pass.
        let mut readers = Vec::with_capacity(paths.len());
        for p in paths {
            let mut r = Reader::open(p, opts.read.clone())?;
            match r.plan(&want) {
                Ok(Some(selected)) => {
                    blocks += selected.len();
                    // The index `plan` read.
                    of_blocks += r.index().ok().flatten().map_or(0, |i| i.blocks.len());
                    r.select(selected);
                }
                Ok(None) => return Ok(None),
                Err(e) => {
                    notes.push(index::damaged(p, &e));
                    return Ok(None);
                }
            }
            readers.push(r);
        }
        // A window that is most of the captures costs more than it saves (and another pass
        // may follow): the whole read answers at once.
        if blocks * MOST > of_blocks {
            return Ok(None);
        }
        pass();
        let outcome = run_readers(readers, opts, Some(sink), tap)?;
        let (mut grow_from, mut grow_to) = (from, to);
        for (kind, start, end) in kept(&outcome) {
            grow_from = grow_from.min(Ts(start.0.saturating_sub(reach_back_ns(kind))));
            grow_to = grow_to.max(Ts(end.0.saturating_add(reach_ahead_ns(kind))));
        }
        let read = Read {
            from,
            to,
            passes,
            blocks,
            of_blocks,
        };
        if (grow_from, grow_to) == (from, to) || blocks == of_blocks {
            return Ok(Some((outcome, read)));
        }
        (from, to) = (grow_from, grow_to);
    }
}

/// The pipeline's answer to a question of `correlate` or `report`: through the indexes when the
/// question names a trace or an absolute time range and every capture has an index, else from a
/// whole read. `pass` is called before each run (the tap sees the events of each).
pub fn answer(
    paths: &[PathBuf],
    opts: &Options,
    scope: &Scope,
    sink: &mut Sink<'_>,
    pass: &mut dyn FnMut(),
    tap: &mut Tap<'_>,
) -> Result<(Outcome, Option<Read>), Error> {
    let absolute = |t: Option<TimeSpec>| match t {
        None => Ok(None),
        Some(TimeSpec::Absolute(t)) => Ok(Some(t)),
        Some(_) => Err(()),
    };
    let mut notes = Vec::new();
    // The time range of the question: the request's, as far as an incident near it reaches.
    let reach = crate::analysis::scope::REQUEST_REACH_NS;
    let anchor = match (opts.trace, absolute(scope.since), absolute(scope.until)) {
        (_, Err(()), _) | (_, _, Err(())) => None,
        (Some(t), ..) => find_trace(paths, opts, t, &mut notes)?
            .and_then(|f| f.span)
            .map(|(a, b)| (Ts(a.0.saturating_sub(reach)), Ts(b.0.saturating_add(reach)))),
        (None, Ok(Some(a)), Ok(Some(b))) => Some((a, b)),
        (None, ..) => None,
    };
    if let Some(anchor) = anchor {
        // Every incident with a finding in the range, whatever it involves: one that involves
        // the question only through a finding outside the first window must grow it too.
        let kept = |o: &Outcome| -> Vec<Extent> {
            let mut s = scope.clone();
            if opts.trace.is_some() && s.trace(o.trace_spans.clone()).is_none() {
                return Vec::new();
            }
            s.entities.clear();
            s.request = None;
            s.keep(o.verdict.incidents.clone(), o.detected.first_finding())
                .iter()
                .flat_map(|i| i.findings.iter().map(|f| (f.kind, f.start, f.end)))
                .collect()
        };
        let narrowed = run(paths, opts, anchor, &kept, sink, pass, tap, &mut notes)?;
        if let Some((outcome, read)) = narrowed {
            return Ok((outcome, Some(read)));
        }
    }
    pass();
    let mut outcome = run_tapped(paths, opts, Some(sink), tap)?;
    outcome.notes.extend(notes);
    Ok((outcome, None))
}
