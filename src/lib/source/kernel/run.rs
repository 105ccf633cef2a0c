//! The kernel source's thread: read the ring buffer, sweep counters once a second, send batches.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use super::Recorder;
use crate::source::{Counters, Outlet, Source};

/// How often the ring buffer is read when it is not backed up. Reading on a timer, not on every
/// record's wakeup, keeps a quiet node's recorder near zero CPU; the ring buffer holds far more
/// than one interval's records at hundreds of thousands of events a second.
const READ_EVERY: Duration = Duration::from_millis(10);
/// Records read in one go; more than this means the ring buffer is backed up: read again at once.
const READ_MAX: usize = 16384;
/// A batch goes out when it is this big or this old.
const BATCH_EVENTS: usize = 16384;
const BATCH_AGE: Duration = Duration::from_millis(100);

impl Source for Recorder {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn describe(&self) -> String {
        if self.node.is_empty() {
            "the kernel of this node".to_string()
        } else {
            format!("the kernel of {}", self.node)
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn run(mut self: Box<Self>, out: &Outlet) -> Counters {
        let k = &mut *self;
        let mut batch = Vec::with_capacity(BATCH_EVENTS);
        let mut last_tick = Instant::now();
        let mut last_send = Instant::now();
        loop {
            let halting = out.halt.load(Ordering::Relaxed);
            let before = k.counters().records;
            if halting {
                // What the probes wrote before the stop still goes in.
                k.drain(usize::MAX, &mut batch);
                k.tick(&mut batch);
            } else {
                k.drain(READ_MAX, &mut batch);
                if last_tick.elapsed() >= Duration::from_secs(1) {
                    last_tick = Instant::now();
                    k.tick(&mut batch);
                }
            }
            let backed_up = k.counters().records - before >= READ_MAX as u64;
            if halting || batch.len() >= BATCH_EVENTS || last_send.elapsed() >= BATCH_AGE {
                last_send = Instant::now();
                if !batch.is_empty() {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS));
                    if out.events.send(full).is_err() {
                        break;
                    }
                }
            }
            if halting {
                break;
            }
            if !backed_up {
                thread::sleep(READ_EVERY);
            }
        }
        Counters::Kernel(k.counters())
    }
}
