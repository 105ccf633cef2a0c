//! Reading several captures as one timeline (several nodes of one incident).

use std::collections::VecDeque;

use super::{Error, Reader, Warning};
use crate::event::Event;

/// Merges the events of several readers by time; ties go to the earlier reader, and each reader's
/// own order is kept. Events are read a block at a time, so memory stays at one block per input.
pub struct Merge {
    inputs: Vec<Input>,
}

struct Input {
    reader: Reader,
    buf: VecDeque<Event>,
    scratch: Vec<Event>,
    done: bool,
}

impl Merge {
    pub fn new(readers: Vec<Reader>) -> Merge {
        let inputs = readers
            .into_iter()
            .map(|reader| Input {
                reader,
                buf: VecDeque::new(),
                scratch: Vec::new(),
                done: false,
            })
            .collect();
        Merge { inputs }
    }

    /// The next event in time order, or `None` when every input is exhausted. An error of one
    /// input (corruption without `skip_corrupt`) ends the merge with that error.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        for input in &mut self.inputs {
            while input.buf.is_empty() && !input.done {
                input.scratch.clear();
                if input.reader.next_block(&mut input.scratch)? {
                    input.buf.extend(input.scratch.drain(..));
                } else {
                    input.done = true;
                }
            }
        }
        let best = self
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, inp)| inp.buf.front().map(|e| (e.ts, i)))
            .min();
        Ok(best.and_then(|(_, i)| self.inputs[i].buf.pop_front()))
    }

    /// Warnings gathered so far from every input, with the input's path.
    pub fn take_warnings(&mut self) -> Vec<(std::path::PathBuf, Warning)> {
        let mut out = Vec::new();
        for inp in &mut self.inputs {
            let path = inp.reader.path().to_path_buf();
            out.extend(
                inp.reader
                    .take_warnings()
                    .into_iter()
                    .map(|w| (path.clone(), w)),
            );
        }
        out
    }

    /// Bytes consumed so far across the inputs (for progress bars).
    pub fn position(&self) -> u64 {
        self.inputs.iter().map(|i| i.reader.position()).sum()
    }
}
