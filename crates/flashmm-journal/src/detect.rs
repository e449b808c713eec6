//! Which importer a market-data file is for, told from its content, not its name: a collector
//! names its files by date and coin, and both venues' recordings are `<ns> <json>` lines. A
//! Tardis CSV is told by its header row.

use super::binance::{self, ImportError, ImportOptions, ImportStats, MAX_LINE_BYTES};
use super::tardis::{self, Dataset, TardisError};
use super::{hyperliquid, Writer};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Binance,
    Hyperliquid,
    Tardis,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Binance => "binance",
            DataFormat::Hyperliquid => "hyperliquid",
            DataFormat::Tardis => "tardis",
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    channel: Option<IgnoredAny>,
}

/// Tardis if the first line is a Tardis CSV header (`tardis::peek`); Hyperliquid if the first
/// non-empty line's JSON has a `channel` (every Hyperliquid websocket message does, no Binance
/// one does); Binance otherwise, including for a file this cannot read, so that the Binance
/// importer reports what is wrong with it, by line.
pub fn detect_format(path: &Path) -> Result<DataFormat, ImportError> {
    if tardis::peek(path)?.is_some() {
        return Ok(DataFormat::Tardis);
    }
    let file = std::fs::File::open(path).map_err(|e| ImportError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let Ok(mut reader) = hyperliquid::text_reader(file) else {
        return Ok(DataFormat::Binance);
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = Read::by_ref(&mut reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut buf);
        match read {
            Ok(0) | Err(_) => return Ok(DataFormat::Binance),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let json = text.split_once(' ').map_or(text, |(_, j)| j);
        let hl = match serde_json::from_str::<Probe>(json) {
            Ok(p) => p.channel.is_some(),
            // A damaged first line still shows whose it is.
            Err(_) => json.contains("\"channel\":"),
        };
        return Ok(if hl {
            DataFormat::Hyperliquid
        } else {
            DataFormat::Binance
        });
    }
}

/// Imports `path` with the importer its content asks for.
pub fn import(
    writer: &mut Writer,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(DataFormat, u64, ImportStats), ImportError> {
    import_files(writer, &[path.to_path_buf()], opts)
}

/// Imports one recording: a file, or a Tardis book file with its trades file (`recordings`
/// groups them so, book first).
pub fn import_files(
    writer: &mut Writer,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<(DataFormat, u64, ImportStats), ImportError> {
    let Some(first) = paths.first() else {
        return Err(TardisError::Files("no file to import".into()).into());
    };
    let format = detect_format(first)?;
    let (id, stats) = match (format, paths) {
        (DataFormat::Tardis, _) => tardis::import(writer, paths, opts)?,
        (DataFormat::Binance, [p]) => binance::import(writer, p, opts)?,
        (DataFormat::Hyperliquid, [p]) => hyperliquid::import(writer, p, opts)?,
        _ => {
            return Err(TardisError::Files(format!(
                "{} is a {} recording, which is imported alone",
                first.display(),
                format.as_str()
            ))
            .into())
        }
    };
    Ok((format, id, stats))
}

/// A Tardis file's exchange and symbol.
type Market = (String, String);

/// The recordings among `paths`, one per market: each file alone, except that a Tardis trades
/// file goes with the Tardis book file of its exchange and symbol (book first, the order
/// `tardis::digest` and the import use). A trades file with no such book, or with more than
/// one, is an error naming it: trades alone have no book to quote against.
pub fn recordings(paths: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>, ImportError> {
    let mut groups: Vec<(Option<Market>, Vec<PathBuf>)> = Vec::new();
    let mut trades = Vec::new();
    for p in paths {
        match tardis::peek(p)? {
            Some(k) if k.dataset == Some(Dataset::Trades) => trades.push((p, k.market)),
            Some(k) if k.dataset == Some(Dataset::Book) => groups.push((k.market, vec![p.clone()])),
            _ => groups.push((None, vec![p.clone()])),
        }
    }
    for (p, market) in trades {
        let Some(m) = market else {
            return Err(TardisError::Files(format!(
                "{}: a Tardis trades file whose first rows name no market, so no book file can be paired with it",
                p.display()
            ))
            .into());
        };
        let mut books = groups.iter_mut().filter(|(g, _)| g.as_ref() == Some(&m));
        match (books.next(), books.next()) {
            (Some((_, files)), None) if files.len() == 1 => files.push(p.clone()),
            (None, _) => {
                return Err(TardisError::Files(format!(
                    "{} holds Tardis trades of {} on {}, and no --data file is the incremental_book_L2 file of that market; give its book file too (trades alone have no book to quote against)",
                    p.display(),
                    m.1,
                    m.0
                ))
                .into())
            }
            _ => {
                return Err(TardisError::Files(format!(
                    "{} holds Tardis trades of {} on {}, and more than one book or trades file of that market was given; back-test one day of a market at a time",
                    p.display(),
                    m.1,
                    m.0
                ))
                .into())
            }
        }
    }
    Ok(groups.into_iter().map(|(_, g)| g).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BOOK_H: &str = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount";
    const TRADES_H: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount";

    fn file(dir: &Path, name: &str, bytes: &[u8], gzip: bool) -> PathBuf {
        let p = dir.join(name);
        let bytes = if gzip {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(bytes).expect("gzip");
            z.finish().expect("gzip")
        } else {
            bytes.to_vec()
        };
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn book(symbol: &str) -> String {
        format!("{BOOK_H}\nbinance,{symbol},1723161253000000,1723161253000100,true,bid,100,1\n")
    }

    fn trades(exchange: &str, symbol: &str) -> String {
        format!("{TRADES_H}\n{exchange},{symbol},1723161253000000,1723161253000100,7,buy,100,1\n")
    }

    #[test]
    fn a_tardis_header_is_told_gzip_or_plain_with_a_bom_and_json_lines_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let bom = format!("\u{feff}{}", book("BTCUSDT"));
        // Named like neither: the content decides.
        for (name, text, gz) in [
            ("a", book("BTCUSDT"), false),
            ("b", book("BTCUSDT"), true),
            ("c", bom.clone(), false),
            ("d", bom, true),
            (
                "e",
                trades("binance", "BTCUSDT").replace('\n', "\r\n"),
                true,
            ),
            // A Tardis header missing a column is still Tardis's, for its importer to name it.
            ("f", "exchange,symbol,local_timestamp,side\n".into(), false),
        ] {
            let p = file(d, name, text.as_bytes(), gz);
            assert_eq!(
                detect_format(&p).expect("detect"),
                DataFormat::Tardis,
                "{name}"
            );
        }
        let binance = r#"1723075200000000000 {"lastUpdateId":1,"bids":[],"asks":[]}"#;
        let hl = r#"1737849600000000000 {"channel":"l2Book","data":{}}"#;
        for (name, text, want) in [
            ("g", binance, DataFormat::Binance),
            ("h", hl, DataFormat::Hyperliquid),
            // Commas but no Tardis columns.
            ("i", "a,b,c\n1,2,3", DataFormat::Binance),
            ("j", "", DataFormat::Binance),
        ] {
            let p = file(d, name, text.as_bytes(), true);
            assert_eq!(detect_format(&p).expect("detect"), want, "{name}");
        }
        let p = file(d, "k", b"\xff\xfe exchange,local_timestamp\n", false);
        assert_eq!(detect_format(&p).expect("detect"), DataFormat::Binance);
        let k = tardis::peek(&file(d, "l", trades("binance", "btcusdt").as_bytes(), true))
            .expect("peek")
            .expect("tardis");
        assert_eq!(k.dataset, Some(Dataset::Trades));
        assert_eq!(k.market, Some(("binance".into(), "BTCUSDT".into())));
    }

    #[test]
    fn a_trades_file_goes_with_the_book_of_its_market_and_nothing_else_is_paired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let btc = file(d, "btc-book", book("BTCUSDT").as_bytes(), true);
        let eth = file(d, "eth-book", book("ETHUSDT").as_bytes(), false);
        let eth_t = file(
            d,
            "eth-trades",
            trades("binance", "ETHUSDT").as_bytes(),
            false,
        );
        let json = file(d, "hl", br#"1 {"channel":"trades","data":[]}"#, false);
        let got =
            recordings(&[eth_t.clone(), btc.clone(), json.clone(), eth.clone()]).expect("paired");
        assert_eq!(
            got,
            vec![
                vec![btc.clone()],
                vec![json],
                vec![eth.clone(), eth_t.clone()]
            ]
        );
        // Trades of a market with no book given, or of another exchange, are refused by name.
        let other = file(
            d,
            "x-trades",
            trades("deribit", "ETHUSDT").as_bytes(),
            false,
        );
        for paths in [
            vec![btc.clone(), eth_t.clone()],
            vec![eth.clone(), other.clone()],
        ] {
            let e = recordings(&paths).expect_err("no book").to_string();
            let named = paths[1].display().to_string();
            assert!(
                e.contains(&named) && e.contains("incremental_book_L2"),
                "{e}"
            );
        }
        // Two trades files for one book: which day is which cannot be told.
        let again = file(
            d,
            "eth-trades-2",
            trades("binance", "ETHUSDT").as_bytes(),
            true,
        );
        let e = recordings(&[eth, eth_t, again])
            .expect_err("two")
            .to_string();
        assert!(e.contains("more than one"), "{e}");
    }
}
