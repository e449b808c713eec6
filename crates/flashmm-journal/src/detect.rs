//! Which importer a market-data file is for, told from its content, not its name: a collector
//! names its files by date and coin, and both venues' recordings are `<ns> <json>` lines.

use super::binance::{self, ImportError, ImportOptions, ImportStats, MAX_LINE_BYTES};
use super::{hyperliquid, Writer};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::io::{BufRead, Read};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Binance,
    Hyperliquid,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Binance => "binance",
            DataFormat::Hyperliquid => "hyperliquid",
        }
    }
}

#[derive(Deserialize)]
struct Probe {
    channel: Option<IgnoredAny>,
}

/// Hyperliquid if the first non-empty line's JSON has a `channel` (every Hyperliquid websocket
/// message does, no Binance one does); Binance otherwise, including for a file this cannot read,
/// so that the Binance importer reports what is wrong with it, by line.
pub fn detect_format(path: &Path) -> Result<DataFormat, ImportError> {
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
    let format = detect_format(path)?;
    let (id, stats) = match format {
        DataFormat::Binance => binance::import(writer, path, opts)?,
        DataFormat::Hyperliquid => hyperliquid::import(writer, path, opts)?,
    };
    Ok((format, id, stats))
}
