//! Events as tables: the typed rows of `tapio export` (and of the analyses built on them).
//!
//! Each [`Table`] has one documented list of typed [`Column`]s (`docs/tables.md` is checked
//! against it). A [`Tabulator`] takes events in capture order, learns the cluster's topology from
//! the Kubernetes objects among them, and turns each event into a row of its table, attributed to
//! the namespace, pod, container and service it belongs to. Rows are held a batch at a time and
//! handed out as polars data frames, so that memory is bounded by the batch, not the capture.

pub mod query;
mod rows;
pub mod stats;
mod verdict;
pub mod write;

use polars::prelude::*;
use polars_arrow::array::{BooleanArray, MutableBinaryViewArray};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};

use crate::event::{Event, Name, Ts};
use crate::topology::Topology;

/// The tables of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Kernel,
    Spans,
    Logs,
    K8sEvents,
    Objects,
    /// The verdict as data: one row an incident.
    Incidents,
    /// One row a finding, with the incident it belongs to.
    Findings,
}

named!(Table, "table" {
    Kernel => "kernel",
    Spans => "spans",
    Logs => "logs",
    K8sEvents => "k8s_events",
    Objects => "objects",
    Incidents => "incidents",
    Findings => "findings",
});

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// A UTC time with nanoseconds (`timestamp[ns, UTC]`).
    Time,
    Text,
    /// Text that repeats from row to row (names, kinds, states): a string to SQL and CSV, and in
    /// Parquet a dictionary of each row group's distinct values (polars reads it as categorical).
    Label,
    U64,
    I64,
    F64,
    Bool,
    /// A list of event numbers (`seq`s).
    Seqs,
}

impl Type {
    /// Its polars type, with labels held as strings.
    pub fn dtype(self) -> DataType {
        match self {
            Type::Time => DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
            Type::Text | Type::Label => DataType::String,
            Type::U64 => DataType::UInt64,
            Type::I64 => DataType::Int64,
            Type::F64 => DataType::Float64,
            Type::Bool => DataType::Boolean,
            Type::Seqs => DataType::List(Box::new(DataType::UInt64)),
        }
    }

    /// The name the schema page gives it.
    pub fn name(self) -> &'static str {
        match self {
            Type::Time => "timestamp (ns, UTC)",
            Type::Text => "string",
            Type::Label => "string (dictionary)",
            Type::U64 => "uint64",
            Type::I64 => "int64",
            Type::F64 => "float64",
            Type::Bool => "bool",
            Type::Seqs => "list of uint64 (CSV: space-separated)",
        }
    }
}

/// A column of a table.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: Type,
    pub doc: &'static str,
}

const fn col(name: &'static str, ty: Type, doc: &'static str) -> Column {
    Column { name, ty, doc }
}

/// The columns every table starts with: when, where, and what it is attributed to.
const COMMON: [Column; 8] = [
    col("ts", Type::Time, "When the event happened."),
    col(
        "seq",
        Type::U64,
        "The event's number in its capture (the order of the capture).",
    ),
    col(
        "node",
        Type::Label,
        "The node that saw it (else the node of the pod it is attributed to).",
    ),
    col(
        "namespace",
        Type::Label,
        "The namespace it is attributed to, by the topology.",
    ),
    col(
        "pod",
        Type::Label,
        "The pod it is attributed to (a kernel event through its cgroup).",
    ),
    col(
        "container",
        Type::Label,
        "The container it is attributed to, when known.",
    ),
    col(
        "service",
        Type::Label,
        "The service: `service.name` of spans and logs, else none.",
    ),
    col(
        "source",
        Type::Label,
        "The collector: ebpf, kube, otlp, kmsg, pod-logs, import, tapio.",
    ),
];

const KERNEL: &[Column] = &[
    col(
        "kind",
        Type::Label,
        "exec, exit, signal, oom, tcp, retransmit, task, pressure, throttle.",
    ),
    col(
        "pid",
        Type::U64,
        "The process (for signal: the target; for oom: the victim).",
    ),
    col("comm", Type::Label, "Its command name."),
    col("ppid", Type::U64, "exec: the parent process."),
    col("filename", Type::Label, "exec: the program."),
    col(
        "cgroup",
        Type::Label,
        "The cgroup path (oom: the victim's memory cgroup).",
    ),
    col("exit_code", Type::I64, "exit: the status passed to exit()."),
    col(
        "signal",
        Type::U64,
        "exit: the signal that ended it (0: none); signal: the signal sent.",
    ),
    col(
        "sender_pid",
        Type::U64,
        "signal: who sent it; oom: whose allocation invoked the killer.",
    ),
    col(
        "sender_comm",
        Type::Label,
        "signal: the sender's command name; oom: the invoker's.",
    ),
    col(
        "oom_constraint",
        Type::Label,
        "oom: memcg, global, cpuset, mempolicy, unknown.",
    ),
    col("rss_bytes", Type::U64, "oom: the victim's resident memory."),
    col(
        "memcg_usage_bytes",
        Type::U64,
        "oom: the memory cgroup's usage at the kill.",
    ),
    col(
        "memcg_limit_bytes",
        Type::U64,
        "oom: the memory cgroup's limit.",
    ),
    col("saddr", Type::Label, "tcp, retransmit: the local address."),
    col("sport", Type::U64, "tcp, retransmit: the local port."),
    col("daddr", Type::Label, "tcp, retransmit: the remote address."),
    col("dport", Type::U64, "tcp, retransmit: the remote port."),
    col(
        "tcp_old",
        Type::Label,
        "tcp: the state before (SYN_SENT, ESTABLISHED, …).",
    ),
    col(
        "tcp_new",
        Type::Label,
        "tcp: the state after; retransmit: the state.",
    ),
    col(
        "tcp_outcome",
        Type::Label,
        "tcp: connected, refused, reset, timeout, closed, other.",
    ),
    col(
        "retransmits",
        Type::U64,
        "retransmit: segments retransmitted in the interval.",
    ),
    col(
        "interval_ms",
        Type::U64,
        "retransmit, pressure, throttle: the sampling interval.",
    ),
    col(
        "psi_some_avg10",
        Type::F64,
        "pressure: % of the last 10 s some task stalled on memory.",
    ),
    col(
        "psi_full_avg10",
        Type::F64,
        "pressure: % of the last 10 s every task stalled on memory.",
    ),
    col(
        "throttled_periods",
        Type::U64,
        "throttle: CFS periods in which the quota ran out.",
    ),
    col("periods", Type::U64, "throttle: CFS periods elapsed."),
    col(
        "throttled_us",
        Type::U64,
        "throttle: time its tasks waited for the next period.",
    ),
];

