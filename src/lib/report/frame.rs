//! Data frames as people and programs read them: a table for the terminal, CSV, JSON lines,
//! Parquet (`tapio query`, `tapio stats`).

use polars::prelude::*;
use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Modify, Style};

/// One cell as text: strings as they are, times in UTC with nanoseconds where they have them,
/// lists space-separated, nothing for null.
pub fn cell(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(x) => float(*x),
        AnyValue::Float32(x) => float(f64::from(*x)),
        AnyValue::Datetime(n, unit, _) | AnyValue::DatetimeOwned(n, unit, _) => {
            let nanos = match unit {
                TimeUnit::Nanoseconds => *n,
                TimeUnit::Microseconds => n.saturating_mul(1_000),
                TimeUnit::Milliseconds => n.saturating_mul(1_000_000),
            };
            crate::event::Ts(u64::try_from(nanos).unwrap_or(0)).to_string()
        }
        AnyValue::List(s) => (0..s.len())
            .map(|i| s.get(i).map(|v| cell(&v)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
        v => v.to_string(),
    }
}

/// A float as people read it: at most three decimals, no trailing zeros.
fn float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn numeric(dt: &DataType) -> bool {
    dt.is_primitive_numeric()
}

/// The frame as a table for a terminal: a header, numbers to the right.
pub fn text(df: &DataFrame) -> String {
    let mut b = Builder::default();
    b.push_record(df.get_column_names().iter().map(|n| n.to_string()));
    let columns = df.columns();
    for i in 0..df.height() {
        b.push_record(
            columns
                .iter()
                .map(|c| c.get(i).map(|v| cell(&v)).unwrap_or_default()),
        );
    }
    let mut t = b.build();
    t.with(Style::sharp());
    for (i, c) in columns.iter().enumerate() {
        if numeric(c.dtype()) {
            t.with(Modify::new(Columns::single(i)).with(Alignment::right()));
        }
    }
    t.to_string()
}

/// The frame as CSV, with a header (lists space-separated).
pub fn csv(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut df = crate::table::write::csv_frame(df)?;
    let mut out = Vec::new();
    CsvWriter::new(&mut out).finish(&mut df)?;
    Ok(out)
}

/// The frame as JSON lines, an object a row.
pub fn json(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut df = df.clone();
    let mut out = Vec::new();
    JsonWriter::new(&mut out)
        .with_json_format(JsonFormat::JsonLines)
        .finish(&mut df)?;
    if out.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    Ok(out)
}

/// The frame as a Parquet file (zstd).
pub fn parquet(df: &DataFrame) -> PolarsResult<Vec<u8>> {
    let mut df = df.clone();
    let mut out = Vec::new();
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_people_write_them() {
        let df = df!(
            "pod" => [Some("cart"), None],
            "rate" => [0.25f64, 1.0 / 3.0],
            "n" => [3u64, 12],
        )
        .unwrap();
        let t = text(&df);
        assert!(t.contains("│ cart │  0.25 │  3 │"), "{t}");
        assert!(t.contains("│      │ 0.333 │ 12 │"), "{t}");
        let csv = String::from_utf8(csv(&df).unwrap()).unwrap();
        assert_eq!(csv, "pod,rate,n\ncart,0.25,3\n,0.3333333333333333,12\n");
    }
}
