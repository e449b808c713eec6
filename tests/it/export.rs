//! CSV and Parquet export: every table reads back with the row counts docs/export.md states,
//! with the documented types; the same journal gives the same bytes; JSONL still round-trips
//! byte for byte; the docs match the code's schemas.

use crate::common;

use flashmm_core::book::Book;
use flashmm_core::event::*;
use flashmm_journal::{jsonl, Journal};
use flashmm_report::export::{self, Format, Table};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const SESSION: u64 = 2;

/// Rows each table must have, counted here from the session stream by the rules in the docs.
fn expected_rows(stream: &[Entry]) -> BTreeMap<&'static str, u64> {
    let mut n: BTreeMap<&'static str, u64> = Table::ALL.iter().map(|t| (t.name(), 0)).collect();
    let mut book = Book::new();
    let mut top = (None, None);
    for e in stream {
        let k = match &e.body {
            Body::Input(Input::Fill(_)) => Some("fills"),
            Body::Output(Output::PlaceOrder(_)) => Some("orders"),
            Body::Output(Output::CancelOrder(_)) => Some("cancels"),
            Body::Input(Input::OrderAck(_) | Input::OrderReject(_) | Input::OrderCanceled(_)) => {
                Some("order_reports")
            }
            Body::Output(Output::QuoteDecision(q)) => {
                *n.get_mut("quote_levels").unwrap() += (q.bids.len() + q.asks.len()) as u64;
                Some("quotes")
            }
            Body::Input(Input::PredictionResponse(_)) => Some("predictions"),
            Body::Output(Output::PredictionRequest(_)) => Some("prediction_requests"),
            Body::Output(Output::RiskAction(_)) => Some("risk"),
            Body::Output(Output::PredictorStatus(_)) => Some("predictor_status"),
            Body::Input(Input::Trade(_)) => Some("trades"),
            Body::Input(
                Input::BookSnapshot(_) | Input::BookPolled(_) | Input::BookDelta(_) | Input::Bbo(_),
            ) => {
                match &e.body {
                    Body::Input(Input::BookSnapshot(s) | Input::BookPolled(s)) => {
                        book.apply_snapshot(s)
                    }
                    Body::Input(Input::BookDelta(d)) => {
                        book.apply_delta(d);
                    }
                    Body::Input(Input::Bbo(b)) => {
                        book.apply_bbo(b);
                    }
                    _ => {}
                }
                let now = (book.best_bid(), book.best_ask());
                (now != top).then(|| {
                    top = now;
                    "bbo"
                })
            }
            _ => None,
        };
        if let Some(k) = k {
            *n.get_mut(k).unwrap() += 1;
        }
    }
    n
}

/// RFC 4180 records: quoted fields may hold commas, quotes and newlines.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => rec.push(std::mem::take(&mut field)),
            (false, '\n') => {
                rec.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut rec));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        rec.is_empty() && field.is_empty(),
        "the file ends with a newline"
    );
    out
}

fn export(j: &Journal, session: Option<u64>, format: Format, out: &Path) -> Vec<export::Written> {
    export::export(j, session, &Table::ALL, format, out).unwrap()
}

