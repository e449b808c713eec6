//! L2 order book for one market, kept by Binance's local-book rule.

use crate::event::{Bbo, Body, BookDelta, BookSnapshot, Entry, Input, Level, Side};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

const HALF: Decimal = Decimal::from_parts(5, 0, 0, false, 1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookState {
    /// No snapshot yet.
    Empty,
    Synced,
    /// A sequence gap was seen: the levels are wrong until the next snapshot.
    Gap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Older than what the book already holds; ignored.
    Stale,
    /// The book has no snapshot, or is waiting for one after a gap; ignored.
    Unsynced,
    /// Continuity broke; the book is now in `BookState::Gap`.
    Gap {
        expected: u64,
        got: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Overlay {
    update_id: u64,
    bid: Decimal,
    bid_qty: Decimal,
    ask: Decimal,
    ask_qty: Decimal,
}

/// Levels are keyed by the price as an integer at 18 decimals: comparing i128s is several times
/// cheaper than comparing Decimals, and the book is the hottest structure in every mode. The
/// Decimal price is kept beside it, so what comes out is exactly what went in. Prices with more
/// than 18 decimals (none seen on any venue) would share a key with their truncation.
type Levels = BTreeMap<i128, Level>;

const KEY_SCALE: u32 = 18;

const POW10: [i128; 29] = {
    let mut t = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn key(price: Decimal) -> i128 {
    let (m, s) = (price.mantissa(), price.scale());
    if s <= KEY_SCALE {
        m.saturating_mul(POW10[(KEY_SCALE - s) as usize])
    } else {
        m / POW10[(s - KEY_SCALE) as usize]
    }
}

#[derive(Clone, Debug)]
pub struct Book {
    bids: Levels,
    asks: Levels,
    state: BookState,
    last_update_id: u64,
    /// True until the first delta after a snapshot: that one may straddle the snapshot id.
    awaiting_first_delta: bool,
    /// The newest best bid/offer, re-imposed after a depth diff that is older than it.
    overlay: Option<Overlay>,
    /// Mid, recomputed only when the top of the book changes.
    mid: Option<Decimal>,
    top: (Option<i128>, Option<i128>),
}

impl Default for Book {
    fn default() -> Self {
        Book::new()
    }
}

impl Book {
    /// Applies a market input (snapshot, delta, top of book); other inputs leave it alone.
    pub fn apply_market(&mut self, input: &Input) {
        match input {
            Input::BookSnapshot(s) | Input::BookPolled(s) => self.apply_snapshot(s),
            Input::BookDelta(d) => {
                self.apply_delta(d);
            }
            Input::Bbo(b) => {
                self.apply_bbo(b);
            }
            _ => {}
        }
    }

    /// Applies a market entry; entries that are not market inputs leave the book alone.
    pub fn apply_entry(&mut self, e: &Entry) {
        if let Body::Input(i) = &e.body {
            self.apply_market(i);
        }
    }

    pub fn new() -> Book {
        Book {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            state: BookState::Empty,
            last_update_id: 0,
            awaiting_first_delta: false,
            overlay: None,
            mid: None,
            top: (None, None),
        }
    }

    fn refresh_mid(&mut self) {
        let top = (
            self.bids.last_key_value().map(|(k, _)| *k),
            self.asks.first_key_value().map(|(k, _)| *k),
        );
        if top == self.top {
            return;
        }
        self.top = top;
        self.mid = match (self.best_bid(), self.best_ask()) {
            // Multiplying by one half is exact and much cheaper than dividing by two.
            (Some((b, _)), Some((a, _))) => Some((b + a) * HALF),
            _ => None,
        };
    }

    pub fn state(&self) -> BookState {
        self.state
    }

    pub fn is_valid(&self) -> bool {
        self.state == BookState::Synced
    }

    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    pub fn apply_snapshot(&mut self, s: &BookSnapshot) {
        self.bids.clear();
        self.asks.clear();
        set_levels(&mut self.bids, &s.bids);
        set_levels(&mut self.asks, &s.asks);
        self.last_update_id = s.update_id;
        self.state = BookState::Synced;
        self.awaiting_first_delta = true;
        self.overlay = None;
        self.refresh_mid();
    }

    pub fn apply_delta(&mut self, d: &BookDelta) -> Applied {
        if self.state != BookState::Synced {
            return Applied::Unsynced;
        }
        let last = self.last_update_id;
        if d.last_update_id <= last {
            return Applied::Stale;
        }
        let continuous = if self.awaiting_first_delta {
            match d.prev_update_id {
                // Futures: the first diff names the snapshot as its pu, or straddles it; its
                // ids need not be contiguous with the snapshot's (issue 12, defect 2).
                Some(pu) => pu == last || d.first_update_id <= last,
                // Spot: the first diff has U <= lastUpdateId + 1 <= u.
                None => d.first_update_id <= last + 1,
            }
        } else {
            match d.prev_update_id {
                Some(pu) => pu == last,
                None => d.first_update_id == last + 1,
            }
        };
        if !continuous {
            self.state = BookState::Gap;
            return Applied::Gap {
                expected: last + 1,
                got: d.first_update_id,
            };
        }
        set_levels(&mut self.bids, &d.bids);
        set_levels(&mut self.asks, &d.asks);
        self.last_update_id = d.last_update_id;
        self.awaiting_first_delta = false;
        if let Some(o) = self.overlay {
            if o.update_id > d.last_update_id {
                self.impose(&o);
            } else {
                self.overlay = None;
            }
        }
        self.refresh_mid();
        Applied::Applied
    }

    /// Applies a best bid/offer that is newer than the depth stream.
    pub fn apply_bbo(&mut self, b: &Bbo) -> Applied {
        if self.state != BookState::Synced {
            return Applied::Unsynced;
        }
        if b.bid >= b.ask || b.bid_qty < Decimal::ZERO || b.ask_qty < Decimal::ZERO {
            return Applied::Stale;
        }
        let o = Overlay {
            update_id: b.update_id.unwrap_or(0),
            bid: b.bid,
            bid_qty: b.bid_qty,
            ask: b.ask,
            ask_qty: b.ask_qty,
        };
        match b.update_id {
            Some(u) if u <= self.last_update_id => return Applied::Stale,
            Some(u) if self.overlay.is_some_and(|prev| prev.update_id >= u) => {
                return Applied::Stale
            }
            Some(_) => self.overlay = Some(o),
            None => self.overlay = None,
        }
        self.impose(&o);
        self.refresh_mid();
        Applied::Applied
    }

    fn impose(&mut self, o: &Overlay) {
        let (bid, ask) = (key(o.bid), key(o.ask));
        while let Some((&p, _)) = self.bids.last_key_value() {
            if p > bid {
                self.bids.pop_last();
            } else {
                break;
            }
        }
        while let Some((&p, _)) = self.asks.first_key_value() {
            if p < ask {
                self.asks.pop_first();
            } else {
                break;
            }
        }
        set_level(&mut self.bids, o.bid, o.bid_qty);
        set_level(&mut self.asks, o.ask, o.ask_qty);
    }

    /// Marks the book untrustworthy until the next snapshot (a feed gap or disconnect).
    pub fn invalidate(&mut self) {
        if self.state == BookState::Synced {
            self.state = BookState::Gap;
        }
    }

    pub fn best_bid(&self) -> Option<(Decimal, Decimal)> {
        self.bids.last_key_value().map(|(_, l)| (l.price, l.qty))
    }

    pub fn best_ask(&self) -> Option<(Decimal, Decimal)> {
        self.asks.first_key_value().map(|(_, l)| (l.price, l.qty))
    }

    pub fn best(&self, side: Side) -> Option<(Decimal, Decimal)> {
        match side {
            Side::Buy => self.best_bid(),
            Side::Sell => self.best_ask(),
        }
    }

    pub fn mid(&self) -> Option<Decimal> {
        self.mid
    }

    pub fn qty_at(&self, side: Side, price: Decimal) -> Decimal {
        let m = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        m.get(&key(price)).map_or(Decimal::ZERO, |l| l.qty)
    }

    /// Levels from the best outward.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.values().rev().copied()),
            Side::Sell => Box::new(self.asks.values().copied()),
        }
    }

    pub fn depth(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }
}

fn set_levels(m: &mut Levels, levels: &[Level]) {
    for l in levels {
        set_level(m, l.price, l.qty);
    }
}

fn set_level(m: &mut Levels, price: Decimal, qty: Decimal) {
    if qty.is_zero() {
        m.remove(&key(price));
    } else {
        m.insert(key(price), Level { price, qty });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn sym() -> crate::event::Symbol {
        crate::event::Symbol::new("T").unwrap()
    }
    fn lv(p: Decimal, q: Decimal) -> Level {
        Level { price: p, qty: q }
    }
    fn snap(id: u64) -> BookSnapshot {
        BookSnapshot {
            symbol: sym(),
            update_id: id,
            bids: vec![lv(dec!(100), dec!(1)), lv(dec!(99), dec!(2))],
            asks: vec![lv(dec!(101), dec!(1)), lv(dec!(102), dec!(2))],
        }
    }
    fn delta(first: u64, last: u64, bids: Vec<Level>, asks: Vec<Level>) -> BookDelta {
        BookDelta {
            symbol: sym(),
            first_update_id: first,
            last_update_id: last,
            prev_update_id: None,
            bids,
            asks,
        }
    }

    #[test]
    fn a_futures_first_delta_follows_the_snapshot_by_pu_though_its_ids_jump() {
        let futures = |first, last, pu| BookDelta {
            prev_update_id: Some(pu),
            ..delta(first, last, vec![lv(dec!(100), dec!(5))], vec![])
        };
        let mut b = Book::new();
        b.apply_snapshot(&snap(10));
        assert_eq!(b.apply_delta(&futures(14, 20, 10)), Applied::Applied);
        assert_eq!(b.best_bid(), Some((dec!(100), dec!(5))));
        assert_eq!(b.apply_delta(&futures(25, 30, 20)), Applied::Applied);
        assert!(matches!(
            b.apply_delta(&futures(35, 40, 31)),
            Applied::Gap { .. }
        ));
        // Neither naming the snapshot nor straddling it: a gap.
        let mut b = Book::new();
        b.apply_snapshot(&snap(10));
        assert!(matches!(
            b.apply_delta(&futures(14, 20, 9)),
            Applied::Gap { .. }
        ));
    }

    #[test]
    fn straddling_first_delta_applies_and_stale_ones_do_not() {
        let mut b = Book::new();
        assert_eq!(
            b.apply_delta(&delta(1, 5, vec![], vec![])),
            Applied::Unsynced
        );
        b.apply_snapshot(&snap(10));
        assert_eq!(
            b.apply_delta(&delta(3, 9, vec![lv(dec!(100), dec!(0))], vec![])),
            Applied::Stale
        );
        assert_eq!(b.best_bid(), Some((dec!(100), dec!(1))));
        assert_eq!(
            b.apply_delta(&delta(8, 12, vec![lv(dec!(100), dec!(0))], vec![])),
            Applied::Applied
        );
        assert_eq!(b.best_bid(), Some((dec!(99), dec!(2))));
        assert_eq!(
            b.apply_delta(&delta(13, 13, vec![], vec![])),
            Applied::Applied
        );
        assert_eq!(
            b.apply_delta(&delta(15, 16, vec![], vec![])),
            Applied::Gap {
                expected: 14,
                got: 15
            }
        );
        assert!(!b.is_valid());
        b.apply_snapshot(&snap(20));
        assert!(b.is_valid());
    }

    #[test]
    fn first_delta_that_does_not_reach_the_snapshot_is_a_gap() {
        let mut b = Book::new();
        b.apply_snapshot(&snap(10));
        assert_eq!(
            b.apply_delta(&delta(12, 14, vec![], vec![])),
            Applied::Gap {
                expected: 11,
                got: 12
            }
        );
    }

    #[test]
    fn newer_bbo_trims_the_top_and_survives_an_older_diff() {
        let mut b = Book::new();
        b.apply_snapshot(&snap(10));
        let bbo = Bbo {
            symbol: sym(),
            update_id: Some(15),
            bid: dec!(99),
            bid_qty: dec!(3),
            ask: dec!(101),
            ask_qty: dec!(1),
        };
        assert_eq!(b.apply_bbo(&bbo), Applied::Applied);
        assert_eq!(b.best_bid(), Some((dec!(99), dec!(3))));
        // A diff that ends before the BBO re-adds 100 on the bid; the BBO is newer, so it wins.
        b.apply_delta(&delta(11, 14, vec![lv(dec!(100), dec!(5))], vec![]));
        assert_eq!(b.best_bid(), Some((dec!(99), dec!(3))));
        // A diff past the BBO is the newer truth.
        b.apply_delta(&delta(15, 16, vec![lv(dec!(100), dec!(5))], vec![]));
        assert_eq!(b.best_bid(), Some((dec!(100), dec!(5))));
        assert_eq!(b.mid(), Some(dec!(100.5)));
    }
}