const SPANS: &[Column] = &[
    col("trace_id", Type::Text, "32 hex digits."),
    col("span_id", Type::Text, "16 hex digits."),
    col(
        "parent_span_id",
        Type::Text,
        "16 hex digits; none for a root span.",
    ),
    col("name", Type::Label, "The operation."),
    col(
        "span_kind",
        Type::Label,
        "internal, server, client, producer, consumer, unspecified.",
    ),
    col("start", Type::Time, "When it began."),
    col(
        "duration_ns",
        Type::U64,
        "How long it took, in nanoseconds.",
    ),
    col("status", Type::Label, "unset, ok, error."),
    col(
        "status_message",
        Type::Text,
        "The status message, when any.",
    ),
    col(
        "http_status",
        Type::U64,
        "`http.response.status_code` (or `http.status_code`).",
    ),
    col(
        "peer",
        Type::Label,
        "The host or address a client span called.",
    ),
];

const LOGS: &[Column] = &[
    col(
        "origin",
        Type::Label,
        "kmsg, syslog, journal, app, …: where the line was written.",
    ),
    col(
        "severity",
        Type::Label,
        "trace, debug, info, warn, error, fatal, unknown.",
    ),
    col(
        "ident",
        Type::Label,
        "The writer: syslog identifier, unit or container.",
    ),
    col("pid", Type::U64, "The writing process, when known."),
    col("message", Type::Text, "The line."),
    col(
        "trace_id",
        Type::Text,
        "The trace it was written in, when known.",
    ),
    col(
        "span_id",
        Type::Text,
        "The span it was written in, when known.",
    ),
    col(
        "approximate_time",
        Type::Bool,
        "Its time was placed by assumption.",
    ),
];

const K8S_EVENTS: &[Column] = &[
    col("type", Type::Text, "Normal or Warning."),
    col(
        "reason",
        Type::Text,
        "BackOff, OOMKilling, FailedScheduling, …",
    ),
    col(
        "object_kind",
        Type::Text,
        "The kind of the object it is about.",
    ),
    col("object_name", Type::Text, "The object it is about."),
    col(
        "field_path",
        Type::Text,
        "Which part of the object (`spec.containers{cart}`).",
    ),
    col("message", Type::Text, "What it says."),
    col("count", Type::U64, "How many times it happened."),
    col("first", Type::Time, "When it first happened."),
    col("last", Type::Time, "When it last happened."),
    col(
        "component",
        Type::Text,
        "The reporting component (kubelet, default-scheduler, …).",
    ),
];

const OBJECTS: &[Column] = &[
    col("kind", Type::Label, "Pod, Deployment, Node, …"),
    col("name", Type::Text, "The object's name."),
    col("uid", Type::Text, "The object's uid."),
    col("change", Type::Label, "added, modified, deleted, listed."),
    col("resource_version", Type::Text, "Its resourceVersion."),
    col(
        "json",
        Type::Text,
        "The whole object, without managedFields.",
    ),
];

/// The columns the verdict's tables start with: which, when, and what it is attributed to.
const VERDICT_COMMON: [Column; 8] = [
    col(
        "id",
        Type::U64,
        "Its number (incidents: as `replay` prints it).",
    ),
    col("ts", Type::Time, "When it started."),
    col("end", Type::Time, "When it ended (the last evidence)."),
    col("node", Type::Label, "The node of its entity, when known."),
    col("namespace", Type::Label, "The namespace of its entity."),
    col("pod", Type::Label, "The pod, when its entity is one."),
    col(
        "container",
        Type::Label,
        "The container, when known (an OOM kill's).",
    ),
    col(
        "service",
        Type::Label,
        "The service, when its entity is one (a Service or an application's `service.name`).",
    ),
];