#[test]
fn parquet_tables_read_back_with_the_documented_row_counts_and_types() {
    let (d, j) = common::recorded();
    let stream = common::stream(&j, SESSION);
    let want = expected_rows(&stream);
    assert!(want["fills"] > 50 && want["trades"] > 1000 && want["risk"] > 0);
    let out = d.path().join("pq");
    let written = export(&j, Some(SESSION), Format::Parquet, &out);
    assert_eq!(written.len(), Table::ALL.len());
    for w in &written {
        assert_eq!(w.path, out.join(format!("{}.parquet", w.table.name())));
        let f = std::fs::File::open(&w.path).unwrap();
        let reader = SerializedFileReader::new(f).unwrap();
        let rows = reader.metadata().file_metadata().num_rows() as u64;
        assert_eq!(rows, want[w.table.name()], "{}", w.table.name());
        assert_eq!(w.rows, rows);
        // The arrow reader agrees, with the documented schema.
        let f = std::fs::File::open(&w.path).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let cols: Vec<&str> = w.table.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, cols);
        let total: usize = b.build().unwrap().map(|r| r.unwrap().num_rows()).sum();
        assert_eq!(total as u64, rows);
    }
    // Values: the first fill's price is the journal's, as decimal128(38, 18); its time is UTC ns.
    use arrow::array::{Array, Decimal128Array, TimestampNanosecondArray, UInt64Array};
    use arrow::datatypes::{DataType, TimeUnit};
    let (fe, ff) = stream
        .iter()
        .find_map(|e| match &e.body {
            Body::Input(Input::Fill(f)) => Some((e, f)),
            _ => None,
        })
        .unwrap();
    let f = std::fs::File::open(out.join("fills.parquet")).unwrap();
    let batch = ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let col = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
    assert_eq!(
        col("price").data_type(),
        &DataType::Decimal128(export::PRECISION, export::SCALE)
    );
    assert_eq!(
        col("ts").data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    let price = col("price");
    let price = price.as_any().downcast_ref::<Decimal128Array>().unwrap();
    assert_eq!(price.value(0), export::to_i128(ff.price).unwrap());
    let back: rust_decimal::Decimal = price.value_as_string(0).parse().unwrap();
    assert_eq!(back, ff.price);
    let seq = col("seq");
    assert_eq!(
        seq.as_any().downcast_ref::<UInt64Array>().unwrap().value(0),
        fe.seq
    );
    let ts = col("ts");
    assert_eq!(
        ts.as_any()
            .downcast_ref::<TimestampNanosecondArray>()
            .unwrap()
            .value(0),
        fe.ts_ns
    );
    assert!(col("cause").is_valid(0));
}

#[test]
fn csv_tables_have_the_same_rows_and_the_same_bytes_every_time() {
    let (d, j) = common::recorded();
    let want = expected_rows(&common::stream(&j, SESSION));
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    export(&j, Some(SESSION), Format::Csv, &a);
    export(&j, Some(SESSION), Format::Csv, &b);
    for t in Table::ALL {
        let file = format!("{}.csv", t.name());
        let text = std::fs::read_to_string(a.join(&file)).unwrap();
        assert_eq!(
            text,
            std::fs::read_to_string(b.join(&file)).unwrap(),
            "{file}"
        );
        let recs = csv_records(&text);
        let header: Vec<&str> = t.columns().iter().map(|c| c.name).collect();
        assert_eq!(recs[0], header, "{file}");
        assert_eq!(recs.len() as u64 - 1, want[t.name()], "{file}");
        assert!(recs.iter().all(|r| r.len() == header.len()), "{file}");
    }
    // Prompts hold newlines and quotes: quoted, and read back whole.
    let text = std::fs::read_to_string(a.join("prediction_requests.csv")).unwrap();
    let recs = csv_records(&text);
    let user = recs[0].iter().position(|c| c == "prompt_user").unwrap();
    assert!(recs[1][user].contains("best bid:") && recs[1][user].contains('\n'));
    // Parquet too gives the same bytes twice.
    let (p, q) = (d.path().join("p"), d.path().join("q"));
    export(&j, Some(SESSION), Format::Parquet, &p);
    export(&j, Some(SESSION), Format::Parquet, &q);
    for t in Table::ALL {
        let file = format!("{}.parquet", t.name());
        assert!(
            std::fs::read(p.join(&file)).unwrap() == std::fs::read(q.join(&file)).unwrap(),
            "{file}"
        );
    }
}

