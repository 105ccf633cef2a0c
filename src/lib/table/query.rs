//! SQL over the tables (polars SQL): `tapio query`.
//!
//! The tables a query names are built whole in memory (a batch at a time, then joined), and
//! registered under their documented names; polars plans and runs the query over them.

use polars::prelude::*;
use polars::sql::SQLContext;

use super::{Table, Tabulator};
use crate::analysis::Incident;
use crate::detect::Finding;
use crate::event::Event;

/// The tables a query names (as whole words, in any case); none when it names none.
pub fn tables_in(sql: &str) -> Vec<Table> {
    let words: std::collections::HashSet<String> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    Table::ALL
        .iter()
        .copied()
        .filter(|t| words.contains(t.as_str()))
        .collect()
}

/// Whole tables, built from events in capture order.
pub struct Collector {
    tab: Tabulator,
    tables: Vec<Table>,
    parts: Vec<(Table, DataFrame)>,
}

/// Rows a batch holds before it is set aside as a frame.
const BATCH: usize = 65_536;

impl Collector {
    pub fn new(tables: &[Table]) -> Collector {
        Collector {
            tab: Tabulator::new(tables, BATCH),
            tables: tables.to_vec(),
            parts: Vec::new(),
        }
    }

    /// Adds an event; `wanted` as for [`Tabulator::add`].
    pub fn add(&mut self, e: &Event, wanted: bool) -> PolarsResult<()> {
        if let Some(full) = self.tab.add(e, wanted)? {
            let df = self.tab.take(full)?;
            self.parts.push((full, df));
        }
        Ok(())
    }

    /// The whole tables, with the verdict's rows.
    pub fn finish(
        mut self,
        incidents: &[Incident],
        leftover: &[Finding],
    ) -> PolarsResult<Vec<(Table, DataFrame)>> {
        self.tab.add_verdict(incidents, leftover)?;
        let mut out = Vec::with_capacity(self.tables.len());
        for &t in &self.tables {
            let mut df = DataFrame::empty_with_schema(&t.schema());
            for (_, part) in self.parts.iter().filter(|(x, _)| *x == t) {
                df.vstack_mut(part)?;
            }
            df.vstack_mut(&self.tab.take(t)?)?;
            df.rechunk_mut_par();
            out.push((t, df));
        }
        Ok(out)
    }
}

/// A query that could not run: what polars said, and what there is to ask about.
#[derive(Debug, thiserror::Error)]
#[error("{problem}\n\n{}", tables_and_columns())]
pub struct Error {
    pub problem: String,
}

/// Every table and its columns, a line each, as an error lists them.
pub fn tables_and_columns() -> String {
    let mut s = String::from("The tables and their columns (docs/tables.md says what they hold):");
    for t in Table::ALL {
        let cols: Vec<&str> = t.columns().iter().map(|c| c.name).collect();
        s.push_str(&format!("\n  {t}: {}", cols.join(", ")));
    }
    s
}

/// Runs `sql` over `tables`.
pub fn run(tables: Vec<(Table, DataFrame)>, sql: &str) -> Result<DataFrame, Error> {
    let mut ctx = SQLContext::new();
    for (t, df) in tables {
        ctx.register(t.as_str(), df.lazy());
    }
    let problem = |e: PolarsError| Error {
        problem: match e {
            PolarsError::SQLSyntax(m) | PolarsError::SQLInterface(m) => {
                format!("the query is not valid SQL here: {m}")
            }
            PolarsError::ColumnNotFound(m) => format!("no such column: {m}"),
            e => e.to_string(),
        },
    };
    ctx.execute(sql)
        .and_then(|lf| lf.collect())
        .map_err(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_its_tables_as_words() {
        assert_eq!(
            tables_in("select pod, count(*) from KERNEL k join spans s on k.pod = s.pod"),
            vec![Table::Kernel, Table::Spans]
        );
        assert_eq!(tables_in("SELECT * FROM k8s_events_2"), Vec::<Table>::new());
    }

    #[test]
    fn an_error_names_the_problem_and_lists_the_tables_and_columns() {
        let tables = vec![(
            Table::Spans,
            DataFrame::empty_with_schema(&Table::Spans.schema()),
        )];
        let e = run(tables.clone(), "SELECT durration FROM spans")
            .unwrap_err()
            .to_string();
        assert!(e.contains("durration"), "{e}");
        assert!(e.contains("spans: ts, seq, node"), "{e}");
        assert!(e.contains("kernel: ts, seq"), "{e}");
        let e = run(tables, "SELEC 1").unwrap_err().to_string();
        assert!(e.starts_with("the query is not valid SQL here"), "{e}");
    }
}
