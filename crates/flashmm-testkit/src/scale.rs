//! Large recordings for measuring: the shipped Binance file repeated `n` times.
//!
//! Copy `k` (from 0) is the shipped recording with
//! - every time shifted by `k` x (its span + 1 s, rounded up to a whole millisecond): the local
//!   receive time and the venue's `E`/`T` milliseconds alike, so the copies are contiguous (the
//!   importer refuses jumps over 6 h) and never overlap;
//! - every update id (`U`, `u`, `pu`, `lastUpdateId`, bookTicker `u`) shifted by `k` x the id
//!   span of the recording, and every trade id `t` by `k` x the trade-id span, so ids only grow;
//! - its snapshot line moved to the head of the copy, stamped with the copy's first time. The
//!   diffs the collector buffered before the snapshot then follow it, and Binance's rule
//!   (crates/flashmm-journal/src/binance.rs: stale diffs dropped, the first applied one has
//!   `U <= lastUpdateId + 1 <= u`) holds as it did for the original, so every copy resyncs at
//!   its own snapshot and the file imports with `--strict` and no gaps.
//!
//! Prices and sizes are unchanged, so the core's bounds hold. The lines are edited as text
//! (only the digits of those keys change), so everything else stays byte for byte.

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The shipped recording.
pub fn shipped_recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fixtures/binance-spot-btcusdt-20240808.gz")
}

/// What one copy shifts by, learned from the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spans {
    pub time_ns: i64,
    pub update_id: u64,
    pub trade_id: u64,
}

const UPDATE_KEYS: [&str; 4] = ["\"U\":", "\"u\":", "\"pu\":", "\"lastUpdateId\":"];
const TRADE_KEYS: [&str; 1] = ["\"t\":"];
const MS_KEYS: [&str; 2] = ["\"E\":", "\"T\":"];

/// Calls `f` with the integer after each occurrence of `key`, and its byte range.
fn numbers(line: &str, key: &str, mut f: impl FnMut(u64, std::ops::Range<usize>)) {
    let mut from = 0;
    while let Some(i) = line[from..].find(key) {
        let start = from + i + key.len();
        let len = line[start..]
            .bytes()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if len > 0 {
            if let Ok(v) = line[start..start + len].parse() {
                f(v, start..start + len);
            }
        }
        from = start + len;
    }
}

fn rewrite(line: &str, shifts: &[(&[&str], u64)]) -> String {
    let mut edits: Vec<(std::ops::Range<usize>, u64)> = Vec::new();
    for (keys, by) in shifts {
        for key in keys.iter() {
            numbers(line, key, |v, r| edits.push((r, v + by)));
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(line.len() + 16);
    let mut at = 0;
    for (r, v) in edits {
        out.push_str(&line[at..r.start]);
        out.push_str(&v.to_string());
        at = r.end;
    }
    out.push_str(&line[at..]);
    out
}

fn read_lines(src: &Path) -> std::io::Result<Vec<String>> {
    let f = std::fs::File::open(src)?;
    BufReader::new(MultiGzDecoder::new(f))
        .lines()
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .collect()
}

fn split(line: &str) -> std::io::Result<(i64, &str)> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, line.to_string());
    let (ts, json) = line.split_once(' ').ok_or_else(bad)?;
    Ok((ts.parse().map_err(|_| bad())?, json))
}

/// The spans of a recording's lines.
pub fn spans(lines: &[String]) -> std::io::Result<Spans> {
    let (mut t0, mut t1) = (i64::MAX, i64::MIN);
    let (mut u0, mut u1, mut x0, mut x1) = (u64::MAX, 0, u64::MAX, 0);
    for l in lines {
        let (ts, json) = split(l)?;
        t0 = t0.min(ts);
        t1 = t1.max(ts);
        for key in UPDATE_KEYS {
            numbers(json, key, |v, _| {
                u0 = u0.min(v);
                u1 = u1.max(v);
            });
        }
        numbers(json, TRADE_KEYS[0], |v, _| {
            x0 = x0.min(v);
            x1 = x1.max(v);
        });
    }
    let ms = 1_000_000;
    let time_ns = (t1 - t0 + 1_000_000_000 + ms - 1) / ms * ms;
    Ok(Spans {
        time_ns,
        update_id: u1.saturating_sub(u0) + 1,
        trade_id: x1.saturating_sub(x0) + 1,
    })
}

/// Writes `n` copies of `src` (a `<local_ns> <json>` gzip recording) to `out` as gzip.
/// Returns the number of lines written.
pub fn repeat_recording(src: &Path, n: u64, out: &Path) -> std::io::Result<u64> {
    let lines = read_lines(src)?;
    let sp = spans(&lines)?;
    let first_ts = split(&lines[0])?.0;
    // The snapshot lines go to the head of each copy, in their order; the rest keep theirs.
    let (snaps, rest): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l.contains("\"lastUpdateId\":"));
    let file = std::fs::File::create(out)?;
    let mut w =
        BufWriter::with_capacity(1 << 20, GzEncoder::new(file, flate2::Compression::fast()));
    let mut written = 0;
    for k in 0..n {
        let dt = sp.time_ns * k as i64;
        let shifts: [(&[&str], u64); 3] = [
            (&UPDATE_KEYS, sp.update_id * k),
            (&TRADE_KEYS, sp.trade_id * k),
            (&MS_KEYS, (dt / 1_000_000) as u64),
        ];
        for (i, l) in snaps.iter().chain(rest.iter()).enumerate() {
            let (ts, json) = split(l)?;
            let ts = if i < snaps.len() { first_ts } else { ts } + dt;
            writeln!(w, "{ts} {}", rewrite(json, &shifts))?;
            written += 1;
        }
    }
    w.into_inner()
        .map_err(|e| e.into_error())?
        .finish()?
        .sync_all()?;
    Ok(written)
}

/// `n` copies of the shipped recording, written to `out`.
pub fn repeated_recording(n: u64, out: &Path) -> std::io::Result<u64> {
    repeat_recording(&shipped_recording(), n, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_shifts_only_the_named_numbers() {
        let l = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1000,"s":"BTCUSDT","U":10,"u":12,"b":[["1.0","2"]],"a":[]}}"#;
        let keys: [(&[&str], u64); 3] = [(&UPDATE_KEYS, 100), (&TRADE_KEYS, 7), (&MS_KEYS, 5)];
        assert_eq!(
            rewrite(l, &keys),
            r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1005,"s":"BTCUSDT","U":110,"u":112,"b":[["1.0","2"]],"a":[]}}"#
        );
        let t = r#"{"data":{"e":"trade","E":1,"t":3,"p":"1","T":2,"m":true,"M":true}}"#;
        assert_eq!(
            rewrite(t, &keys),
            r#"{"data":{"e":"trade","E":6,"t":10,"p":"1","T":7,"m":true,"M":true}}"#
        );
    }
}
