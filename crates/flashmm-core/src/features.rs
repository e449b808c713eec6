//! Rolling market features. Statistics are f64, updated in event order, so a replay computes
//! the same bits.

use super::book::Book;
use crate::config::FeatureConfig;
use crate::event::{Features, Side, Trade};
use crate::signal::prompt::TradePrint;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::VecDeque;

const NS_PER_MS: i64 = 1_000_000;

#[derive(Clone, Debug)]
struct TradeMark {
    ts: i64,
    price: Decimal,
    qty: Decimal,
}

/// EWMA of squared log returns of mid, sampled on a fixed grid of event time.
#[derive(Clone, Debug)]
struct Volatility {
    sample_ns: i64,
    decay: f64,
    next_sample: Option<i64>,
    last_mid: f64,
    var: f64,
    /// Sum of EWMA weights so far: dividing by it removes the warm-up bias toward zero.
    weight: f64,
    samples: u32,
}

impl Volatility {
    fn new(cfg: &FeatureConfig) -> Volatility {
        let sample_s = cfg.vol_sample_ms as f64 / 1000.0;
        Volatility {
            sample_ns: cfg.vol_sample_ms as i64 * NS_PER_MS,
            decay: libm::pow(0.5, sample_s / cfg.vol_halflife_s),
            next_sample: None,
            last_mid: 0.0,
            var: 0.0,
            weight: 0.0,
            samples: 0,
        }
    }

    /// Returns true when a sample was taken (the estimate changed).
    fn observe(&mut self, ts: i64, mid: f64) -> bool {
        let Some(next) = self.next_sample else {
            self.next_sample = Some(ts - ts.rem_euclid(self.sample_ns) + self.sample_ns);
            self.last_mid = mid;
            return false;
        };
        if ts < next {
            return false;
        }
        // Boundaries crossed with no event between them saw an unchanged mid: zero returns.
        let crossed = (ts - next) / self.sample_ns + 1;
        let r = libm::log(mid / self.last_mid);
        let quiet = (crossed - 1).min(1_000_000) as i32;
        let dk = powi(self.decay, quiet);
        self.var *= dk;
        self.weight = 1.0 - (1.0 - self.weight) * dk;
        self.var = self.decay * self.var + (1.0 - self.decay) * r * r;
        self.weight = self.decay * self.weight + (1.0 - self.decay);
        self.samples = self
            .samples
            .saturating_add(crossed.min(u32::MAX as i64) as u32);
        self.next_sample = Some(next + crossed * self.sample_ns);
        self.last_mid = mid;
        true
    }

    /// Volatility per square-root second, in bps.
    fn bps_per_sqrt_s(&self) -> f64 {
        if self.weight <= 0.0 {
            return 0.0;
        }
        let sample_s = self.sample_ns as f64 / 1e9;
        (self.var / self.weight / sample_s).sqrt() * 1e4
    }
}

/// `x` to an integer power by repeated squaring, in the order compiler-rt's `__powidf2` uses, so
/// the result is the same bits whichever code the compiler would have picked for `f64::powi`.
pub fn powi(mut x: f64, n: i32) -> f64 {
    let mut k = n.unsigned_abs();
    let mut r = 1.0;
    loop {
        if k & 1 == 1 {
            r *= x;
        }
        k >>= 1;
        if k == 0 {
            break;
        }
        x *= x;
    }
    if n < 0 {
        1.0 / r
    } else {
        r
    }
}

/// Max and min of mid over a sliding window (monotonic deques), for the kill switch.
#[derive(Clone, Debug)]
struct MoveWindow {
    window_ns: i64,
    maxq: VecDeque<(i64, f64)>,
    minq: VecDeque<(i64, f64)>,
}

impl MoveWindow {
    fn prune(&mut self, now: i64) {
        let horizon = now - self.window_ns;
        while self.maxq.front().is_some_and(|&(t, _)| t < horizon) {
            self.maxq.pop_front();
        }
        while self.minq.front().is_some_and(|&(t, _)| t < horizon) {
            self.minq.pop_front();
        }
    }

    fn push(&mut self, ts: i64, mid: f64) {
        while self.maxq.back().is_some_and(|&(_, m)| m <= mid) {
            self.maxq.pop_back();
        }
        self.maxq.push_back((ts, mid));
        while self.minq.back().is_some_and(|&(_, m)| m >= mid) {
            self.minq.pop_back();
        }
        self.minq.push_back((ts, mid));
        self.prune(ts);
    }

