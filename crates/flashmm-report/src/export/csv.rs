//! CSV tables (RFC 4180): a header line, then one line per row; empty for null, decimals
//! exactly as journaled, times in RFC 3339 with nanoseconds, strings quoted when they need it
//! (and always when empty, so an empty string differs from a null).

use super::table::{Col, Val};
use chrono::{TimeZone, Utc};
use std::io::Write;

fn field(out: &mut Vec<u8>, s: &str) {
    if s.is_empty() || s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ')
    {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

pub fn timestamp(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

pub struct CsvSink<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> CsvSink<W> {
    pub fn new(mut out: W, cols: &[Col]) -> std::io::Result<CsvSink<W>> {
        let header: Vec<&str> = cols.iter().map(|c| c.name).collect();
        out.write_all(header.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        Ok(CsvSink {
            out,
            line: Vec::with_capacity(512),
        })
    }

    pub fn row(&mut self, row: &[Val]) -> std::io::Result<()> {
        self.line.clear();
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                self.line.push(b',');
            }
            match v {
                Val::Null => {}
                Val::U64(x) => self.line.extend_from_slice(x.to_string().as_bytes()),
                Val::I64(x) => self.line.extend_from_slice(x.to_string().as_bytes()),
                Val::U32(x) => self.line.extend_from_slice(x.to_string().as_bytes()),
                Val::F64(x) => self.line.extend_from_slice(x.to_string().as_bytes()),
                Val::Bool(x) => self
                    .line
                    .extend_from_slice(if *x { b"true" } else { b"false" }),
                Val::Str(x) => field(&mut self.line, x),
                Val::Dec(x) => self.line.extend_from_slice(x.to_string().as_bytes()),
                Val::Ts(x) => self.line.extend_from_slice(timestamp(*x).as_bytes()),
            }
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let mut out = Vec::new();
        for s in ["plain", "", "a,b", "say \"hi\"", "two\nlines"] {
            field(&mut out, s);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"\"|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|"
        );
        assert_eq!(timestamp(1_500_000_001), "1970-01-01T00:00:01.500000001Z");
    }
}