const INCIDENTS: &[Column] = &[
    col("severity", Type::Label, "low, medium, high, critical."),
    col(
        "confidence",
        Type::F64,
        "How much the root cause is believed, 0 to 1.",
    ),
    col(
        "root_kind",
        Type::Label,
        "The root-cause kind (`docs/correlation.md` lists them).",
    ),
    col(
        "entity",
        Type::Text,
        "The root cause's entity (`pod/NS/NAME`, `node/NAME`, …).",
    ),
    col("summary", Type::Text, "The root cause in a sentence."),
    col(
        "chain",
        Type::Text,
        "The causal chain: its steps' kinds and entities, ` -> ` between.",
    ),
    col("findings", Type::U64, "Its findings (rows of `findings`)."),
    col(
        "services_hit",
        Type::Text,
        "The services impacted, comma-separated.",
    ),
    col(
        "pods_hit",
        Type::Text,
        "The pods impacted, comma-separated.",
    ),
    col(
        "failed_requests",
        Type::U64,
        "Requests whose trace failed at its root.",
    ),
    col("restarts", Type::U64, "Container restarts it caused."),
    col(
        "evidence_complete",
        Type::Bool,
        "No drop or gap overlaps it.",
    ),
    col(
        "evidence_seqs",
        Type::Seqs,
        "The `seq`s of its evidence events, in order.",
    ),
];

const FINDINGS: &[Column] = &[
    col(
        "incident",
        Type::U64,
        "The incident it belongs to (`incidents.id`); none when it is part of none.",
    ),
    col(
        "chain_step",
        Type::U64,
        "Its place in the incident's causal chain (0: the root cause); none when off the chain.",
    ),
    col(
        "kind",
        Type::Label,
        "The finding kind (`docs/correlation.md` lists them).",
    ),
    col(
        "layer",
        Type::Label,
        "The layer that saw it: KERNEL, NET, K8S, TRACE, LOG, TAPIO.",
    ),
    col("entity", Type::Text, "What it is about."),
    col(
        "count",
        Type::U64,
        "How many times it was seen (events, connections, spans).",
    ),
    col("summary", Type::Text, "What was seen, in a sentence."),
    col(
        "message",
        Type::Text,
        "The message that says it best, when any.",
    ),
    col(
        "evidence_seqs",
        Type::Seqs,
        "The `seq`s of the events that show it (at most 8).",
    ),
];

impl Table {
    /// The tables of events (the others are the verdict's).
    pub const EVENTS: &'static [Table] = &[
        Table::Kernel,
        Table::Spans,
        Table::Logs,
        Table::K8sEvents,
        Table::Objects,
    ];

    /// Whether its rows come from the verdict, not from events.
    pub fn is_verdict(self) -> bool {
        matches!(self, Table::Incidents | Table::Findings)
    }

    /// Every column, in order: the common ones, then the table's own.
    pub fn columns(self) -> Vec<Column> {
        let (common, own): (&[Column], &[Column]) = match self {
            Table::Kernel => (&COMMON, KERNEL),
            Table::Spans => (&COMMON, SPANS),
            Table::Logs => (&COMMON, LOGS),
            Table::K8sEvents => (&COMMON, K8S_EVENTS),
            Table::Objects => (&COMMON, OBJECTS),
            Table::Incidents => (&VERDICT_COMMON, INCIDENTS),
            Table::Findings => (&VERDICT_COMMON, FINDINGS),
        };
        common.iter().chain(own).copied().collect()
    }

    /// The table's schema, as polars types it (labels as strings).
    pub fn schema(self) -> Schema {
        self.schema_with(Labels::Strings)
    }

    /// The table's schema with its labels held as `labels` says.
    pub fn schema_with(self, labels: Labels) -> Schema {
        self.columns()
            .into_iter()
            .map(|c| {
                let dtype = match (c.ty, labels) {
                    (Type::Label, Labels::Dictionary) => Dict::file_dtype(c.name),
                    (ty, _) => ty.dtype(),
                };
                Field::new(c.name.into(), dtype)
            })
            .collect()
    }

    /// What the table holds, one sentence.
    pub fn about(self) -> &'static str {
        match self {
            Table::Kernel => {
                "What the kernel saw: processes, signals, OOM kills, TCP, pressure, throttling."
            }
            Table::Spans => "The applications' spans.",
            Table::Logs => "Log lines: the kernel's, the system's and the applications'.",
            Table::K8sEvents => "Kubernetes Events.",
            Table::Objects => "Kubernetes objects as they changed.",
            Table::Incidents => {
                "The verdict: one row an incident, as `tapio replay` finds them over the whole \
                 capture (the filters of `export` narrow the event tables, not the verdict)."
            }
            Table::Findings => {
                "What the detectors found, one row a finding, with the incident it belongs to; \
                 join `evidence_seqs` to the event tables' `seq`."
            }
        }
    }
}

