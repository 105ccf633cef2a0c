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

use crate::event::{Event, Ts};
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
    U64,
    I64,
    F64,
    Bool,
    /// A list of event numbers (`seq`s).
    Seqs,
}

impl Type {
    pub fn dtype(self) -> DataType {
        match self {
            Type::Time => DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC)),
            Type::Text => DataType::String,
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
        Type::Text,
        "The node that saw it (else the node of the pod it is attributed to).",
    ),
    col(
        "namespace",
        Type::Text,
        "The namespace it is attributed to, by the topology.",
    ),
    col(
        "pod",
        Type::Text,
        "The pod it is attributed to (a kernel event through its cgroup).",
    ),
    col(
        "container",
        Type::Text,
        "The container it is attributed to, when known.",
    ),
    col(
        "service",
        Type::Text,
        "The service: `service.name` of spans and logs, else none.",
    ),
    col(
        "source",
        Type::Text,
        "The collector: ebpf, kube, otlp, kmsg, pod-logs, import, tapio.",
    ),
];

const KERNEL: &[Column] = &[
    col(
        "kind",
        Type::Text,
        "exec, exit, signal, oom, tcp, retransmit, task, pressure, throttle.",
    ),
    col(
        "pid",
        Type::U64,
        "The process (for signal: the target; for oom: the victim).",
    ),
    col("comm", Type::Text, "Its command name."),
    col("ppid", Type::U64, "exec: the parent process."),
    col("filename", Type::Text, "exec: the program."),
    col(
        "cgroup",
        Type::Text,
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
        Type::Text,
        "signal: the sender's command name; oom: the invoker's.",
    ),
    col(
        "oom_constraint",
        Type::Text,
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
    col("saddr", Type::Text, "tcp, retransmit: the local address."),
    col("sport", Type::U64, "tcp, retransmit: the local port."),
    col("daddr", Type::Text, "tcp, retransmit: the remote address."),
    col("dport", Type::U64, "tcp, retransmit: the remote port."),
    col(
        "tcp_old",
        Type::Text,
        "tcp: the state before (SYN_SENT, ESTABLISHED, …).",
    ),
    col(
        "tcp_new",
        Type::Text,
        "tcp: the state after; retransmit: the state.",
    ),
    col(
        "tcp_outcome",
        Type::Text,
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
    col("name", Type::Text, "The operation."),
    col(
        "span_kind",
        Type::Text,
        "internal, server, client, producer, consumer, unspecified.",
    ),
    col("start", Type::Time, "When it began."),
    col(
        "duration_ns",
        Type::U64,
        "How long it took, in nanoseconds.",
    ),
    col("status", Type::Text, "unset, ok, error."),
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
        Type::Text,
        "The host or address a client span called.",
    ),
];

const LOGS: &[Column] = &[
    col(
        "origin",
        Type::Text,
        "kmsg, syslog, journal, app, …: where the line was written.",
    ),
    col(
        "severity",
        Type::Text,
        "trace, debug, info, warn, error, fatal, unknown.",
    ),
    col(
        "ident",
        Type::Text,
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
    col("kind", Type::Text, "Pod, Deployment, Node, …"),
    col("name", Type::Text, "The object's name."),
    col("uid", Type::Text, "The object's uid."),
    col("change", Type::Text, "added, modified, deleted, listed."),
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
    col("node", Type::Text, "The node of its entity, when known."),
    col("namespace", Type::Text, "The namespace of its entity."),
    col("pod", Type::Text, "The pod, when its entity is one."),
    col(
        "container",
        Type::Text,
        "The container, when known (an OOM kill's).",
    ),
    col(
        "service",
        Type::Text,
        "The service, when its entity is one (a Service or an application's `service.name`).",
    ),
];

const INCIDENTS: &[Column] = &[
    col("severity", Type::Text, "low, medium, high, critical."),
    col(
        "confidence",
        Type::F64,
        "How much the root cause is believed, 0 to 1.",
    ),
    col(
        "root_kind",
        Type::Text,
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
        Type::Text,
        "The finding kind (`docs/correlation.md` lists them).",
    ),
    col(
        "layer",
        Type::Text,
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

    /// The table's schema, as polars types it.
    pub fn schema(self) -> Schema {
        self.columns()
            .into_iter()
            .map(|c| Field::new(c.name.into(), c.ty.dtype()))
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
    U64(Option<u64>),
    I64(Option<i64>),
    F64(Option<f64>),
    Bool(Option<bool>),
    Seqs(Vec<u64>),
}

impl Cell<'_> {
    /// The empty cell of a column of type `ty`.
    pub fn none(ty: Type) -> Cell<'static> {
        match ty {
            Type::Time => Cell::Time(None),
            Type::Text => Cell::Text(None),
            Type::U64 => Cell::U64(None),
            Type::I64 => Cell::I64(None),
            Type::F64 => Cell::F64(None),
            Type::Bool => Cell::Bool(None),
            Type::Seqs => Cell::Seqs(Vec::new()),
        }
    }
}

/// The values of one column of a batch.
enum Values {
    /// Numbers are kept as values and a validity bitmap (8 bytes and a bit a cell, where
    /// `Option<u64>` takes 16): the batch is written to memory once, and twice as fast.
    Time(PrimitiveChunkedBuilder<Int64Type>),
    /// Strings are appended to one buffer, not allocated a cell at a time.
    Text(StringChunkedBuilder),
    U64(PrimitiveChunkedBuilder<UInt64Type>),
    I64(PrimitiveChunkedBuilder<Int64Type>),
    F64(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
    Seqs(Vec<Vec<u64>>),
}

impl Values {
    fn new(name: &str, ty: Type, n: usize) -> Values {
        let name: PlSmallStr = name.into();
        match ty {
            Type::Time => Values::Time(PrimitiveChunkedBuilder::new(name, n)),
            Type::Text => Values::Text(StringChunkedBuilder::new(name, n)),
            Type::U64 => Values::U64(PrimitiveChunkedBuilder::new(name, n)),
            Type::I64 => Values::I64(PrimitiveChunkedBuilder::new(name, n)),
            Type::F64 => Values::F64(PrimitiveChunkedBuilder::new(name, n)),
            Type::Bool => Values::Bool(BooleanChunkedBuilder::new(name, n)),
            Type::Seqs => Values::Seqs(Vec::with_capacity(n)),
        }
    }

    #[inline]
    fn push(&mut self, c: Cell<'_>) {
        let nanos = |t: Option<Ts>| t.map(|t| i64::try_from(t.0).unwrap_or(i64::MAX));
        match (self, c) {
            (Values::Time(v), Cell::Time(t)) => v.append_option(nanos(t)),
            (Values::Text(v), Cell::Text(s)) => v.append_option(s),
            (Values::U64(v), Cell::U64(x)) => v.append_option(x),
            (Values::I64(v), Cell::I64(x)) => v.append_option(x),
            (Values::F64(v), Cell::F64(x)) => v.append_option(x),
            (Values::Bool(v), Cell::Bool(x)) => v.append_option(x),
            (Values::Seqs(v), Cell::Seqs(x)) => v.push(x),
            // A row out of step with its schema is a bug of this module: a test builds every
            // table from every kind of event.
            (v, c) => unreachable!("cell {c:?} in a column of {}", v.name()),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Values::Time(_) => "time",
            Values::Text(_) => "text",
            Values::U64(_) => "u64",
            Values::I64(_) => "i64",
            Values::F64(_) => "f64",
            Values::Bool(_) => "bool",
            Values::Seqs(_) => "seqs",
        }
    }

    fn column(self, name: &str) -> PolarsResult<polars::prelude::Column> {
        let name: PlSmallStr = name.into();
        Ok(match self {
            Values::Time(v) => v
                .finish()
                .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
                .into_column(),
            Values::Text(v) => v.finish().with_name(name).into_column(),
            Values::U64(v) => v.finish().into_column(),
            Values::I64(v) => v.finish().into_column(),
            Values::F64(v) => v.finish().into_column(),
            Values::Bool(v) => v.finish().into_column(),
            Values::Seqs(v) => {
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
    columns: Vec<Column>,
    values: Vec<Values>,
    /// Rows in `values`.
    filling: usize,
    /// The chunks made so far, and their rows.
    made: Option<DataFrame>,
    rows: usize,
}

/// Rows of a chunk: a row goes to every column of its table, and the columns of a few thousand
/// rows stay in the processor's cache while they fill (with a batch's worth of rows in the
/// builders, every cell written was a miss to memory: half the time of making rows).
const CHUNK: usize = 2048;

impl Batch {
    fn new(table: Table) -> Batch {
        let columns = table.columns();
        let values = Batch::builders(&columns);
        Batch {
            table,
            columns,
            values,
            filling: 0,
            made: None,
            rows: 0,
        }
    }

    fn builders(columns: &[Column]) -> Vec<Values> {
        columns
            .iter()
            .map(|c| Values::new(c.name, c.ty, CHUNK))
            .collect()
    }

    fn push(&mut self, cells: &mut Vec<Cell<'_>>) -> PolarsResult<()> {
        debug_assert_eq!(cells.len(), self.values.len(), "{}", self.table);
        for (v, c) in self.values.iter_mut().zip(cells.drain(..)) {
            v.push(c);
        }
        self.rows += 1;
        self.filling += 1;
        if self.filling >= CHUNK {
            self.seal()?;
        }
        Ok(())
    }

    /// The rows in the builders become a chunk of the batch.
    fn seal(&mut self) -> PolarsResult<()> {
        let values = std::mem::replace(&mut self.values, Batch::builders(&self.columns));
        let columns = values
            .into_iter()
            .zip(&self.columns)
            .map(|(v, c)| v.column(c.name))
            .collect::<PolarsResult<Vec<_>>>()?;
        let chunk = DataFrame::new(self.filling, columns)?;
        self.filling = 0;
        match &mut self.made {
            Some(df) => {
                df.vstack_mut_owned(chunk)?;
            }
            None => self.made = Some(chunk),
        }
        Ok(())
    }

    fn take(&mut self) -> PolarsResult<DataFrame> {
        if self.filling > 0 || self.made.is_none() {
            self.seal()?;
        }
        self.rows = 0;
        Ok(self
            .made
            .take()
            .unwrap_or_else(|| DataFrame::empty_with_schema(&self.table.schema())))
    }
}

/// Events into rows of the tables asked for, a batch at a time.
pub struct Tabulator {
    topology: Topology,
    /// What each cgroup was attributed to: most kernel events name one of a few cgroups.
    /// Forgotten when the topology learns.
    by_cgroup: PlHashMap<crate::event::Name, rows::OwnedWho>,
    batches: Vec<Batch>,
    batch_rows: usize,
    /// The cells of the last row, kept for the next (a row is no allocation).
    spare: Vec<Cell<'static>>,
}

/// Cgroups remembered at most; past it the memory starts again.
const CGROUPS: usize = 65_536;

/// An empty vector of cells that borrow for another lifetime, in the same allocation.
fn recycle<'b>(mut v: Vec<Cell<'_>>) -> Vec<Cell<'b>> {
    v.clear();
    // Collecting from an empty vector's iterator into one of the same layout keeps its
    // allocation (the standard library collects in place).
    v.into_iter().map(|_| Cell::U64(None)).collect()
}

impl Tabulator {
    /// Rows for `tables`, handed out `batch_rows` at a time.
    pub fn new(tables: &[Table], batch_rows: usize) -> Tabulator {
        let batch_rows = batch_rows.max(1);
        Tabulator {
            topology: Topology::new(),
            by_cgroup: PlHashMap::default(),
            batches: tables.iter().map(|&t| Batch::new(t)).collect(),
            batch_rows,
            spare: Vec::with_capacity(64),
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
        let who = match rows::cgroup_of(e) {
            Some(cgroup) => {
                if self.by_cgroup.len() >= CGROUPS {
                    self.by_cgroup.clear();
                }
                let topology = &mut self.topology;
                let who = self
                    .by_cgroup
                    .raw_entry_mut()
                    .from_key(cgroup)
                    .or_insert_with(|| {
                        (
                            cgroup.clone(),
                            rows::who_of_cgroup(topology, cgroup).owned(),
                        )
                    })
                    .1;
                who.borrowed()
            }
            None => rows::who(&mut self.topology, e),
        };
        let mut cells = recycle(std::mem::take(&mut self.spare));
        cells.extend([
            Cell::Time(Some(e.ts)),
            Cell::U64(Some(e.seq)),
            match e.node.as_str() {
                "" => rows::opt(who.node),
                node => Cell::Text(Some(node.into())),
            },
            rows::opt(who.namespace),
            rows::opt(who.pod),
            rows::opt(who.container),
            rows::opt(who.service),
            Cell::Text(Some(e.source.as_str().into())),
        ]);
        rows::cells(e, &mut cells);
        batch.push(&mut cells)?;
        let full = batch.rows >= self.batch_rows;
        self.spare = recycle(cells);
        Ok(full.then_some(table))
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
            let mut push = |mut cells: Vec<Cell<'_>>| {
                if pushed.is_ok() {
                    pushed = b.push(&mut cells);
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
         cgroup, once the capture holds the Pod object.\n",
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

    #[test]
    fn every_event_and_verdict_of_every_fixture_makes_a_row_of_its_tables_schema() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/incidents");
        let mut rows = std::collections::BTreeMap::<Table, usize>::new();
        for dir in std::fs::read_dir(root).unwrap().flatten() {
            for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let p = f.path();
                if p.extension().is_none_or(|x| x != "tapio") {
                    continue;
                }
                let events = crate::capture::Reader::open(&p, Default::default())
                    .unwrap()
                    .read_all()
                    .unwrap();
                let mut tab = Tabulator::new(Table::ALL, 5);
                let mut frames = Vec::new();
                for e in &events {
                    if let Some(t) = tab.add(e, true).unwrap() {
                        frames.push((t, tab.take(t).unwrap()));
                    }
                }
                let (verdict, detected) =
                    crate::pipeline::run_events([events.clone()], Default::default());
                tab.add_verdict(&verdict.incidents, &detected.findings)
                    .unwrap();
                for &t in Table::ALL {
                    frames.push((t, tab.take(t).unwrap()));
                }
                for (t, df) in frames {
                    assert_eq!(**df.schema(), t.schema(), "{t} of {}", p.display());
                    *rows.entry(t).or_default() += df.height();
                }
            }
        }
        // Every table has rows among the fixtures.
        assert_eq!(rows.len(), Table::ALL.len(), "{rows:?}");
        assert!(rows.values().all(|&n| n > 0), "{rows:?}");
    }
}
