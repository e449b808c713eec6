//! Per-fill markouts at any set of horizons, by the same rule as `Summary`: a horizon ending at
//! `due` is scored at the mid of the market book after every market entry with ts <= `due`, and
//! a horizon that ends after the session's last entry has no price to score against: it is
//! marked `NoData`, never guessed.

use super::horizon::Horizon;
use super::markout_bps;
use flashmm_core::book::Book;
use flashmm_core::event::{Body, Entry, Input, Side};
use rust_decimal::Decimal;
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// `bps` and `quote` are positive when the mid moved in our favour.
    Scored {
        mid: Decimal,
        bps: Decimal,
        quote: Decimal,
    },
    /// The data ends before the horizon does.
    NoData,
}

impl Mark {
    pub fn bps(&self) -> Option<Decimal> {
        match self {
            Mark::Scored { bps, .. } => Some(*bps),
            Mark::NoData => None,
        }
    }
}

/// One fill and its markout at each horizon (in the tracker's horizon order).
#[derive(Clone, Debug, PartialEq)]
pub struct FillMarks {
    pub seq: u64,
    pub ts_ns: i64,
    pub side: Side,
    pub price: Decimal,
    pub qty: Decimal,
    pub marks: Vec<Mark>,
}

impl FillMarks {
    pub fn due(&self, h: Horizon) -> i64 {
        self.ts_ns.saturating_add(h.ns)
    }
}

pub struct Markouts {
    horizons: Vec<Horizon>,
    /// The mid after the previous market entry: the price that held until the current one.
    mid: Option<Decimal>,
    /// The fills not yet taken, each with how many of its horizons are still open.
    fills: VecDeque<(FillMarks, usize)>,
    /// The number of fills taken from the front of `fills` (`take_settled`).
    taken: usize,
    /// Per horizon, the fills not yet scored, as (index among all fills, due), in due order.
    pending: Vec<VecDeque<(usize, i64)>>,
    last_ts: i64,
}

impl Markouts {
    pub fn new(horizons: &[Horizon]) -> Markouts {
        Markouts {
            horizons: horizons.to_vec(),
            mid: None,
            fills: VecDeque::new(),
            taken: 0,
            pending: horizons.iter().map(|_| VecDeque::new()).collect(),
            last_ts: i64::MIN,
        }
    }

    pub fn horizons(&self) -> &[Horizon] {
        &self.horizons
    }

    fn settle(&mut self, ts: i64) {
        let Some(mid) = self.mid else { return };
        for (h, queue) in self.pending.iter_mut().enumerate() {
            while queue.front().is_some_and(|(_, due)| *due < ts) {
                if let Some((i, _)) = queue.pop_front() {
                    let Some((f, open)) = self.fills.get_mut(i - self.taken) else {
                        continue;
                    };
                    *open -= 1;
                    f.marks[h] = Mark::Scored {
                        mid,
                        bps: markout_bps(f.side, f.price, mid),
                        quote: f.side.sign() * (mid - f.price) * f.qty,
                    };
                }
            }
        }
    }

    /// Feeds one entry of the session stream; `book` has already applied it.
    pub fn on_entry(&mut self, e: &Entry, book: &Book) {
        self.last_ts = self.last_ts.max(e.ts_ns);
        if e.body.is_market() {
            self.settle(e.ts_ns);
            if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
                self.mid = Some((b + a) / Decimal::TWO);
            }
        } else if let Body::Input(Input::Fill(f)) = &e.body {
            let i = self.taken + self.fills.len();
            self.fills.push_back((
                FillMarks {
                    seq: e.seq,
                    ts_ns: e.ts_ns,
                    side: f.side,
                    price: f.price,
                    qty: f.qty,
                    marks: vec![Mark::NoData; self.horizons.len()],
                },
                self.horizons.len(),
            ));
            for (h, queue) in self.pending.iter_mut().enumerate() {
                queue.push_back((i, e.ts_ns.saturating_add(self.horizons[h].ns)));
            }
        }
    }

    /// Takes, in journal order, the fills scored at every horizon so far (stopping at the first
    /// that is not), so a reader that wants only some fills need not hold them all. The fills
    /// taken are not in `finish`'s answer.
    pub fn take_settled(&mut self, mut f: impl FnMut(FillMarks)) {
        while self.fills.front().is_some_and(|(_, open)| *open == 0) {
            if let Some((m, _)) = self.fills.pop_front() {
                self.taken += 1;
                f(m);
            }
        }
    }

    /// Scores what the data reaches; the rest stays `NoData`. The fills not taken, in order.
    pub fn finish(mut self) -> Vec<FillMarks> {
        self.settle(self.last_ts.saturating_add(1));
        self.fills.into_iter().map(|(m, _)| m).collect()
    }
}