/// One cell of a row.
#[derive(Clone, Debug)]
pub enum Cell<'a> {
    Time(Option<Ts>),
    Text(Option<std::borrow::Cow<'a, str>>),
    /// A shared name, as text (never empty: an empty one is `Text(None)`).
    Name(&'a Name),
    /// A constant, as text.
    Const(&'static str),
    /// An address, as text.
    Addr(Option<std::net::IpAddr>),
    U64(Option<u64>),
    I64(Option<i64>),
    F64(Option<f64>),
    Bool(Option<bool>),
    Seqs(Vec<u64>),
}

impl Cell<'_> {
    /// Whether it is the empty cell of its type (a row need not set it).
    #[inline]
    pub fn is_null(&self) -> bool {
        match self {
            Cell::Time(x) => x.is_none(),
            Cell::Text(x) => x.is_none(),
            Cell::Name(_) | Cell::Const(_) => false,
            Cell::Addr(x) => x.is_none(),
            Cell::U64(x) => x.is_none(),
            Cell::I64(x) => x.is_none(),
            Cell::F64(x) => x.is_none(),
            Cell::Bool(x) => x.is_none(),
            Cell::Seqs(x) => x.is_empty(),
        }
    }
}

/// How the label columns of a batch are held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Labels {
    /// As strings: what SQL's string functions and the text formats want.
    #[default]
    Strings,
    /// As numbers into a dictionary of the batch's distinct values (a polars categorical): a
    /// row's label is found by where its string lies in memory, not copied, and Parquet writes
    /// the dictionary as it is instead of hashing every string to build one.
    Dictionary,
}

/// The dictionary of a label column within one batch, and the numbers of its rows so far.
struct Dict {
    dtype: DataType,
    mapping: Arc<CategoricalMapping>,
    /// The names met last, by address, and their numbers: most labels are a name shared by many
    /// events, or a constant, so a row finds its number without reading its string.
    recent: Vec<Recent>,
    /// The addresses met, and their numbers.
    addrs: PlHashMap<std::net::IpAddr, u32>,
    keys: Nums<u32>,
}

const RECENT: usize = 64;

/// A name met lately, and its number.
#[derive(Clone, Default)]
struct Recent {
    at: usize,
    len: usize,
    key: u32,
    /// Held, not read: the name cannot be freed (and its address reused) while remembered.
    _alive: Option<Name>,
}

/// An address as text, without an allocation.
struct Addr {
    buf: [u8; 48],
    len: usize,
}

impl Addr {
    fn new(a: std::net::IpAddr) -> Addr {
        use std::io::Write;
        let mut buf = [0u8; 48];
        let mut w = &mut buf[..];
        // The longest address (an IPv6 with an IPv4 tail) is 45 bytes.
        let _ = write!(w, "{a}");
        let len = 48 - w.len();
        Addr { buf, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl Dict {
    /// The type a file of labels declares: one categories a column, named for it, so polars
    /// reading the tables back can join their labels.
    fn file_dtype(column: &str) -> DataType {
        let cats = Categories::new(column.into(), "tapio".into(), CategoricalPhysical::U32);
        let mapping = cats.mapping();
        DataType::Categorical(cats, mapping)
    }

    /// An empty dictionary, for a new batch.
    fn new() -> Dict {
        let cats = Categories::random("tapio".into(), CategoricalPhysical::U32);
        let mapping = cats.mapping();
        Dict {
            dtype: DataType::Categorical(cats, mapping.clone()),
            mapping,
            recent: vec![Recent::default(); RECENT],
            addrs: PlHashMap::default(),
            keys: Nums::new(),
        }
    }

    /// Row `at` is `s`, a string of unknown life: hashed.
    #[inline]
    fn put(&mut self, at: usize, s: &str) -> PolarsResult<()> {
        let key = self.mapping.insert_cat(s)?;
        self.keys.put(at, key);
        Ok(())
    }

    /// Row `at` is a shared name or a constant: known by its address. The slot keeps the name
    /// alive, so its address is not another string's while it is remembered (a constant lives
    /// forever).
    #[inline(always)]
    fn put_known(&mut self, at: usize, s: &str, name: Option<&Name>) -> PolarsResult<()> {
        let addr = s.as_ptr() as usize;
        let slot = &mut self.recent[((addr >> 4) ^ (addr >> 12)) & (RECENT - 1)];
        let key = if slot.at == addr && slot.len == s.len() {
            slot.key
        } else {
            let key = self.mapping.insert_cat(s)?;
            *slot = Recent {
                at: addr,
                len: s.len(),
                key,
                _alive: name.cloned(),
            };
            key
        };
        self.keys.put(at, key);
        Ok(())
    }

    /// Row `at` is an address: its number by the address itself, formatted the first time.
    #[inline]
    fn put_addr(&mut self, at: usize, a: std::net::IpAddr) -> PolarsResult<()> {
        let key = match self.addrs.get(&a) {
            Some(&key) => key,
            None => {
                let key = self.mapping.insert_cat(Addr::new(a).as_str())?;
                self.addrs.insert(a, key);
                key
            }
        };
        self.keys.put(at, key);
        Ok(())
    }

    /// A batch's labels with their dictionary frozen (an enum of the values in the order they
    /// came): written as they are, where a categorical's keys are renumbered row by row.
    fn freeze(c: polars::prelude::Column) -> PolarsResult<polars::prelude::Column> {
        let DataType::Categorical(_, mapping) = c.dtype() else {
            return Ok(c);
        };
        let values = (0..mapping.num_cats_upper_bound())
            .map(|k| mapping.cat_to_str(k as CatSize))
            .collect::<Option<Vec<&str>>>()
            .ok_or_else(|| polars_err!(ComputeError: "a dictionary of {} has a gap", c.name()))?;
        let frozen = FrozenCategories::new(values)?;
        let dtype = DataType::Enum(frozen.clone(), frozen.mapping().clone());
        let name = c.name().clone();
        let keys = c.as_materialized_series().cat32()?.physical().clone();
        // The smallest keys that hold the values, as the enum says (every key is below their
        // number: narrowing loses nothing).
        fn narrow<K: polars_arrow::types::NativeType>(
            keys: &UInt32Chunked,
            to: impl Fn(u32) -> K,
        ) -> Vec<polars_arrow::array::PrimitiveArray<K>> {
            keys.downcast_iter()
                .map(|a| {
                    let values: Vec<K> = a.values().iter().map(|&k| to(k)).collect();
                    polars_arrow::array::PrimitiveArray::new(
                        K::PRIMITIVE.into(),
                        values.into(),
                        a.validity().cloned(),
                    )
                })
                .collect()
        }
        let labels = match frozen.physical() {
            CategoricalPhysical::U8 => {
                let keys = UInt8Chunked::from_chunk_iter(name.clone(), narrow(&keys, |k| k as u8));
                unsafe { Categorical8Chunked::from_cats_and_dtype_unchecked(keys, dtype) }
                    .into_series()
            }
            CategoricalPhysical::U16 => {
                let keys =
                    UInt16Chunked::from_chunk_iter(name.clone(), narrow(&keys, |k| k as u16));
                unsafe { Categorical16Chunked::from_cats_and_dtype_unchecked(keys, dtype) }
                    .into_series()
            }
            CategoricalPhysical::U32 => {
                unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(keys, dtype) }
                    .into_series()
            }
        };
        Ok(labels.with_name(name).into_column())
    }

    /// Its first `n` rows.
    fn column(self, name: PlSmallStr, n: usize) -> polars::prelude::Column {
        let keys = UInt32Chunked::with_chunk(name, self.keys.finish(n));
        // Every key was given by the mapping of this dtype.
        let labels =
            unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(keys, self.dtype) };
        labels.into_series().into_column()
    }
}

/// Numbers of a column of a batch: values, and which are there (8 bytes and a bit a cell, where
/// `Option<u64>` takes 16). Grown null, then written where rows set them: a kernel row has 36
/// columns and sets about 10 of them.
struct Nums<T> {
    values: Vec<T>,
    valid: MutableBitmap,
}

impl<T: polars_arrow::types::NativeType> Nums<T> {
    fn new() -> Nums<T> {
        Nums {
            values: Vec::new(),
            valid: MutableBitmap::new(),
        }
    }

