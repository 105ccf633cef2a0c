//! The consumer's ledger: what it has printed, kept in a small JetStream stream of its own (one
//! message per consumer, the last one kept: a key-value bucket, spelled out so that it works with
//! every JetStream server version), so that a consumer restarted (or moved to another node)
//! prints no incident twice and gives each incident the id it had.
//!
//! After a restart the consumer reads the stream again to rebuild its state; every change it
//! would hand out goes through [`Ledger::first_time`]. An incident is known by its content (root
//! cause kind, entity and start) across runs, and by the pipeline's own id within one.

use std::collections::{HashMap, HashSet, VecDeque};

use async_nats::jetstream::{self, stream};
use serde::{Deserialize, Serialize};

use super::Error;
use crate::analysis::Incident;
use crate::pipeline::State;

/// The stream holding every consumer's ledger (subject `tapio-ledger.<consumer>`).
pub const BUCKET: &str = "TAPIO_LEDGER";
/// Entries kept; the oldest go first (incidents long closed).
const KEEP: usize = 10_000;

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    next_id: u64,
    ids: VecDeque<(String, u64)>,
    printed: VecDeque<String>,
}

pub struct Ledger {
    store: Option<(jetstream::Context, stream::Stream)>,
    key: String,
    saved: Saved,
    ids: HashMap<String, u64>,
    printed: HashSet<String>,
    /// The pipeline's ids in this run → the ledger's.
    run_ids: HashMap<u64, u64>,
    dirty: bool,
}

fn content(inc: &Incident) -> String {
    format!(
        "{}|{}|{}",
        inc.root_cause.kind, inc.root_cause.entity, inc.start.0
    )
}

impl Ledger {
    /// A ledger kept only in memory (tests, `--consumer ''`).
    pub fn in_memory() -> Ledger {
        Ledger {
            store: None,
            key: String::new(),
            saved: Saved::default(),
            ids: HashMap::new(),
            printed: HashSet::new(),
            run_ids: HashMap::new(),
            dirty: false,
        }
    }

    /// The consumer's ledger (its stream is created when missing).
    pub async fn open(js: &jetstream::Context, url: &str, consumer: &str) -> Result<Ledger, Error> {
        let st = js
            .get_or_create_stream(stream::Config {
                name: BUCKET.to_string(),
                description: Some("what each tapio consumer has printed".to_string()),
                subjects: vec!["tapio-ledger.>".to_string()],
                max_messages_per_subject: 1,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::Old,
                ..Default::default()
            })
            .await
            .map_err(|e| super::Error::nats(url, format!("stream {BUCKET}: {e}")))?;
        let key = format!("tapio-ledger.{}", super::token(consumer));
        let saved: Saved = match st.get_last_raw_message_by_subject(&key).await {
            Ok(m) => serde_json::from_slice(&m.payload).map_err(|e| {
                super::Error::nats(url, format!("{BUCKET} {key}: not a tapio ledger ({e})"))
            })?,
            Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => {
                Saved::default()
            }
            Err(e) => return Err(super::Error::nats(url, format!("{BUCKET} {key}: {e}"))),
        };
        let mut l = Ledger::in_memory();
        l.ids = saved.ids.iter().cloned().collect();
        l.printed = saved.printed.iter().cloned().collect();
        l.saved = saved;
        l.store = Some((js.clone(), st));
        l.key = key;
        Ok(l)
    }

    /// The id to show for the pipeline's incident `run_id` (as it stands in `inc`). An incident
    /// rebuilt after a restart is the one the ledger has open for the same root cause (its start
    /// may have moved with evidence that arrived meanwhile), or, closed, the one with the same
    /// content.
    pub fn id(&mut self, run_id: u64, inc: &Incident, state: State) -> u64 {
        let root = format!("open|{}|{}", inc.root_cause.kind, inc.root_cause.entity);
        let c = content(inc);
        let id = match (
            self.run_ids.get(&run_id),
            self.ids.get(&root),
            self.ids.get(&c),
        ) {
            (Some(&id), _, _) | (None, Some(&id), _) | (None, None, Some(&id)) => id,
            (None, None, None) => {
                self.saved.next_id += 1;
                self.saved.next_id
            }
        };
        self.run_ids.insert(run_id, id);
        self.remember(c, id);
        if state == State::Closed {
            if self.ids.get(&root) == Some(&id) {
                self.ids.remove(&root);
                self.saved.ids.retain(|(k, _)| *k != root);
                self.dirty = true;
            }
        } else {
            self.remember(root, id);
        }
        id
    }

    fn remember(&mut self, key: String, id: u64) {
        if self.ids.get(&key) == Some(&id) {
            return;
        }
        self.ids.insert(key.clone(), id);
        self.saved.ids.retain(|(k, _)| *k != key);
        self.saved.ids.push_back((key, id));
        if self.saved.ids.len() > KEEP {
            if let Some((old, _)) = self.saved.ids.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.dirty = true;
    }

    /// The ledger's id of a pipeline id seen before.
    pub fn known(&self, run_id: u64) -> Option<u64> {
        self.run_ids.get(&run_id).copied()
    }

    /// Whether this change of incident `id` is new (and, if so, remembers it).
    pub fn first_time(&mut self, id: u64, state: State, changed: &[String]) -> bool {
        let key = format!("{id}|{}|{}", state.as_str(), changed.join(";"));
        if !self.printed.insert(key.clone()) {
            return false;
        }
        self.saved.printed.push_back(key);
        if self.saved.printed.len() > KEEP {
            if let Some(old) = self.saved.printed.pop_front() {
                self.printed.remove(&old);
            }
        }
        self.dirty = true;
        true
    }

    /// Writes the ledger to the bucket if it changed.
    pub async fn save(&mut self, url: &str) -> Result<(), Error> {
        let Some((js, _)) = &self.store else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.saved)
            .map_err(|e| super::Error::Other(format!("cannot encode the ledger: {e}")))?;
        let fail = |e: String| super::Error::nats(url, format!("{BUCKET} {}: {e}", self.key));
        js.publish(self.key.clone(), bytes.into())
            .await
            .map_err(|e| fail(e.to_string()))?
            .await
            .map_err(|e| fail(e.to_string()))?;
        self.dirty = false;
        Ok(())
    }
}
