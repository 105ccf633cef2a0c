//! One capture read by threads: a reader of checked blocks and workers that decompress and decode
//! them; [`Input`] hands the blocks back in the capture's order, as an input of the merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::internal;
use crate::capture::{corrupt_block, Blocks, Decoder, Error, RawBlock, Reader, Warning};
use crate::event::Event;

/// What the reader met, numbered in the capture's order, each with the reader's warnings since
/// the one before (a stretch skipped before a block is said when that block is handed out).
enum Item {
    Block(u64, RawBlock, Vec<Warning>),
    Failed(u64, Error, Vec<Warning>),
    End(u64, Vec<Warning>),
}

type Block = Result<Vec<Event>, (RawBlock, String)>;

enum Decoded {
    Block(u64, Block, Vec<Warning>),
    Failed(u64, Error, Vec<Warning>),
    End(u64, Vec<Warning>),
}

/// One capture's decoded blocks, in order.
pub(super) struct Input {
    path: PathBuf,
    rx: Receiver<Decoded>,
    pending: BTreeMap<u64, (Block, Vec<Warning>)>,
    next: u64,
    end_at: Option<(u64, Vec<Warning>)>,
    /// The error that ends the read, and where: every block before it is handed out first.
    failed: Option<(u64, Error, Vec<Warning>)>,
    done: bool,
    skip_corrupt: bool,
    warnings: Vec<Warning>,
    spares: Spares,
}

/// Vectors of events the core is done with, back to be filled again: the memory of a block is
/// used again rather than mapped afresh. The events they still hold are dropped by the merge
/// stage between batches ([`Spares::tidy`]), off the core's thread and, when the merge got to
/// them first, off the decoders' (a decoder is the stage the others wait for; one that finds no
/// emptied vector empties one itself).
#[derive(Clone)]
pub(super) struct Spares {
    /// Given back holding events.
    full: (Sender<Vec<Event>>, Receiver<Vec<Event>>),
    /// Empty, ready to be filled.
    clean: (Sender<Vec<Event>>, Receiver<Vec<Event>>),
}

impl Spares {
    /// At most `n` vectors of each kind are kept; past that they are dropped where they are
    /// given back.
    pub(super) fn new(n: usize) -> Spares {
        Spares {
            full: bounded(n),
            clean: bounded(n),
        }
    }

    pub(super) fn give(&self, v: Vec<Event>) {
        let _ = if v.is_empty() {
            self.clean.0.try_send(v)
        } else {
            self.full.0.try_send(v)
        };
    }

    /// Empties the vectors given back full, for [`Spares::take`].
    pub(super) fn tidy(&self) {
        while let Ok(mut v) = self.full.1.try_recv() {
            v.clear();
            if self.clean.0.try_send(v).is_err() {
                return;
            }
        }
    }

    /// An empty vector, with the memory of one given back if there is one.
    pub(super) fn take(&self) -> Vec<Event> {
        match self.clean.1.try_recv().or_else(|_| self.full.1.try_recv()) {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

impl Input {
    pub(super) fn spawn<'s>(
        scope: &'s thread::Scope<'s, '_>,
        mut reader: Reader,
        threads: usize,
        spares: &Spares,
    ) -> Input {
        let path = reader.path().to_path_buf();
        let skip_corrupt = reader.options().skip_corrupt;
        let (raw_tx, raw_rx) = bounded::<Item>(threads * 2);
        let (dec_tx, dec_rx) = bounded::<Decoded>(threads * 2);
        scope.spawn(move || read_stage(&mut reader, raw_tx));
        for _ in 0..threads {
            let (rx, tx, spares) = (raw_rx.clone(), dec_tx.clone(), spares.clone());
            scope.spawn(move || decode_stage(rx, tx, spares));
        }
        Input {
            path,
            rx: dec_rx,
            pending: BTreeMap::new(),
            next: 0,
            end_at: None,
            failed: None,
            done: false,
            skip_corrupt,
            warnings: Vec::new(),
            spares: spares.clone(),
        }
    }
}

impl Blocks for Input {
    fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
        loop {
            if self.done {
                return Ok(false);
            }
            if let Some((block, warnings)) = self.pending.remove(&self.next) {
                self.next += 1;
                self.warnings.extend(warnings);
                match block {
                    Ok(mut events) => {
                        if out.is_empty() {
                            std::mem::swap(out, &mut events);
                        } else {
                            out.append(&mut events);
                        }
                        self.spares.give(events);
                        return Ok(true);
                    }
                    Err((raw, what)) => {
                        let w = corrupt_block(&self.path, &raw, what, self.skip_corrupt)?;
                        self.warnings.push(w);
                    }
                }
                continue;
            }
            // Workers may deliver the end (or an error) before the last blocks: it counts once
            // they are in.
            if self.end_at.as_ref().is_some_and(|(at, _)| *at == self.next) {
                if let Some((_, w)) = self.end_at.take() {
                    self.warnings.extend(w);
                }
                self.done = true;
                continue;
            }
            if self
                .failed
                .as_ref()
                .is_some_and(|(at, ..)| *at <= self.next)
            {
                if let Some((_, e, w)) = self.failed.take() {
                    self.warnings.extend(w);
                    self.done = true;
                    return Err(e);
                }
            }
            match self.rx.recv() {
                Ok(Decoded::Block(i, b, w)) => {
                    self.pending.insert(i, (b, w));
                }
                // The earliest error counts (a decoder that could not start says so as 0).
                Ok(Decoded::Failed(i, e, w)) => {
                    if self.failed.as_ref().is_none_or(|(at, ..)| i < *at) {
                        self.failed = Some((i, e, w));
                    }
                }
                Ok(Decoded::End(i, w)) => self.end_at = Some((i, w)),
                Err(_) => return Err(internal("a decode stage stopped")),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }
}

fn read_stage(reader: &mut Reader, tx: Sender<Item>) {
    let mut i = 0;
    loop {
        let item = match reader.next_raw() {
            Ok(Some(b)) => Item::Block(i, b, reader.take_warnings()),
            Ok(None) => Item::End(i, reader.take_warnings()),
            Err(e) => Item::Failed(i, e, reader.take_warnings()),
        };
        i += 1;
        let last = !matches!(item, Item::Block(..));
        if tx.send(item).is_err() || last {
            return;
        }
    }
}

fn decode_stage(rx: Receiver<Item>, tx: Sender<Decoded>, spares: Spares) {
    let Ok(mut decoder) = Decoder::new() else {
        let _ = tx.send(Decoded::Failed(
            0,
            internal("cannot start a zstd decoder"),
            Vec::new(),
        ));
        return;
    };
    for item in rx {
        let out = match item {
            Item::Block(i, raw, w) => {
                let mut events = spares.take();
                match decoder.decode(&raw, &mut events) {
                    Ok(()) => Decoded::Block(i, Ok(events), w),
                    Err(what) => Decoded::Block(i, Err((raw, what)), w),
                }
            }
            Item::Failed(i, e, w) => Decoded::Failed(i, e, w),
            Item::End(i, w) => Decoded::End(i, w),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}
