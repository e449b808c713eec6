//! The importer's hot path: depth diffs, trades and bookTicker lines in the exact shape the
//! collector writes (no whitespace, no escapes, plain decimal strings), read in one scan over
//! the line's bytes, numbers straight into `Decimal` from borrowed text.
//!
//! It is an accelerator, not a second grammar: it answers only when the line is in that shape
//! and passes every check, and then with the value the serde path would give. Anything else
//! (snapshots, other streams, `null`s, escapes, odd numbers, any error) returns `None`, and the
//! caller runs the serde path, so what is accepted and every error message stay that path's.
//! `tests` compares the two on the shipped recording and on mutations of it.

use super::{symbol, venue_ms, Parsed};
use flashmm_core::event::{bounds, Bbo, BookDelta, Level, Side, Symbol, Trade};
use rust_decimal::Decimal;

/// Digits a decimal may have here: any 28 digits fit `Decimal`'s 96-bit mantissa exactly, as
/// `Decimal::from_str` reads them; longer ones it rounds, which is left to it.
const MAX_DEC_DIGITS: usize = 28;

#[derive(Default)]
pub(super) struct Fast {
    /// The last symbol text seen and what it became: a recording names one symbol.
    sym_text: Vec<u8>,
    sym: Option<Symbol>,
}

impl Fast {
    pub(super) fn parse(&mut self, line: &str) -> Option<(i64, Parsed)> {
        let b = line.as_bytes();
        let sp = b.iter().position(|&c| c == b' ')?;
        let ts = i64::try_from(digits(&b[..sp])?).ok()?;
        bounds::ts("local timestamp", ts).ok()?;
        let mut c = Cur { b, i: sp + 1 };
        c.eat(b"{\"stream\":")?;
        let stream = c.string()?;
        c.eat(b",\"data\":")?;
        let kind = stream.split_once('@').map(|(_, k)| k).unwrap_or("");
        let parsed = if kind.starts_with("depth") {
            self.depth(&mut c)?
        } else if kind == "trade" {
            self.trade(&mut c)?
        } else if kind == "bookTicker" {
            self.ticker(&mut c)?
        } else {
            return None;
        };
        c.eat(b"}")?;
        (c.i == b.len()).then_some((ts, parsed))
    }

    fn symbol(&mut self, s: &str) -> Option<Symbol> {
        if let Some(sym) = self.sym.filter(|_| self.sym_text == s.as_bytes()) {
            return Some(sym);
        }
        let sym = symbol(s).ok()?;
        self.sym_text.clear();
        self.sym_text.extend_from_slice(s.as_bytes());
        self.sym = Some(sym);
        Some(sym)
    }

    fn depth(&mut self, c: &mut Cur) -> Option<Parsed> {
        let (mut event_ms, mut sym, mut first, mut last, mut prev) = (None, None, None, None, None);
        let (mut bids, mut asks) = (None, None);
        c.object(|c, key| match key {
            b"E" => set(&mut event_ms, c.int()?),
            b"s" => set(&mut sym, c.string()?),
            b"U" => set(&mut first, c.uint()?),
            b"u" => set(&mut last, c.uint()?),
            b"pu" => set(&mut prev, c.uint()?),
            b"b" => set(&mut bids, c.levels()?),
            b"a" => set(&mut asks, c.levels()?),
            _ => c.skip_scalar(),
        })?;
        let (first, last) = (first?, last?);
        if first > last {
            return None;
        }
        bounds::update_id("depth update u", last).ok()?;
        let venue_ts = match event_ms {
            Some(m) => Some(venue_ms("event time E", m).ok()?),
            None => None,
        };
        Some(Parsed::Depth {
            venue_ts,
            delta: BookDelta {
                symbol: self.symbol(sym?)?,
                first_update_id: first,
                last_update_id: last,
                prev_update_id: prev,
                bids: bids?,
                asks: asks?,
            },
        })
    }

    fn trade(&mut self, c: &mut Cur) -> Option<Parsed> {
        let (mut sym, mut id, mut price, mut qty, mut trade_ms, mut maker) =
            (None, None, None, None, None, None);
        c.object(|c, key| match key {
            b"s" => set(&mut sym, c.string()?),
            b"t" => set(&mut id, c.uint()?),
            b"p" => set(&mut price, c.decimal()?),
            b"q" => set(&mut qty, c.decimal()?),
            b"T" => set(&mut trade_ms, c.int()?),
            b"m" => set(&mut maker, c.bool()?),
            _ => c.skip_scalar(),
        })?;
        let trade = Trade {
            symbol: self.symbol(sym?)?,
            trade_id: id?,
            price: price?,
            qty: qty?,
            // The maker was the buyer, so the seller crossed the spread.
            aggressor: if maker? { Side::Sell } else { Side::Buy },
        };
        bounds::trade(&trade).ok()?;
        Some(Parsed::Trade {
            venue_ts: venue_ms("trade time T", trade_ms?).ok()?,
            trade,
        })
    }