    #[inline(always)]
    fn put(&mut self, at: usize, x: T) {
        if at >= self.values.len() {
            self.grow(at + 1);
        }
        self.values[at] = x;
        self.valid.set(at, true);
    }

    /// Null rows up to `n` at least, twice as many as it had (a few times a batch).
    #[cold]
    fn grow(&mut self, n: usize) {
        let n = n.max(self.values.len() * 2).max(1024);
        let more = n - self.values.len();
        self.values.resize(n, T::default());
        self.valid.extend_constant(more, false);
    }

    /// Its first `n` rows.
    fn finish(mut self, n: usize) -> polars_arrow::array::PrimitiveArray<T> {
        if n > self.values.len() {
            self.grow(n);
        }
        self.values.truncate(n);
        let valid = Bitmap::from(self.valid).sliced(0, n);
        let valid = (valid.unset_bits() > 0).then_some(valid);
        polars_arrow::array::PrimitiveArray::new(T::PRIMITIVE.into(), self.values.into(), valid)
    }
}

/// The values of one column of a batch. A row sets the cells it has; the others stay null.
enum Values {
    Time(Nums<i64>),
    /// Strings, appended to the batch's buffers.
    Text(MutableBinaryViewArray<str>),
    Label(Box<Dict>),
    U64(Nums<u64>),
    I64(Nums<i64>),
    F64(Nums<f64>),
    Bool(Nums<u8>),
    Seqs(Vec<Vec<u64>>),
}

impl Values {
    fn new(ty: Type, labels: Labels) -> Values {
        match (ty, labels) {
            (Type::Time, _) => Values::Time(Nums::new()),
            (Type::Label, Labels::Dictionary) => Values::Label(Box::new(Dict::new())),
            (Type::Text | Type::Label, _) => Values::Text(MutableBinaryViewArray::new()),
            (Type::U64, _) => Values::U64(Nums::new()),
            (Type::I64, _) => Values::I64(Nums::new()),
            (Type::F64, _) => Values::F64(Nums::new()),
            (Type::Bool, _) => Values::Bool(Nums::new()),
            (Type::Seqs, _) => Values::Seqs(Vec::new()),
        }
    }