    fn range_bps(&self, mid: f64) -> f64 {
        match (self.maxq.front(), self.minq.front()) {
            (Some(&(_, hi)), Some(&(_, lo))) if mid > 0.0 => (hi - lo) / mid * 1e4,
            _ => 0.0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FeatureState {
    momentum_n: usize,
    window_ns: i64,
    depth_levels: usize,
    /// Trades in the time window.
    window: VecDeque<TradeMark>,
    window_volume: Decimal,
    /// Signed aggressor quantity of the last `momentum_n` trades.
    recent: VecDeque<Decimal>,
    recent_buy: Decimal,
    recent_sell: Decimal,
    vol: Volatility,
    moves: MoveWindow,
    last_mid: Option<Decimal>,
    last_mid_f: f64,
    /// The last trades for the prompt, oldest first.
    prints: VecDeque<TradePrint>,
}

/// Trades the prompt shows.
const PROMPT_TRADES: usize = 10;

impl FeatureState {
    pub fn new(cfg: &FeatureConfig, kill_window_ms: u64) -> FeatureState {
        FeatureState {
            momentum_n: cfg.momentum_trades as usize,
            window_ns: cfg.window_s as i64 * 1_000_000_000,
            depth_levels: cfg.depth_levels as usize,
            window: VecDeque::new(),
            window_volume: Decimal::ZERO,
            recent: VecDeque::new(),
            recent_buy: Decimal::ZERO,
            recent_sell: Decimal::ZERO,
            vol: Volatility::new(cfg),
            moves: MoveWindow {
                window_ns: kill_window_ms as i64 * NS_PER_MS,
                maxq: VecDeque::new(),
                minq: VecDeque::new(),
            },
            last_mid: None,
            last_mid_f: 0.0,
            prints: VecDeque::with_capacity(PROMPT_TRADES + 1),
        }
    }

    pub fn last_trades(&self) -> impl Iterator<Item = &TradePrint> {
        self.prints.iter()
    }

    pub fn spread_bps(&self, book: &Book) -> f64 {
        match (book.best_bid(), book.best_ask(), book.mid()) {
            (Some((b, _)), Some((a, _)), Some(m)) if !m.is_zero() => {
                ((a - b) / m).to_f64().unwrap_or(0.0) * 1e4
            }
            _ => 0.0,
        }
    }

    pub fn on_trade(&mut self, ts: i64, t: &Trade) {
        if self.prints.len() == PROMPT_TRADES {
            self.prints.pop_front();
        }
        self.prints.push_back(TradePrint {
            ts_ns: ts,
            price: t.price,
            qty: t.qty,
            aggressor: t.aggressor,
        });
        self.window.push_back(TradeMark {
            ts,
            price: t.price,
            qty: t.qty,
        });
        self.window_volume += t.qty;
        self.expire(ts);
        match t.aggressor {
            Side::Buy => self.recent_buy += t.qty,
            Side::Sell => self.recent_sell += t.qty,
        }
        self.recent.push_back(t.aggressor.sign() * t.qty);
        if self.recent.len() > self.momentum_n {
            if let Some(old) = self.recent.pop_front() {
                if old.is_sign_positive() {
                    self.recent_buy -= old;
                } else {
                    self.recent_sell += old;
                }
            }
        }
    }

    fn expire(&mut self, now: i64) {
        let horizon = now - self.window_ns;
        while self.window.front().is_some_and(|m| m.ts < horizon) {
            if let Some(m) = self.window.pop_front() {
                self.window_volume -= m.qty;
            }
        }
    }

    /// Called after every book change; returns true when the mid moved or volatility was
    /// re-estimated (something quoting depends on).
    pub fn on_book(&mut self, ts: i64, book: &Book) -> bool {
        let Some(mid) = book.mid() else {
            return false;
        };
        let moved = self.last_mid != Some(mid);
        if moved {
            self.last_mid = Some(mid);
            self.last_mid_f = mid.to_f64().unwrap_or(0.0);
            self.moves.push(ts, self.last_mid_f);
        }
        let sampled = self.vol.observe(ts, self.last_mid_f);
        moved || sampled
    }

    pub fn volatility_bps(&self) -> f64 {
        self.vol.bps_per_sqrt_s()
    }

    pub fn vol_samples(&self) -> u32 {
        self.vol.samples
    }

    /// The mid's high-low range over the kill window ending at `now`, in bps of the current mid.
    pub fn window_move_bps(&mut self, now: i64) -> f64 {
        self.moves.prune(now);
        self.moves.range_bps(self.last_mid_f)
    }

    pub fn snapshot(&mut self, now: i64, book: &Book) -> Features {
        self.expire(now);
        let (bid, bid_qty) = book.best_bid().unwrap_or_default();
        let (ask, ask_qty) = book.best_ask().unwrap_or_default();
        let mid = book.mid().unwrap_or_default();
        let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
        let spread_bps = if mid.is_zero() {
            0.0
        } else {
            f((ask - bid) / mid) * 1e4
        };
        let top_size_ratio = if ask_qty.is_zero() {
            0.0
        } else {
            f(bid_qty / ask_qty)
        };
        let depth = |side| {
            book.levels(side)
                .take(self.depth_levels)
                .fold(Decimal::ZERO, |acc, l| acc.saturating_add(l.qty))
        };
        let (bd, ad) = (depth(Side::Buy), depth(Side::Sell));
        let depth_imbalance = if (bd + ad).is_zero() {
            0.0
        } else {
            f((bd - ad) / (bd + ad))
        };
        let total = self.recent_buy + self.recent_sell;
        let trade_momentum = if total.is_zero() {
            0.0
        } else {
            f((self.recent_buy - self.recent_sell) / total)
        };
        let price_change_1m_bps = match (self.window.front(), self.window.back()) {
            (Some(a), Some(b)) if !a.price.is_zero() => f((b.price - a.price) / a.price) * 1e4,
            _ => 0.0,
        };
        Features {
            best_bid: bid,
            bid_qty,
            best_ask: ask,
            ask_qty,
            mid,
            spread_bps,
            top_size_ratio,
            depth_imbalance,
            trade_momentum,
            volume_1m: self.window_volume,
            trade_count_1m: self.window.len() as u32,
            price_change_1m_bps,
            volatility_bps: self.volatility_bps(),
            vol_samples: self.vol.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Symbol;
    use rust_decimal_macros::dec;

    #[test]
    fn powi_is_repeated_squaring_and_agrees_with_the_compilers() {
        assert_eq!(powi(0.9, 0), 1.0);
        assert_eq!(powi(2.0, 10), 1024.0);
        assert_eq!(powi(2.0, -2), 0.25);
        // The same bits as the compiler's own powi (compiler-rt's algorithm) over many decays.
        for i in 1..200 {
            let x = 1.0 - 1.0 / (i as f64 + 1.5);
            for n in [1, 2, 3, 7, 64, 999, 1_000_000] {
                assert_eq!(powi(x, n).to_bits(), x.powi(n).to_bits(), "{x}^{n}");
            }
        }
    }

    #[test]
    fn ln_and_pow_come_from_libm_and_match_known_values() {
        // Values a correctly rounded ln/pow give; libm's are within these on every machine.
        assert_eq!(libm::log(1.0), 0.0);
        assert_eq!(libm::pow(0.5, 2.0), 0.25);
        assert!((libm::log(std::f64::consts::E) - 1.0).abs() <= f64::EPSILON);
    }

    fn trade(p: Decimal, q: Decimal, side: Side) -> Trade {
        Trade {
            symbol: Symbol::new("T").unwrap(),
            trade_id: 1,
            price: p,
            qty: q,
            aggressor: side,
        }
    }

    #[test]
    fn momentum_and_window_forget_old_trades() {
        let cfg = FeatureConfig {
            momentum_trades: 2,
            window_s: 1,
            ..FeatureConfig::default()
        };
        let mut fs = FeatureState::new(&cfg, 1000);
        fs.on_trade(0, &trade(dec!(100), dec!(1), Side::Buy));
        fs.on_trade(1, &trade(dec!(101), dec!(1), Side::Sell));
        fs.on_trade(1_000_000_000, &trade(dec!(102), dec!(3), Side::Sell));
        let book = Book::new();
        let f = fs.snapshot(1_000_000_000, &book);
        // Last two trades: 1 sell + 3 sell.
        assert_eq!(f.trade_momentum, -1.0);
        assert_eq!(f.volume_1m, dec!(5));
        assert_eq!(f.price_change_1m_bps, 200.0);
        let f = fs.snapshot(1_500_000_000, &book);
        assert_eq!(f.trade_count_1m, 1);
        assert_eq!(f.volume_1m, dec!(3));
    }

    #[test]
    fn volatility_of_alternating_mid() {
        let cfg = FeatureConfig {
            vol_sample_ms: 1000,
            vol_halflife_s: 1e9,
            ..FeatureConfig::default()
        };
        let mut v = Volatility::new(&cfg);
        let mut mid = 100.0;
        for i in 0..200 {
            v.observe(i * 1_000_000_000, mid);
            mid = if mid == 100.0 { 100.01 } else { 100.0 };
        }
        // |ln(100.01/100)| ~ 1 bp per one-second sample.
        let bps = v.bps_per_sqrt_s();
        assert!(bps > 0.5 && bps < 1.01, "{bps}");
    }
}
