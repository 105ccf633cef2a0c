//! One ordered merge of several event streams by time — several nodes' captures, the rotated files
//! of one recorder, the blocks that the pipeline's threads decode. Every reader of more than one
//! input goes through it, so there is one tie rule.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::{Error, Reader, Warning};
use crate::event::Event;

/// An input of the merge: blocks of events in the input's own time order.
pub trait Blocks {
    /// Appends the next block's events to `out`; `false` at the end of the input.
    fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error>;
    /// Where the input comes from, for warnings.
    fn path(&self) -> &Path;
    /// Warnings gathered since the last call.
    fn take_warnings(&mut self) -> Vec<Warning>;
    /// Bytes consumed so far (for progress bars).
    fn position(&self) -> u64 {
        0
    }
}

impl Blocks for Reader {
    fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
        Reader::next_block(self, out)
    }
    fn path(&self) -> &Path {
        Reader::path(self)
    }
    fn take_warnings(&mut self) -> Vec<Warning> {
        Reader::take_warnings(self)
    }
    fn position(&self) -> u64 {
        Reader::position(self)
    }
}

/// Merges the events of several inputs by time. The tie rule: at equal times the earlier input
/// goes first, and each input's own order is kept. Events are read a block at a time, so memory
/// stays at one block per input.
pub struct Merge<I: Blocks = Reader> {
    inputs: Vec<Input<I>>,
    warnings: Vec<(PathBuf, Warning)>,
}

struct Input<I> {
    blocks: I,
    buf: VecDeque<Event>,
    scratch: Vec<Event>,
    done: bool,
}

impl<I: Blocks> Merge<I> {
    pub fn new(inputs: Vec<I>) -> Merge<I> {
        let inputs = inputs
            .into_iter()
            .map(|blocks| Input {
                blocks,
                buf: VecDeque::new(),
                scratch: Vec::new(),
                done: false,
            })
            .collect();
        Merge {
            inputs,
            warnings: Vec::new(),
        }
    }

    /// The input the next event comes from, filling the inputs' buffers as needed; `None` when
    /// every input is exhausted. An error of one input ends the merge with that error.
    fn next_input(&mut self) -> Result<Option<usize>, Error> {
        let mut best: Option<(crate::event::Ts, usize)> = None;
        for (i, input) in self.inputs.iter_mut().enumerate() {
            while input.buf.is_empty() && !input.done {
                input.scratch.clear();
                let more = input.blocks.next_block(&mut input.scratch);
                let path = input.blocks.path().to_path_buf();
                self.warnings.extend(
                    input
                        .blocks
                        .take_warnings()
                        .into_iter()
                        .map(|w| (path.clone(), w)),
                );
                if more? {
                    // The block's vector becomes the buffer: no copy of the events.
                    let block = std::mem::take(&mut input.scratch);
                    let spare = std::mem::replace(&mut input.buf, VecDeque::from(block));
                    input.scratch = Vec::from(spare);
                } else {
                    input.done = true;
                }
            }
            if let Some(e) = input.buf.front() {
                if best.is_none_or(|(t, _)| e.ts < t) {
                    best = Some((e.ts, i));
                }
            }
        }
        Ok(best.map(|(_, i)| i))
    }

    /// The time of the next event, without taking it.
    pub fn peek_ts(&mut self) -> Result<Option<crate::event::Ts>, Error> {
        Ok(self
            .next_input()?
            .and_then(|i| self.inputs[i].buf.front().map(|e| e.ts)))
    }

    /// The next event in time order, or `None` when every input is exhausted.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        Ok(self
            .next_input()?
            .and_then(|i| self.inputs[i].buf.pop_front()))
    }

    /// Warnings gathered so far from every input, with the input's path.
    pub fn take_warnings(&mut self) -> Vec<(PathBuf, Warning)> {
        std::mem::take(&mut self.warnings)
    }

    /// Bytes consumed so far across the inputs (for progress bars).
    pub fn position(&self) -> u64 {
        self.inputs.iter().map(|i| i.blocks.position()).sum()
    }
}