    /// Row `at` is `c` (a null cell leaves it null).
    #[inline(always)]
    fn put(&mut self, at: usize, c: Cell<'_>) -> PolarsResult<()> {
        let nanos = |t: Ts| i64::try_from(t.0).unwrap_or(i64::MAX);
        match (self, c) {
            (Values::Time(v), Cell::Time(t)) => t.into_iter().for_each(|t| v.put(at, nanos(t))),
            (Values::U64(v), Cell::U64(x)) => x.into_iter().for_each(|x| v.put(at, x)),
            (Values::I64(v), Cell::I64(x)) => x.into_iter().for_each(|x| v.put(at, x)),
            (Values::F64(v), Cell::F64(x)) => x.into_iter().for_each(|x| v.put(at, x)),
            (Values::Bool(v), Cell::Bool(x)) => x.into_iter().for_each(|x| v.put(at, u8::from(x))),
            (Values::Label(v), Cell::Text(Some(s))) => v.put(at, &s)?,
            (Values::Label(v), Cell::Name(n)) => v.put_known(at, n.as_str(), Some(n))?,
            (Values::Label(v), Cell::Const(s)) => v.put_known(at, s, None)?,
            (Values::Label(v), Cell::Addr(Some(a))) => v.put_addr(at, a)?,
            (Values::Label(_), Cell::Text(None) | Cell::Addr(None)) => {}
            (Values::Text(v), c) => {
                // (A row sets a column once: rows.rs gives each cell its own column.)
                debug_assert!(v.len() <= at, "a text cell set twice in a row");
                v.extend_null(at.saturating_sub(v.len()));
                match c {
                    Cell::Text(s) => v.push(s),
                    Cell::Name(n) => v.push_value(n.as_str()),
                    Cell::Const(s) => v.push_value(s),
                    Cell::Addr(Some(a)) => v.push_value(Addr::new(a).as_str()),
                    Cell::Addr(None) => v.push_null(),
                    c => unreachable!("cell {c:?} in a column of text"),
                }
            }
            (Values::Seqs(v), Cell::Seqs(x)) => {
                v.resize_with(at, Vec::new);
                v.push(x);
            }
            // A row out of step with its schema is a bug of this module: a test builds every
            // table from every kind of event.
            (v, c) => unreachable!("cell {c:?} in a column of {}", v.name()),
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Values::Time(_) => "time",
            Values::Text(_) => "text",
            Values::Label(_) => "label",
            Values::U64(_) => "u64",
            Values::I64(_) => "i64",
            Values::F64(_) => "f64",
            Values::Bool(_) => "bool",
            Values::Seqs(_) => "seqs",
        }
    }

    /// Its first `n` rows.
    fn column(self, name: &str, n: usize) -> PolarsResult<polars::prelude::Column> {
        let name: PlSmallStr = name.into();
        Ok(match self {
            Values::Time(v) => Int64Chunked::with_chunk(name, v.finish(n))
                .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
                .into_column(),
            Values::I64(v) => Int64Chunked::with_chunk(name, v.finish(n)).into_column(),
            Values::Text(mut v) => {
                v.extend_null(n.saturating_sub(v.len()));
                StringChunked::with_chunk(name, v.freeze()).into_column()
            }
            Values::Label(v) => v.column(name, n),
            Values::U64(v) => UInt64Chunked::with_chunk(name, v.finish(n)).into_column(),
            Values::F64(v) => Float64Chunked::with_chunk(name, v.finish(n)).into_column(),
            Values::Bool(v) => {
                let v = v.finish(n);
                let values: Bitmap = v.values().iter().map(|&b| b != 0).collect();
                let array = BooleanArray::new(
                    polars_arrow::datatypes::ArrowDataType::Boolean,
                    values,
                    v.validity().cloned(),
                );
                BooleanChunked::with_chunk(name, array).into_column()
            }
            Values::Seqs(mut v) => {
                v.resize_with(n, Vec::new);
                let lists: ListChunked = v
                    .into_iter()
                    .map(|x| Some(Series::new(PlSmallStr::EMPTY, x)))
                    .collect();
                lists
                    .with_name(name)
                    .into_series()
                    .cast(&Type::Seqs.dtype())?
                    .into_column()
            }
        })
    }
}

/// The rows of one table not yet handed out.
struct Batch {
    table: Table,
    labels: Labels,
    columns: Vec<Column>,
    values: Vec<Values>,
    /// Rows in `values`.
    rows: usize,
    /// The first error of setting a cell, said when the row ends.
    failed: Option<PolarsError>,
}

/// A row being written: its cells are set by column; the columns not set are null.
pub(crate) struct Row<'b> {
    batch: &'b mut Batch,
}

impl Row<'_> {
    /// Sets column `col` (its place among the table's columns). Inlined where a row is made,
    /// so that a cell is never written to memory to be matched (reading back a cell just
    /// written, misaligned, stalled the processor on every cell).
    #[inline(always)]
    pub fn set(&mut self, col: usize, c: Cell<'_>) {
        let at = self.batch.rows;
        if let Err(e) = self.batch.values[col].put(at, c) {
            self.batch.failed.get_or_insert(e);
        }
    }

    /// Sets the columns from `first` on, in order.
    #[inline(always)]
    pub fn set_all<const N: usize>(&mut self, first: usize, cells: [Cell<'_>; N]) {
        for (i, c) in cells.into_iter().enumerate() {
            if !c.is_null() {
                self.set(first + i, c);
            }
        }
    }
}

impl Batch {
    fn new(table: Table, labels: Labels) -> Batch {
        let columns = table.columns();
        let values = Batch::builders(&columns, labels);
        Batch {
            table,
            labels,
            columns,
            values,
            rows: 0,
            failed: None,
        }
    }

    /// Builders for a new batch (new dictionaries).
    fn builders(columns: &[Column], labels: Labels) -> Vec<Values> {
        columns.iter().map(|c| Values::new(c.ty, labels)).collect()
    }

