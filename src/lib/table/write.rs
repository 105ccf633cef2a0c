//! Tables to files: Parquet (zstd), CSV, JSON lines and Arrow IPC, a batch at a time.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use polars::prelude::*;

/// The file formats of `tapio export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
    Jsonl,
    Arrow,
}

named!(Format, "format" {
    Parquet => "parquet",
    Csv => "csv",
    Jsonl => "jsonl",
    Arrow => "arrow",
});

impl Format {
    /// From a file's extension (`.parquet`, `.csv`, `.jsonl`/`.ndjson`, `.arrow`/`.ipc`/`.feather`).
    pub fn of_path(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()? {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "arrow" | "ipc" | "feather" => Some(Format::Arrow),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    /// How its rows hold labels: Parquet writes each row group's dictionary as made; Arrow IPC
    /// files cannot change a dictionary from batch to batch, and text formats write strings.
    pub fn labels(self) -> super::Labels {
        match self {
            Format::Parquet => super::Labels::Dictionary,
            Format::Csv | Format::Jsonl | Format::Arrow => super::Labels::Strings,
        }
    }
}

enum Inner {
    Parquet(Box<polars::io::parquet::write::BatchedWriter<BufWriter<File>>>),
    Csv(polars::io::csv::write::BatchedWriter<BufWriter<File>>),
    Jsonl(polars::io::json::BatchedWriter<BufWriter<File>>),
    Arrow(polars::io::ipc::BatchedWriter<BufWriter<File>>),
}

/// One table's file, written a batch at a time.
pub struct Sink {
    path: PathBuf,
    inner: Inner,
    rows: u64,
}

/// An error of writing a table's file: the file and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {detail}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub detail: String,
}

impl Sink {
    /// Creates `path` for rows of `schema`.
    pub fn create(path: &Path, format: Format, schema: &Schema) -> Result<Sink, Error> {
        let err = |detail: String| Error {
            path: path.to_path_buf(),
            detail,
        };
        let file = File::create(path).map_err(|e| err(e.to_string()))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let inner = match format {
            Format::Parquet => Inner::Parquet(Box::new(
                ParquetWriter::new(out)
                    .with_compression(ParquetCompression::Zstd(None))
                    .batched(schema)
                    .map_err(|e| err(e.to_string()))?,
            )),
            Format::Csv => Inner::Csv(
                CsvWriter::new(out)
                    .batched(&csv_schema(schema))
                    .map_err(|e| err(e.to_string()))?,
            ),
            Format::Jsonl => Inner::Jsonl(polars::io::json::BatchedWriter::new(out)),
            Format::Arrow => {
                let arrow = schema.to_arrow(CompatLevel::newest());
                let fields = polars_arrow::io::ipc::write::default_ipc_fields(arrow.iter_values());
                Inner::Arrow(
                    IpcWriter::new(out)
                        .with_compression(Some(IpcCompression::ZSTD(Default::default())))
                        .batched(schema, fields)
                        .map_err(|e| err(e.to_string()))?,
                )
            }
        };
        Ok(Sink {
            path: path.to_path_buf(),
            inner,
            rows: 0,
        })
    }

    /// Appends a batch of rows.
    pub fn write(&mut self, df: &mut DataFrame) -> Result<(), Error> {
        if df.height() == 0 {
            return Ok(());
        }
        // One chunk a column: a batch is made in small chunks, and is written as one row group.
        df.rechunk_mut();
        self.rows += df.height() as u64;
        let r = match &mut self.inner {
            Inner::Parquet(w) => w.write_batch(df),
            Inner::Csv(w) => csv_frame(df).and_then(|df| w.write_batch(&df)),
            Inner::Jsonl(w) => w.write_batch(df),
            Inner::Arrow(w) => w.write_batch(df),
        };
        r.map_err(|e| self.error(e))
    }

    /// Ends the file (footers): the rows written.
    pub fn finish(mut self) -> Result<u64, Error> {
        let r = match &mut self.inner {
            Inner::Parquet(w) => w.finish().map(|_| ()),
            Inner::Csv(w) => w.finish(),
            Inner::Jsonl(_) => Ok(()),
            Inner::Arrow(w) => w.finish(),
        };
        r.map_err(|e| self.error(e))?;
        Ok(self.rows)
    }

    fn error(&self, e: PolarsError) -> Error {
        Error {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }
}

/// CSV has no lists: a list of numbers is written as one cell, space-separated.
fn csv_schema(schema: &Schema) -> Schema {
    schema
        .iter()
        .map(|(name, dt)| match dt {
            DataType::List(_) => Field::new(name.clone(), DataType::String),
            dt => Field::new(name.clone(), dt.clone()),
        })
        .collect()
}

/// The frame with its lists as text cells, as CSV writes them.
pub(crate) fn csv_frame(df: &DataFrame) -> PolarsResult<DataFrame> {
    let columns = df
        .columns()
        .iter()
        .map(|c| {
            let DataType::List(_) = c.dtype() else {
                return Ok(c.clone());
            };
            let lists = c.list()?;
            let cells: StringChunked = (0..lists.len())
                .map(|i| {
                    lists.get_as_series(i).map(|s| {
                        let s = s.cast(&DataType::String).unwrap_or(s);
                        s.str()
                            .map(|t| t.iter().flatten().collect::<Vec<_>>().join(" "))
                            .unwrap_or_default()
                    })
                })
                .collect();
            Ok(cells.with_name(c.name().clone()).into_column())
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(df.height(), columns)
}

/// The rows written to each table.
pub type Written = Vec<(super::Table, u64)>;

/// Sinks written on a thread of their own: the rows of the next batch are made while the last is
/// encoded and compressed (on a 2-core machine, twice the pace of one thread doing both).
pub struct Background {
    tx: Option<crossbeam_channel::Sender<(super::Table, DataFrame)>>,
    thread: Option<std::thread::JoinHandle<Result<Written, Error>>>,
}

impl Background {
    /// Takes the sinks of the tables; at most `queue` batches wait to be written.
    pub fn start(sinks: Vec<(super::Table, Sink)>, queue: usize) -> Background {
        let (tx, rx) = crossbeam_channel::bounded::<(super::Table, DataFrame)>(queue);
        let thread = std::thread::Builder::new()
            .name("tapio-write".into())
            .spawn(move || {
                let mut sinks = sinks;
                for (t, mut df) in rx {
                    if let Some((_, sink)) = sinks.iter_mut().find(|(x, _)| *x == t) {
                        sink.write(&mut df)?;
                    }
                }
                sinks
                    .into_iter()
                    .map(|(t, sink)| Ok((t, sink.finish()?)))
                    .collect()
            })
            .expect("a thread can be started");
        Background {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Hands a batch of `table` over; an error of the writer ends it and is said here.
    pub fn write(&mut self, table: super::Table, df: DataFrame) -> Result<(), Error> {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((table, df)).is_ok());
        if sent {
            return Ok(());
        }
        // The writer stopped: its error says why.
        self.finish().map(|_| ())
    }

    /// Writes what is left and ends the files: the rows of each table.
    pub fn finish(&mut self) -> Result<Written, Error> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(Error {
                    path: PathBuf::from("writer"),
                    detail: "the writing thread panicked".into(),
                })
            }),
            None => Err(Error {
                path: PathBuf::from("writer"),
                detail: "already finished".into(),
            }),
        }
    }
}
