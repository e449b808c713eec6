//! `flashmm journal export --format csv|parquet`: the journal as tables, one per kind of entry
//! (fills, orders, quotes, predictions, risk, trades, bbo, ...), for pandas, polars or a
//! spreadsheet. JSONL (every entry, importable) stays in `journal::jsonl`.
//!
//! OUT is a directory that receives `<table>.csv` or `<table>.parquet` for each table asked for
//! (empty tables too, with their header or schema); when exactly one table is asked for and OUT
//! ends in `.csv` or `.parquet`, OUT is that file. The schemas are in docs/export.md.
//! With `--session`, a backtest's tables include the market entries it references (trades and
//! bbo keep their own seq and session), read in the order the core saw them.

mod csv;
mod parquet;
pub mod table;

pub use csv::timestamp;
pub use parquet::{to_i128, PRECISION, SCALE};
pub use table::{schema_markdown, Table};

use super::ReportError;
use flashmm_journal::stream::session_stream;
use flashmm_journal::Journal;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use table::{Rows, Val};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// One file written.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub table: Table,
    pub path: PathBuf,
    pub rows: u64,
}

/// `--kinds fills,quotes`: the tables named, in the order of `Table::ALL`; all when `None`.
pub fn parse_kinds(kinds: Option<&str>) -> Result<Vec<Table>, ReportError> {
    let Some(kinds) = kinds else {
        return Ok(Table::ALL.to_vec());
    };
    let mut out = Vec::new();
    for k in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let t = Table::from_name(k).ok_or_else(|| {
            ReportError::Usage(format!(
                "--kinds: no table {k:?}; the tables are {}",
                Table::ALL.map(|t| t.name()).join(", ")
            ))
        })?;
        out.push(t);
    }
    if out.is_empty() {
        return Err(ReportError::Usage(
            "--kinds names no table; for example --kinds fills,quotes".into(),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

enum Sink {
    Csv(csv::CsvSink<BufWriter<File>>),
    Parquet(Box<parquet::ParquetSink<BufWriter<File>>>),
}

/// Where each table goes: OUT/<table>.<ext>, or OUT itself for a single table named as a file.
fn paths(tables: &[Table], format: Format, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let ext = format.ext();
    let named = out.extension().and_then(|e| e.to_str());
    match named {
        Some(e) if e == "csv" || e == "parquet" => {
            if e != ext {
                return Err(ReportError::Usage(format!(
                    "OUT {} ends in .{e} but --format is {ext}",
                    out.display()
                )));
            }
            if tables.len() != 1 {
                return Err(ReportError::Usage(format!(
                    "OUT {} is one file, but {} tables were asked for: name one with --kinds, or give a directory",
                    out.display(),
                    tables.len()
                )));
            }
            Ok(vec![out.to_path_buf()])
        }
        _ => {
            if out.is_file() {
                return Err(ReportError::Usage(format!(
                    "OUT {} is a file; give a directory (one file per table is written into it)",
                    out.display()
                )));
            }
            std::fs::create_dir_all(out).map_err(|e| ReportError::io(out, e))?;
            Ok(tables
                .iter()
                .map(|t| out.join(format!("{}.{ext}", t.name())))
                .collect())
        }
    }
}

/// Writes the tables of `session` (or of the whole journal) to `out`.
pub fn export(
    journal: &Journal,
    session: Option<u64>,
    tables: &[Table],
    format: Format,
    out: &Path,
) -> Result<Vec<Written>, ReportError> {
    let paths = paths(tables, format, out)?;
    let mut sinks: BTreeMap<Table, (Sink, u64, PathBuf)> = BTreeMap::new();
    for (t, path) in tables.iter().zip(paths) {
        let f = File::create(&path).map_err(|e| ReportError::io(&path, e))?;
        let w = BufWriter::new(f);
        let sink = match format {
            Format::Csv => {
                Sink::Csv(csv::CsvSink::new(w, t.columns()).map_err(|e| ReportError::io(&path, e))?)
            }
            Format::Parquet => Sink::Parquet(Box::new(parquet::ParquetSink::new(w, *t)?)),
        };
        sinks.insert(*t, (sink, 0, path));
    }
    let entries: Box<dyn Iterator<Item = Result<flashmm_core::event::Entry, _>>> = match session {
        Some(id) => Box::new(session_stream(journal, id)?),
        None => Box::new(journal.read(0)?),
    };
    let mut rows = Rows::default();
    let mut emit = |t: Table, row: Vec<Val>| -> Result<(), ReportError> {
        let Some((sink, n, path)) = sinks.get_mut(&t) else {
            return Ok(());
        };
        *n += 1;
        match sink {
            Sink::Csv(s) => s.row(&row).map_err(|e| ReportError::io(path, e)),
            Sink::Parquet(s) => s.row(row),
        }
    };
    for e in entries {
        rows.on_entry(&e?, &mut emit)?;
    }
    let mut written = Vec::with_capacity(sinks.len());
    for (table, (sink, rows, path)) in sinks {
        match sink {
            Sink::Csv(s) => s.finish().map_err(|e| ReportError::io(&path, e))?,
            Sink::Parquet(s) => s.finish()?,
        }
        written.push(Written { table, path, rows });
    }
    Ok(written)
}