    /// A new row, ended by [`Batch::end_row`].
    fn row(&mut self) -> Row<'_> {
        Row { batch: self }
    }

    fn end_row(&mut self) -> PolarsResult<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.rows += 1;
        Ok(())
    }

    /// A whole row of cells, in the order of the columns.
    fn push(&mut self, cells: Vec<Cell<'_>>) -> PolarsResult<()> {
        debug_assert_eq!(cells.len(), self.values.len(), "{}", self.table);
        let mut row = self.row();
        for (i, c) in cells.into_iter().enumerate() {
            if !c.is_null() {
                row.set(i, c);
            }
        }
        self.end_row()
    }

    /// The rows so far, as a data frame; the batch starts anew (with new dictionaries).
    fn take(&mut self) -> PolarsResult<DataFrame> {
        let n = std::mem::take(&mut self.rows);
        let values = std::mem::replace(
            &mut self.values,
            Batch::builders(&self.columns, self.labels),
        );
        let columns = values
            .into_iter()
            .zip(&self.columns)
            .map(|(v, c)| v.column(c.name, n))
            .collect::<PolarsResult<Vec<_>>>()?;
        // A label column is its batch's dictionary, frozen: a row group's, once written.
        let columns = columns
            .into_iter()
            .map(Dict::freeze)
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(n, columns)
    }
}

/// Events into rows of the tables asked for, a batch at a time.
pub struct Tabulator {
    topology: Topology,
    /// What each cgroup was attributed to: most kernel events name one of a few cgroups.
    /// Forgotten when the topology learns.
    /// Keyed by where the cgroup's name lies (most kernel events share one of a few names, and
    /// hashing a 100-byte path an event cost more than the rest of the attribution); the entry
    /// holds the name, so that address is not another name's while it is there.
    by_cgroup: PlHashMap<usize, (Name, rows::OwnedWho)>,
    batches: Vec<Batch>,
    batch_rows: usize,
}

/// Cgroups remembered at most; past it the memory starts again.
const CGROUPS: usize = 65_536;

impl Tabulator {
    /// Rows for `tables`, handed out `batch_rows` at a time, labels as strings.
    pub fn new(tables: &[Table], batch_rows: usize) -> Tabulator {
        Tabulator::with_labels(tables, batch_rows, Labels::Strings)
    }

    /// Rows for `tables`, handed out `batch_rows` at a time, labels held as `labels` says.
    pub fn with_labels(tables: &[Table], batch_rows: usize, labels: Labels) -> Tabulator {
        let batch_rows = batch_rows.max(1);
        Tabulator {
            topology: Topology::new(),
            by_cgroup: PlHashMap::default(),
            batches: tables.iter().map(|&t| Batch::new(t, labels)).collect(),
            batch_rows,
        }
    }

    /// Adds an event (in capture order): the table whose batch it filled, if any. An event not
    /// `wanted` (filtered out) makes no row, but the topology still learns from it.
    pub fn add(&mut self, e: &Event, wanted: bool) -> PolarsResult<Option<Table>> {
        if rows::learn(&mut self.topology, e) {
            self.by_cgroup.clear();
        }
        if !wanted {
            return Ok(None);
        }
        let Some(table) = rows::table_of(e) else {
            return Ok(None);
        };
        let Some(batch) = self.batches.iter_mut().find(|b| b.table == table) else {
            return Ok(None);
        };
        // node, namespace, pod, container, service: a kernel event's by its cgroup, remembered.
        let who = match rows::cgroup_of(e) {
            Some(cgroup) => {
                if self.by_cgroup.len() >= CGROUPS {
                    self.by_cgroup.clear();
                }
                let topology = &mut self.topology;
                let (_, who) = self
                    .by_cgroup
                    .entry(cgroup.as_ptr() as usize)
                    .or_insert_with(|| {
                        (
                            cgroup.clone(),
                            rows::who_of_cgroup(topology, cgroup).owned(),
                        )
                    });
                who.cells()
            }
            None => rows::who(&mut self.topology, e).cells(),
        };
        let [node, namespace, pod, container, service] = who;
        let mut row = batch.row();
        row.set_all(
            0,
            [
                Cell::Time(Some(e.ts)),
                Cell::U64(Some(e.seq)),
                if e.node.is_empty() {
                    node
                } else {
                    Cell::Name(&e.node)
                },
                namespace,
                pod,
                container,
                service,
                rows::konst(e.source.as_str()),
            ],
        );
        rows::cells(e, &mut row);
        batch.end_row()?;
        Ok((batch.rows >= self.batch_rows).then_some(table))
    }

    /// The verdict's tables of a run: `incidents` and `findings` (those asked for), with the
    /// findings that made no incident (`leftover`, a run's detected findings).
    pub fn add_verdict(
        &mut self,
        incidents: &[crate::analysis::Incident],
        leftover: &[crate::detect::Finding],
    ) -> PolarsResult<()> {
        for b in &mut self.batches {
            let table = b.table;
            let mut pushed = Ok(());
            let mut push = |cells: Vec<Cell<'_>>| {
                if pushed.is_ok() {
                    pushed = b.push(cells);
                }
            };
            match table {
                Table::Incidents => verdict::incidents(incidents, &mut push),
                Table::Findings => verdict::findings(incidents, leftover, &mut push),
                _ => {}
            }
            pushed?;
        }
        Ok(())
    }

    /// The rows of `table` held so far, as a data frame (empty when none).
    pub fn take(&mut self, table: Table) -> PolarsResult<DataFrame> {
        match self.batches.iter_mut().find(|b| b.table == table) {
            Some(b) => b.take(),
            None => Ok(DataFrame::empty_with_schema(&table.schema())),
        }
    }
}

