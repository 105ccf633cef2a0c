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

    /// Appends the next events in time order to `out` until it holds at least `min` of them, at
    /// most `max` (or every input is exhausted); `false` when nothing was added. The same order
    /// as [`Merge::next_event`] one at a time, taken a run at a time: the events of the best input
    /// that go before the other inputs' next event move at once, and a whole block that goes
    /// first becomes `out` itself when `out` is empty and it fits (one input, or inputs that do
    /// not overlap in time: no copy).
    pub fn next_batch(
        &mut self,
        out: &mut Vec<Event>,
        min: usize,
        max: usize,
    ) -> Result<bool, Error> {
        let before = out.len();
        let max = max.max(1);
        while out.len() < min.clamp(1, max) {
            let Some(i) = self.next_input()? else { break };
            // The next event of the other inputs, with the tie rule: (time, input) is the order.
            let bound = self
                .inputs
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .filter_map(|(j, input)| input.buf.front().map(|e| (e.ts, j)))
                .min();
            let room = max - out.len();
            let buf = &mut self.inputs[i].buf;
            let n = match bound {
                None => buf.len().min(room),
                Some(b) => buf.iter().take(room).take_while(|e| (e.ts, i) < b).count(),
            };
            if n == buf.len() && out.is_empty() {
                let spare = std::mem::replace(out, Vec::from(std::mem::take(buf)));
                *buf = VecDeque::from(spare);
            } else {
                out.extend(buf.drain(..n));
            }
        }
        Ok(out.len() > before)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Log, LogOrigin, Source, Ts};

    /// Blocks held in memory.
    struct Mem(VecDeque<Vec<Event>>);

    impl Blocks for Mem {
        fn next_block(&mut self, out: &mut Vec<Event>) -> Result<bool, Error> {
            match self.0.pop_front() {
                Some(b) => {
                    out.extend(b);
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        fn path(&self) -> &Path {
            Path::new("mem")
        }
        fn take_warnings(&mut self) -> Vec<Warning> {
            Vec::new()
        }
    }

    /// Inputs whose times overlap, tie across inputs and (in the last) go back in time.
    fn inputs() -> Vec<Mem> {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        (0..4u64)
            .map(|input| {
                let mut t = 0;
                let blocks = (0..1 + next() % 5)
                    .map(|_| {
                        (0..next() % 40)
                            .map(|k| {
                                t = if input == 3 && k % 7 == 0 {
                                    t / 2
                                } else {
                                    t + next() % 3
                                };
                                let mut e = Event::new(
                                    Ts(t),
                                    "n",
                                    Source::Import,
                                    Log::new(LogOrigin::Kmsg, "x"),
                                );
                                e.seq = input * 1000 + k;
                                e
                            })
                            .collect()
                    })
                    .collect();
                Mem(blocks)
            })
            .collect()
    }

    #[test]
    fn batches_keep_the_order_of_events_one_at_a_time() {
        let mut one = Merge::new(inputs());
        let mut want = Vec::new();
        while let Some(e) = one.next_event().unwrap() {
            want.push((e.ts, e.seq));
        }
        assert!(want.len() > 100, "{}", want.len());
        for (min, max) in [(1, 1), (3, 3), (64, 64), (1, usize::MAX), (64, usize::MAX)] {
            let mut m = Merge::new(inputs());
            let mut got = Vec::new();
            let mut batch = Vec::new();
            while m.next_batch(&mut batch, min, max).unwrap() {
                let left = want.len() - got.len();
                assert!(
                    batch.len() >= min.min(left) && batch.len() <= max,
                    "{}",
                    batch.len()
                );
                got.extend(batch.drain(..).map(|e| (e.ts, e.seq)));
            }
            assert_eq!(got, want, "batches of {min} to {max}");
        }
    }
}