    fn ticker(&mut self, c: &mut Cur) -> Option<Parsed> {
        let (mut update_id, mut sym, mut event_ms) = (None, None, None);
        let (mut bid, mut bid_qty, mut ask, mut ask_qty) = (None, None, None, None);
        c.object(|c, key| match key {
            b"u" => set(&mut update_id, c.uint()?),
            b"s" => set(&mut sym, c.string()?),
            b"E" => set(&mut event_ms, c.int()?),
            b"b" => set(&mut bid, c.decimal()?),
            b"B" => set(&mut bid_qty, c.decimal()?),
            b"a" => set(&mut ask, c.decimal()?),
            b"A" => set(&mut ask_qty, c.decimal()?),
            _ => c.skip_scalar(),
        })?;
        let bbo = Bbo {
            symbol: self.symbol(sym?)?,
            update_id,
            bid: bid?,
            bid_qty: bid_qty?,
            ask: ask?,
            ask_qty: ask_qty?,
        };
        bounds::bbo(&bbo).ok()?;
        let venue_ts = match event_ms {
            Some(m) => Some(venue_ms("event time E", m).ok()?),
            None => None,
        };
        Some(Parsed::Bbo { venue_ts, bbo })
    }
}

/// Sets a field seen for the first time; serde refuses a duplicate, so the fast path gives up.
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// A JSON integer's digits: no sign, no leading zero (JSON has none), no overflow.
fn digits(d: &[u8]) -> Option<u64> {
    if d.is_empty() || (d[0] == b'0' && d.len() > 1) {
        return None;
    }
    d.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn eat(&mut self, lit: &[u8]) -> Option<()> {
        if self.b.get(self.i..)?.starts_with(lit) {
            self.i += lit.len();
            Some(())
        } else {
            None
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string's text, if it needs no unescaping and holds nothing JSON forbids raw.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b"\"")?;
        let start = self.i;
        let len = self.b.get(start..)?.iter().position(|&c| c == b'"')?;
        let s = &self.b[start..start + len];
        if s.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        self.i = start + len + 1;
        // The line is a &str and a '"' is never inside a UTF-8 sequence, so this always holds.
        std::str::from_utf8(s).ok()
    }

    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let len = self
            .b
            .get(start..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        self.i = start + len;
        digits(&self.b[start..start + len])
    }

    /// A non-negative i64; serde also reads negatives, which the fast path leaves to it.
    fn int(&mut self) -> Option<i64> {
        i64::try_from(self.uint()?).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        if self.eat(b"true").is_some() {
            Some(true)
        } else {
            self.eat(b"false").map(|_| false)
        }
    }

    /// A quoted `digits[.digits]`, kept at its written scale as `Decimal::from_str` keeps it.
    fn decimal(&mut self) -> Option<Decimal> {
        self.eat(b"\"")?;
        let (mut m, mut n, mut scale, mut dot) = (0u128, 0usize, 0u32, false);
        loop {
            match self.peek()? {
                c @ b'0'..=b'9' => {
                    m = m * 10 + u128::from(c - b'0');
                    n += 1;
                    scale += u32::from(dot);
                    if n > MAX_DEC_DIGITS {
                        return None;
                    }
                }
                b'.' if !dot && n > 0 => dot = true,
                b'"' if n > 0 && (!dot || scale > 0) => break,
                _ => return None,
            }
            self.i += 1;
        }
        self.i += 1;
        Decimal::try_from_i128_with_scale(i128::try_from(m).ok()?, scale).ok()
    }

    /// `[["price","qty"],...]`, each level within bounds.
    fn levels(&mut self) -> Option<Vec<Level>> {
        self.eat(b"[")?;
        let mut out = Vec::new();
        if self.eat(b"]").is_some() {
            return Some(out);
        }
        loop {
            self.eat(b"[")?;
            let price = self.decimal()?;
            self.eat(b",")?;
            let qty = self.decimal()?;
            self.eat(b"]")?;
            let l = Level { price, qty };
            bounds::level(&l).ok()?;
            out.push(l);
            if self.eat(b",").is_none() {
                self.eat(b"]")?;
                return Some(out);
            }
        }
    }

    /// A field serde ignores: only a plain string, integer or boolean is passed over here.
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b't' | b'f' => self.bool().map(|_| ()),
            _ => self.uint().map(|_| ()),
        }
    }

    /// `{"key":value,...}`, at least one field, each value read by `field`.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        self.eat(b"{")?;
        loop {
            let key = self.string()?;
            self.eat(b":")?;
            field(self, key.as_bytes())?;
            if self.eat(b",").is_none() {
                return self.eat(b"}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_line, Parsed};
    use super::Fast;
    use crate::codec::encode_entry;
    use flashmm_core::event::{Body, Entry, Input};
    use std::io::BufRead;

    /// The entry bytes a parsed line becomes, which is what must not change.
    fn bytes(ts: i64, p: Parsed) -> Vec<u8> {
        let (venue_ts_ns, input) = match p {
            Parsed::Depth { venue_ts, delta } => (venue_ts, Input::BookDelta(delta)),
            Parsed::Trade { venue_ts, trade } => (Some(venue_ts), Input::Trade(trade)),
            Parsed::Bbo { venue_ts, bbo } => (venue_ts, Input::Bbo(bbo)),
            Parsed::Snapshot { .. } | Parsed::Funding { .. } | Parsed::OtherStream => {
                return b"other".to_vec()
            }
        };
        let e = Entry {
            seq: 0,
            ts_ns: ts,
            venue_ts_ns,
            session: 1,
            cause: None,
            body: Body::Input(input),
        };
        let mut out = Vec::new();
        encode_entry(&e, &mut out).expect("encodes");
        out
    }

    fn shipped() -> Vec<String> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/binance-spot-btcusdt-20240808.gz"
        );
        let f = std::fs::File::open(path).expect("the shipped recording");
        std::io::BufReader::new(flate2::read::MultiGzDecoder::new(f))
            .lines()
            .map(|l| l.expect("reads"))
            .collect()
    }

    /// Whenever the fast path answers, the serde path accepts the line with the same entry.
    fn agrees(fast: &mut Fast, line: &str) -> bool {
        let Some((ts, p)) = fast.parse(line) else {
            return false;
        };
        match parse_line(line) {
            Ok((ts0, p0)) => assert_eq!(
                bytes(ts0, p0),
                bytes(ts, p),
                "the paths disagree on {line:?}"
            ),
            Err(e) => panic!("the fast path accepted {line:?}, which serde refuses: {e}"),
        }
        true
    }

    #[test]
    fn same_entries_as_serde_on_the_shipped_recording() {
        let mut fast = Fast::default();
        let lines = shipped();
        let taken = lines.iter().filter(|l| agrees(&mut fast, l)).count();
        // All but the snapshot take the fast path, or it would not be the hot path.
        assert_eq!(taken, lines.len() - 1, "{taken} of {} lines", lines.len());
    }

    #[test]
    fn levels_at_the_bounds_are_judged_as_bounds_judges_them() {
        let mut fast = Fast::default();
        let values = [
            "999999999.99999999",
            "1000000000",
            "1000000000.000000000000",
            "1000000000.01",
            "0.000000000001",
            "1.0000000000000",
            "0",
            "0.00000000",
            "999999999999.999999",
            "1000000000000.000",
            "1000000000000.001",
        ];
        let (mut ok, mut refused) = (0, 0);
        for v in values {
            for level in [
                format!(r#"["{v}","1.5"]"#),
                format!(r#"["61837.63","{v}"]"#),
            ] {
                let line = format!(
                    r#"1723161253937085768 {{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":5,"u":9,"b":[{level}],"a":[]}}}}"#
                );
                let serde_ok = parse_line(&line).is_ok();
                // These lines are all in the fast path's shape: it must take exactly the good ones.
                assert_eq!(agrees(&mut fast, &line), serde_ok, "{line}");
                if serde_ok {
                    ok += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(ok >= 8 && refused >= 6, "{ok} taken, {refused} refused");
    }

    #[test]
    fn mutated_lines_are_accepted_only_as_serde_accepts_them() {
        let mut fast = Fast::default();
        let lines = shipped();
        let mut picked = Vec::new();
        for kind in ["@depth", "@trade", "@bookTicker"] {
            picked.extend(lines.iter().filter(|l| l.contains(kind)).take(8));
        }
        let subst: &[u8] = b"09-.\" \\eEn},:[x\x01+_";
        let (mut tried, mut taken) = (0u64, 0u64);
        for line in picked {
            let b = line.as_bytes();
            for i in 0..b.len() {
                let mut variants = vec![[&b[..i], &b[i + 1..]].concat()];
                for &c in subst {
                    variants.push([&b[..i], &[c], &b[i + 1..]].concat());
                    variants.push([&b[..i], &[c], &b[i..]].concat());
                }
                for v in variants {
                    if let Ok(s) = std::str::from_utf8(&v) {
                        tried += 1;
                        taken += u64::from(agrees(&mut fast, s.trim_end()));
                    }
                }
            }
        }
        // Many mutations (digits changed in numbers) are still good lines.
        assert!(taken > tried / 20, "{taken} of {tried} mutations taken");
    }
}