/// The schema page (`docs/tables.md`): every table and column, from the lists above.
pub fn schema_page() -> String {
    let mut s = String::from(
        "# The tables of `tapio export`\n\n\
         Generated from `src/lib/table/mod.rs` (a test checks that this page matches it). Times are\n\
         UTC with nanoseconds; a column that does not apply to a row is null. Every row carries what\n\
         the topology attributed it to: a kernel event reaches its pod and container through its\n\
         cgroup, once the capture holds the Pod object.\n\n\
         A *string (dictionary)* column holds what repeats from row to row (names, kinds, states).\n\
         It is text in every format; Parquet stores each row group's distinct values once:\n\
         DuckDB reads it as `VARCHAR`, polars as `Categorical`.\n",
    );
    for t in Table::ALL {
        s.push_str(&format!(
            "\n## `{t}`\n\n{}\n\n| column | type | |\n|---|---|---|\n",
            t.about()
        ));
        for c in t.columns() {
            s.push_str(&format!("| `{}` | {} | {} |\n", c.name, c.ty.name(), c.doc));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_page_is_the_schema() {
        // A column renamed, retyped or gone changes the page: users' notebooks read these names.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tables.md");
        let page = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("TAPIO_WRITE_SCHEMA_PAGE").is_some() {
            std::fs::write(path, schema_page()).unwrap();
            return;
        }
        assert!(
            page == schema_page(),
            "docs/tables.md is not the schema: run TAPIO_WRITE_SCHEMA_PAGE=1 cargo test the_schema_page"
        );
    }

    /// Every table of every fixture, as frames of `batch` rows, labels held as `labels` says,
    /// with the capture each came from.
    fn fixture_frames(labels: Labels, batch: usize) -> Vec<(String, Table, DataFrame)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/incidents");
        let mut dirs: Vec<_> = std::fs::read_dir(root).unwrap().flatten().collect();
        dirs.sort_by_key(|d| d.path());
        let mut frames = Vec::new();
        for dir in dirs {
            let mut files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
            files.sort_by_key(|f| f.path());
            for f in files {
                let p = f.path();
                if p.extension().is_none_or(|x| x != "tapio") {
                    continue;
                }
                let events = crate::capture::Reader::open(&p, Default::default())
                    .unwrap()
                    .read_all()
                    .unwrap();
                let name = p.display().to_string();
                let mut tab = Tabulator::with_labels(Table::ALL, batch, labels);
                for e in &events {
                    if let Some(t) = tab.add(e, true).unwrap() {
                        frames.push((name.clone(), t, tab.take(t).unwrap()));
                    }
                }
                let (verdict, detected) =
                    crate::pipeline::run_events([events.clone()], Default::default());
                tab.add_verdict(&verdict.incidents, &detected.findings)
                    .unwrap();
                for &t in Table::ALL {
                    frames.push((name.clone(), t, tab.take(t).unwrap()));
                }
            }
        }
        frames
    }

    #[test]
    fn labels_as_dictionaries_are_the_same_text_as_labels_as_strings() {
        // Batches of 3000 rows: a dictionary a batch, started anew.
        let strings = fixture_frames(Labels::Strings, 3000);
        let dictionaries = fixture_frames(Labels::Dictionary, 3000);
        assert_eq!(strings.len(), dictionaries.len());
        let mut labels = 0;
        for ((_, t, s), (_, u, d)) in strings.iter().zip(&dictionaries) {
            assert_eq!(t, u);
            assert_eq!(s.height(), d.height(), "{t}");
            for (c, col) in t.columns().iter().zip(d.columns()) {
                let want = s.column(c.name).unwrap();
                if c.ty == Type::Label {
                    // A frozen dictionary of the batch's values, in the order they came.
                    assert!(matches!(col.dtype(), DataType::Enum(..)), "{t}.{}", c.name);
                    labels += col.len();
                    let got = col.cast(&DataType::String).unwrap();
                    assert!(got.equal_missing(want).unwrap().all(), "{t}.{}", c.name);
                } else {
                    assert!(col.equal_missing(want).unwrap().all(), "{t}.{}", c.name);
                }
            }
        }
        assert!(labels > 1000, "{labels}");
    }

    #[test]
    fn every_event_and_verdict_of_every_fixture_makes_a_row_of_its_tables_schema() {
        let mut rows = std::collections::BTreeMap::<Table, usize>::new();
        for (file, t, df) in fixture_frames(Labels::Strings, 5) {
            assert_eq!(**df.schema(), t.schema(), "{t} of {file}");
            *rows.entry(t).or_default() += df.height();
        }
        // Every table has rows among the fixtures.
        assert_eq!(rows.len(), Table::ALL.len(), "{rows:?}");
        assert!(rows.values().all(|&n| n > 0), "{rows:?}");
    }
}