#[test]
fn every_kind_of_entry_fits_its_table() {
    // A live session holding one of every body (the schema test's awkward values).
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let start = SessionStart {
        mode: Mode::Live,
        version: "t".into(),
        config: String::new(),
        label: "every body".into(),
        parent: None,
        source: None,
    };
    let id = w.begin(1, start).unwrap();
    let mut n = 0;
    for (i, body) in common::every_body().into_iter().enumerate() {
        if matches!(body, Body::SessionStart(_) | Body::SessionEnd(_)) {
            continue;
        }
        let mut e = Entry {
            seq: 0,
            ts_ns: 1_723_161_253_937_085_768 + i as i64,
            venue_ts_ns: Some(7),
            session: id,
            cause: Some(i as u64),
            body,
        };
        w.append(&mut e).unwrap();
        n += 1;
    }
    w.end(
        id,
        2_000_000_000_000_000_000,
        SessionStatus::Completed,
        String::new(),
    )
    .unwrap();
    w.close().unwrap();
    assert!(n > 15);
    let stream = common::stream(&j, id);
    let want = expected_rows(&stream);
    for format in [Format::Csv, Format::Parquet] {
        let out = dir.path().join(format.ext());
        let written = export(&j, None, format, &out);
        for w in written {
            assert_eq!(
                w.rows,
                want[w.table.name()],
                "{format:?} {}",
                w.table.name()
            );
            assert!(w.rows > 0 || w.table == Table::Bbo, "{}", w.table.name());
        }
    }
    // Decimals that need more than 18 places are rounded half to even; too large is an error.
    assert_eq!(
        export::to_i128(rust_decimal_macros::dec!(1e-8)),
        Some(10_000_000_000)
    );
    let huge = rust_decimal::Decimal::from_i128_with_scale(10i128.pow(21), 0);
    assert_eq!(export::to_i128(huge), None);
}

fn flashmm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_writes_a_directory_or_one_file_and_refuses_what_it_cannot_do() {
    let (d, j) = common::recorded();
    drop(j);
    let dir = d.path().to_str().unwrap();
    let out = d.path().with_extension("out");
    let o = flashmm(&[
        "--journal",
        dir,
        "journal",
        "export",
        "--format",
        "csv",
        "--session",
        "2",
        "--kinds",
        "fills,risk",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["fills.csv", "risk.csv"]);
    let one = d.path().with_extension("fills.parquet");
    let o = flashmm(&[
        "--journal",
        dir,
        "journal",
        "export",
        "--format",
        "parquet",
        "--session",
        "2",
        "--kinds",
        "fills",
        one.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = SerializedFileReader::new(std::fs::File::open(&one).unwrap()).unwrap();
    assert_eq!(r.metadata().file_metadata().num_rows(), 63);
    for (args, needle) in [
        (
            vec!["--format", "csv", "--kinds", "fills,quotes", "x.csv"],
            "one file",
        ),
        (
            vec!["--format", "csv", "--kinds", "fils", "x"],
            "fills, orders",
        ),
        (
            vec!["--format", "parquet", "--kinds", "fills", "x.csv"],
            "--format is parquet",
        ),
        (vec!["--format", "csv"], "needs OUT"),
        (
            vec!["--format", "jsonl", "--kinds", "fills"],
            "--kinds applies",
        ),
    ] {
        let mut a = vec!["--journal", dir, "journal", "export"];
        a.extend(args.iter());
        let o = flashmm(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn jsonl_still_round_trips_byte_for_byte_and_the_tables_survive_it() {
    let (d, j) = common::recorded();
    let mut first = Vec::new();
    jsonl::export(&j, None, &mut first).unwrap();
    let before = d.path().join("before");
    export(&j, Some(SESSION), Format::Csv, &before);
    drop(j);
    // The CLI's JSONL is the library's, byte for byte.
    let file = d.path().with_extension("jsonl");
    let o = flashmm(&[
        "--journal",
        d.path().to_str().unwrap(),
        "journal",
        "export",
        "--format",
        "jsonl",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(std::fs::read(&file).unwrap() == first);
    let d2 = tempfile::tempdir().unwrap();
    let j2 = Journal::open(d2.path()).unwrap();
    let mut w = j2.writer().unwrap();
    jsonl::import(&mut w, || Ok(first.as_slice()), &Default::default()).unwrap();
    w.close().unwrap();
    let mut second = Vec::new();
    jsonl::export(&j2, None, &mut second).unwrap();
    assert!(
        first == second,
        "JSONL export -> import -> export changed bytes"
    );
    let after = d2.path().join("after");
    export(&j2, Some(SESSION), Format::Csv, &after);
    for t in Table::ALL {
        let f = format!("{}.csv", t.name());
        assert!(
            std::fs::read(before.join(&f)).unwrap() == std::fs::read(after.join(&f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn docs_export_md_lists_every_table_as_the_code_defines_it() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/export.md"))
        .unwrap();
    let schema = export::schema_markdown();
    assert!(
        doc.contains(&schema),
        "docs/export.md is out of date; paste this between its schema markers:\n{schema}"
    );
}
