//! The deterministic engine. `Engine::on_event` takes one journal entry and returns what to do;
//! it reads no clock, does no I/O and iterates nothing unordered, so the same entries always
//! give the same outputs. Time is the entry's timestamp; `poll_timeout` says when the engine
//! next needs a `Timer` input.
//!
//! Longer than 600 lines on purpose: `on_event` and the requote it drives are the core's one
//! state transition; the parts it delegates to (book, features, quote, risk, orders, position,
//! prediction) are already their own modules.

use crate::book::{Applied, Book, BookState};
use crate::config::Config;
use crate::event::{
    bounds, Body, Bound, CancelOrder, CancelWhy, Entry, Features, FeedState, Funding, Input, Level,
    OperatorCommand, Output, PlaceOrder, PredictionRequest, PredictionUsed, QuoteDecision,
    QuoteLevel, RiskAction, RiskKind, RulesSignal, Side,
};
use crate::features::FeatureState;
use crate::funding::{self, FundingClock};
use crate::orders::{Order, Orders, Report};
use crate::position::Position;
use crate::prediction::PredictionState;
use crate::risk::Risk;
use crate::signal::prompt::{MarketPicture, TradePrint};
use crate::{prediction, quote, risk};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const NS_PER_MS: i64 = 1_000_000;
/// Funding charges one input can bring due: a day of hourly funding and then some.
const MAX_FUNDING_PER_INPUT: usize = 64;
/// Ids minted while handling one entry are `seq * MINT_PER_ENTRY + k`.
pub const MINT_PER_ENTRY: u64 = 64;

/// Which entry an output answers to. `Emitted(i)` is the i-th output of the same call; the
/// driver turns it into a seq when it journals the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Input,
    Emitted(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Emitted {
    pub cause: Cause,
    pub output: Output,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub inputs: u64,
    pub market_events: u64,
    /// Market events for a symbol this engine does not trade.
    pub other_symbol: u64,
    pub stale_updates: u64,
    pub book_gaps: u64,
    /// Order reports for orders this engine does not know.
    pub unknown_reports: u64,
    /// Entries refused unread: market values or a time outside `event::bounds`.
    pub refused_inputs: u64,
}

pub struct Engine {
    cfg: Config,
    book: Book,
    features: FeatureState,
    orders: Orders,
    position: Position,
    funding: FundingClock,
    risk: Risk,
    prediction: PredictionState,
    now: i64,
    last_market: Option<i64>,
    /// A book was read over REST before the market stream ever spoke.
    polled_only: bool,
    /// The venue's account has been read (a `position_sync`): from then on fills need a read
    /// to confirm them. Backtests never read one, so the guard stays out of their way.
    venue_read: bool,
    /// The first fill since the last read of the venue's position.
    unconfirmed_since: Option<i64>,
    /// When the last block of the settlement chain arrived (live sessions only).
    last_block: Option<i64>,
    last_replace: i64,
    replace_pending: bool,
    /// When quotes were last evaluated, and whether a market move since then awaits one.
    last_eval: i64,
    market_pending: bool,
    mint_base: u64,
    mint_k: u64,
    /// The desk's limit over all markets, as what this market may still use of it (quote
    /// currency): tighter than `risk.max_notional` when other markets hold notional.
    notional_cap: Option<Decimal>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(cfg: &Config) -> Engine {
        Engine {
            cfg: cfg.clone(),
            book: Book::new(),
            features: FeatureState::new(&cfg.features, cfg.risk.kill_window_ms),
            orders: Orders::default(),
            position: Position::new(crate::contract::Contract::of(&cfg.market)),
            funding: FundingClock::new(&cfg.funding, &cfg.market),
            risk: Risk::new(&cfg.risk),
            prediction: PredictionState::new(&cfg.predict, &cfg.azure),
            now: i64::MIN,
            last_market: None,
            polled_only: false,
            venue_read: false,
            unconfirmed_since: None,
            last_block: None,
            last_replace: i64::MIN,
            replace_pending: false,
            last_eval: i64::MIN,
            market_pending: false,
            mint_base: 0,
            mint_k: 0,
            notional_cap: None,
            stats: EngineStats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn book(&self) -> &Book {
        &self.book
    }
    pub fn orders(&self) -> &Orders {
        &self.orders
    }
    pub fn position(&self) -> &Position {
        &self.position
    }
    pub fn risk(&self) -> &Risk {
        &self.risk
    }
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
    /// Fills have moved the position since the venue's account was last read.
    pub fn position_unconfirmed(&self) -> bool {
        self.unconfirmed_since.is_some()
    }

    pub fn breaker_state(&self) -> crate::signal::breaker::BreakerState {
        self.prediction.breaker_state()
    }
    pub fn prediction_stats(&self) -> &prediction::PredictionStats {
        &self.prediction.stats
    }

    fn mint(&mut self) -> u64 {
        let id = self.mint_base * MINT_PER_ENTRY + self.mint_k;
        self.mint_k += 1;
        id
    }

    pub fn on_event(&mut self, e: &Entry, out: &mut Vec<Emitted>) {
        self.on_event_minting(e, out, 0);
    }

    /// `on_event` for one of several engines reading the same entry: ids are minted from slot
    /// `first_id` of the entry's, and the next free slot is returned.
    pub fn on_event_minting(&mut self, e: &Entry, out: &mut Vec<Emitted>, first_id: u64) -> u64 {
        self.handle(e, out, first_id);
        self.mint_k
    }

    /// What this market may still add of the desk's `risk.max_total_notional` (`None`: no such
    /// limit).
    pub fn set_notional_cap(&mut self, cap: Option<Decimal>) {
        self.notional_cap = cap;
    }

    /// The notional (quote currency) of the position if every open order on the worse side
    /// filled, at mid; zero before there is a mid.
    pub fn worst_notional(&self) -> Decimal {
        let Some(mid) = self.book.mid() else {
            return Decimal::ZERO;
        };
        let q = self.position.qty();
        let worst = [Side::Buy, Side::Sell]
            .into_iter()
            .map(|s| (s.sign() * q + self.orders.exposure(s)).max(Decimal::ZERO))
            .max()
            .unwrap_or(Decimal::ZERO);
        self.position.contract().quote_notional(worst, mid)
    }

    /// Equity since the session began in quote currency, at mid (realised only before a mid).
    pub fn equity_in_quote(&self) -> Decimal {
        match self.book.mid() {
            Some(mid) => self
                .position
                .contract()
                .in_quote(self.position.equity(mid), mid),
            None => Decimal::ZERO,
        }
    }

    /// The desk's total-loss guard: stop quoting this market for the rest of the session and
    /// cancel what rests, caused by the desk's action at `cause`.
    pub fn stop_for_total_loss(&mut self, cause: Cause, out: &mut Vec<Emitted>) {
        let _ = self.risk.engage_total_loss(String::new);
        self.cancel_all(CancelWhy::Risk, cause, out);
    }

    fn handle(&mut self, e: &Entry, out: &mut Vec<Emitted>, first_id: u64) {
        let Body::Input(input) = &e.body else {
            return;
        };
        self.stats.inputs += 1;
        // Importers refuse such values already; this keeps any other source (an unsigned JSONL
        // import, a live frame) from overflowing the book, the features or the clock. A dropped
        // delta leaves a hole the next one reports as a gap.
        if bounds::clock(e.ts_ns).is_err() || bounds::market_input(input).is_err() {
            self.stats.refused_inputs += 1;
            return;
        }
        self.now = self.now.max(e.ts_ns);
        self.mint_base = e.seq;
        self.mint_k = first_id;
        let sym = self.cfg.market.symbol;
        // Funding falls due on the position held before this input changes it.
        self.charge_funding(out);
        let mut dirty = false;
        let mut book_changed = false;
        let mut actions: Vec<RiskAction> = Vec::new();
        let market = |s: &crate::event::Symbol, stats: &mut EngineStats| {
            if *s == sym {
                stats.market_events += 1;
                true
            } else {
                stats.other_symbol += 1;
                false
            }
        };
        match input {
            Input::BookSnapshot(s) => {
                if market(&s.symbol, &mut self.stats) {
                    self.book.apply_snapshot(s);
                    book_changed = true;
                    self.last_market = Some(self.now);
                }
            }
            Input::BookPolled(s) => {
                // The book is right again, but only the stream's own messages say it is alive.
                if market(&s.symbol, &mut self.stats) {
                    self.book.apply_snapshot(s);
                    book_changed = true;
                    self.polled_only |= self.last_market.is_none();
                }
            }
            Input::BookDelta(d) => {
                if market(&d.symbol, &mut self.stats) {
                    self.last_market = Some(self.now);
                    match self.book.apply_delta(d) {
                        Applied::Applied => book_changed = true,
                        Applied::Stale => self.stats.stale_updates += 1,
                        Applied::Unsynced => {}
                        Applied::Gap { expected, got } => {
                            self.stats.book_gaps += 1;
                            actions.extend(self.risk.set_book_invalid(true, || {
                                format!("depth gap: expected update {expected}, got {got}; waiting for a snapshot")
                            }));
                        }
                    }
                }
            }
            Input::Bbo(b) => {
                if market(&b.symbol, &mut self.stats) {
                    self.last_market = Some(self.now);
                    match self.book.apply_bbo(b) {
                        Applied::Applied => book_changed = true,
                        _ => self.stats.stale_updates += 1,
                    }
                }
            }
            Input::Trade(t) => {
                if market(&t.symbol, &mut self.stats) {
                    self.last_market = Some(self.now);
                    self.features.on_trade(self.now, t);
                }
            }
            Input::Timer => dirty = true,
            Input::PredictionResponse(r) => {
                let mut heard = Vec::new();
                dirty |= self.prediction.on_response(e.seq, r, self.now, &mut heard);
                out.extend(heard.into_iter().map(|o| Emitted {
                    cause: Cause::Input,
                    output: Output::PredictionOutcome(o),
                }));
            }
            Input::OrderAck(a) => Self::count(&mut self.stats, self.orders.on_ack(a.cid)),
            Input::OrderReject(r) => {
                Self::count(&mut self.stats, self.orders.on_gone(r.cid));
                dirty = true;
            }
            Input::OrderCanceled(c) => {
                Self::count(&mut self.stats, self.orders.on_gone(c.cid));
                dirty = true;
            }
            Input::Fill(f) => {
                // The position follows every fill, even one for an order we do not know.
                self.position.apply_fill(f.side, f.price, f.qty, f.fee);
                if self.venue_read && self.unconfirmed_since.is_none() {
                    self.unconfirmed_since = Some(self.now);
                }
                Self::count(
                    &mut self.stats,
                    self.orders.on_fill(f.cid, f.qty, f.leaves_qty),
                );
                dirty = true;
            }
            Input::FeedStatus(s) => {
                if market(&s.symbol, &mut self.stats)
                    && matches!(s.state, FeedState::Gap | FeedState::Disconnected)
                {
                    self.book.invalidate();
                    let detail = s.detail.clone();
                    actions.extend(self.risk.set_book_invalid(true, || {
                        format!("feed {:?}: {detail}; waiting for a snapshot", s.state)
                    }));
                }
            }
            Input::Operator(o) => match o.command {
                OperatorCommand::Halt => actions.extend(self.risk.operator_halt()),
                OperatorCommand::Resume => {
                    self.risk.operator_resume(&mut actions);
                    dirty = true;
                }
                OperatorCommand::CancelAll => {
                    let at = out.len();
                    self.cancel_all(CancelWhy::Risk, Cause::Input, out);
                    dirty |= out.len() > at;
                }
            },
            Input::ChainHead(_) => self.last_block = Some(self.now),
            Input::FundingRate(r) => {
                if market(&r.symbol, &mut self.stats) {
                    self.funding.on_rate(r);
                }
            }
            Input::PositionSync(p) => {
                if p.symbol == sym {
                    self.position.adopt(p.qty, p.avg_price);
                    self.venue_read = true;
                    self.unconfirmed_since = None;
                    dirty = true;
                }
            }
        }
        let mut market_moved = false;
        if book_changed {
            market_moved = self.features.on_book(self.now, &self.book);
            if self.book.is_valid() {
                actions.extend(
                    self.risk
                        .set_book_invalid(false, || "book resynced from a snapshot".into()),
                );
            }
        }
        self.step(dirty, market_moved, actions, out);
    }

    /// Charges every funding time that has passed, at the venue's mark or else our mid.
    fn charge_funding(&mut self, out: &mut Vec<Emitted>) {
        self.funding.start(self.now);
        // A clock that jumped years ahead would otherwise charge every interval in between.
        for _ in 0..MAX_FUNDING_PER_INPUT {
            let Some((due_ns, rate, mark)) = self.funding.due(self.now) else {
                return;
            };
            let qty = self.position.qty();
            let Some(mark) = mark.or_else(|| self.book.mid()) else {
                continue;
            };
            if qty.is_zero() {
                continue;
            }
            let amount = funding::amount(self.position.contract(), qty, mark, rate);
            self.position.apply_funding(amount);
            out.push(Emitted {
                cause: Cause::Input,
                output: Output::Funding(Funding {
                    due_ns,
                    rate,
                    position: qty,
                    mark,
                    amount,
                    symbol: Some(self.cfg.market.symbol),
                }),
            });
        }
    }

    fn count(stats: &mut EngineStats, r: Report) {
        if r == Report::Unknown {
            stats.unknown_reports += 1;
        }
    }

    fn vol_ready(&self) -> bool {
        self.features.vol_samples() >= self.cfg.features.vol_min_samples
    }

    /// Housekeeping after every input: risk guards, then the prediction cadence, then quotes.
    /// Quotes are re-evaluated at once after fills, order reports, predictions, risk changes and
    /// timers; after a market move, at most once per `strategy.min_refresh_ms` (a timer catches
    /// the last move of a burst).
    fn step(
        &mut self,
        mut dirty: bool,
        market_moved: bool,
        mut actions: Vec<RiskAction>,
        out: &mut Vec<Emitted>,
    ) {
        let now = self.now;
        actions.extend(
            self.risk
                .check_stale(now, self.last_market, self.polled_only),
        );
        actions.extend(self.risk.check_chain(now, self.last_block));
        actions.extend(self.risk.check_unconfirmed(now, self.unconfirmed_since));
        if self.book.is_valid() {
            let moved = self.features.window_move_bps(now);
            actions.extend(self.risk.check_kill(
                now,
                moved,
                self.features.volatility_bps(),
                self.vol_ready(),
            ));
        }
        if let Some(mid) = self.book.mid() {
            let day = self
                .position
                .contract()
                .in_quote(self.position.equity(mid), mid);
            actions.extend(self.risk.check_daily(now, day));
        }
        let mut cause = Cause::Input;
        for mut a in actions {
            a.symbol = Some(self.cfg.market.symbol);
            dirty = true;
            cause = Cause::Emitted(out.len());
            out.push(Emitted {
                cause: Cause::Input,
                output: Output::RiskAction(a),
            });
        }
        let mut gave_up = Vec::new();
        if self.prediction.expire_in_flight(now, &mut gave_up) {
            dirty = true;
        }
        out.extend(gave_up.into_iter().map(|o| Emitted {
            cause: Cause::Input,
            output: Output::PredictionOutcome(o),
        }));
        if let Some(status) = self.prediction.update_gate(now) {
            dirty = true;
            out.push(Emitted {
                cause: Cause::Input,
                output: Output::PredictorStatus(status),
            });
        }
        if self.risk.halted() || !self.book.is_valid() {
            self.cancel_all(CancelWhy::Risk, cause, out);
            return;
        }
        self.maybe_request(out);
        let replace_due = self.replace_pending && now >= self.replace_at();
        self.market_pending |= market_moved;
        let market_due = self.market_pending && now >= self.eval_at();
        if dirty || replace_due || market_due {
            self.last_eval = now;
            self.market_pending = false;
            self.requote(out);
        }
    }

    fn eval_at(&self) -> i64 {
        self.last_eval
            .saturating_add(self.cfg.strategy.min_refresh_ms as i64 * NS_PER_MS)
    }

    /// Asks the predictor when the cadence, the early trigger and the gate allow it.
    fn maybe_request(&mut self, out: &mut Vec<Emitted>) {
        let now = self.now;
        let vol = self.features.volatility_bps();
        let spread = self.features.spread_bps(&self.book);
        if !self.prediction.due(now, spread, vol) {
            return;
        }
        let (request, reserve) = self.build_request();
        if !self.prediction.admit(now, reserve) {
            return;
        }
        self.prediction
            .sent(request.request_id, now, reserve, spread, vol);
        out.push(Emitted {
            cause: Cause::Input,
            output: Output::PredictionRequest(Box::new(request)),
        });
    }

    /// A prediction request for the market as it stands, outside the cadence: what
    /// `flashmm predict --once` sends. `None` until the book is valid.
    pub fn request_now(&mut self) -> Option<PredictionRequest> {
        self.book.is_valid().then(|| self.build_request().0)
    }

    /// The request and the most it can cost.
    fn build_request(&mut self) -> (PredictionRequest, Decimal) {
        let now = self.now;
        let features = self.features.snapshot(now, &self.book);
        let depth = self.cfg.features.depth_levels as usize;
        let bids: Vec<Level> = self.book.levels(Side::Buy).take(depth).collect();
        let asks: Vec<Level> = self.book.levels(Side::Sell).take(depth).collect();
        let trades: Vec<TradePrint> = self.features.last_trades().cloned().collect();
        let prompt = crate::signal::prompt::build(&MarketPicture {
            symbol: self.cfg.market.symbol,
            ts_ns: now,
            features: &features,
            bids: &bids,
            asks: &asks,
            trades: &trades,
            position: self.position.qty(),
            max_position: self.cfg.risk.max_position,
            horizon_s: self.cfg.predict.horizon_s,
        });
        let reserve = self
            .prediction
            .reserve_for(prompt.developer.len() + prompt.user.len());
        let request = PredictionRequest {
            request_id: self.mint(),
            symbol: self.cfg.market.symbol,
            features,
            prompt: Some(prompt),
        };
        (request, reserve)
    }

    fn replace_at(&self) -> i64 {
        self.last_replace
            .saturating_add(self.cfg.strategy.min_refresh_ms as i64 * NS_PER_MS)
    }

    fn cancel_all(&mut self, why: CancelWhy, cause: Cause, out: &mut Vec<Emitted>) {
        let cids: Vec<u64> = self
            .orders
            .iter()
            .filter(|o| o.is_working())
            .map(|o| o.cid)
            .collect();
        for cid in cids {
            self.orders.mark_cancel(cid);
            out.push(Emitted {
                cause,
                output: Output::CancelOrder(CancelOrder { cid, why }),
            });
        }
        self.replace_pending = false;
    }

    fn requote(&mut self, out: &mut Vec<Emitted>) {
        let now = self.now;
        let (Some((bid, bid_qty)), Some((ask, ask_qty)), Some(mid)) =
            (self.book.best_bid(), self.book.best_ask(), self.book.mid())
        else {
            return;
        };
        // Only what the ladder reads; the full feature set is computed if a decision is made.
        let light = Features {
            best_bid: bid,
            bid_qty,
            best_ask: ask,
            ask_qty,
            mid,
            volatility_bps: self.features.volatility_bps(),
            vol_samples: self.features.vol_samples(),
            ..Features::default()
        };
        let model = self.prediction.current(now);
        let rules = self.cfg.predict.fallback_rules.then(|| {
            let ratio = if ask_qty.is_zero() {
                0.0
            } else {
                (bid_qty / ask_qty).to_f64().unwrap_or(0.0)
            };
            let picture = Features {
                spread_bps: self.features.spread_bps(&self.book),
                top_size_ratio: ratio,
                ..light.clone()
            };
            let p = crate::signal::rules::predict(&picture, self.cfg.predict.rules_signal_bps);
            RulesSignal {
                direction: p.direction,
                confidence: p.confidence,
                price_change_bps: p.price_change_bps,
            }
        });
        let (prediction, model_weight) = match model {
            Some((used, w)) => (Some(used), w),
            None => (None, Decimal::ZERO),
        };
        let signal_bps = blend(prediction.as_ref(), rules.as_ref(), model_weight);
        let position = self.position.qty();
        let Some(ladder) = quote::ladder(&self.cfg, &light, signal_bps, position) else {
            return;
        };
        let mut bounds = ladder.bounds.clone();
        let mut limits = self.cfg.risk.clone();
        // The desk's cap binds where it is below this market's own limit.
        let desk_bound = self
            .notional_cap
            .is_some_and(|cap| cap < limits.max_notional);
        if let (true, Some(cap)) = (desk_bound, self.notional_cap) {
            limits.max_notional = cap.max(Decimal::ZERO);
        }
        let tolerance = mid * self.cfg.strategy.refresh_tolerance_bps / dec!(10000);
        let may_replace = now >= self.replace_at();
        let mut deferred = false;
        let mut replaced = false;
        let mut cancels: Vec<u64> = Vec::new();
        let mut places: Vec<PlaceOrder> = Vec::new();
        let mut final_levels: [Vec<QuoteLevel>; 2] = [Vec::new(), Vec::new()];
        let mut sides_off = [false; 2];
        for (si, (side, targets)) in [(Side::Buy, &ladder.bids), (Side::Sell, &ladder.asks)]
            .into_iter()
            .enumerate()
        {
            let mut exposure = self.orders.exposure(side);
            let (room_flat, _) = risk::room(
                &limits,
                self.position.contract(),
                side,
                position,
                Decimal::ZERO,
                mid,
                mid,
                0,
            );
            sides_off[si] = room_flat < self.cfg.market.min_qty;
            for level in 0..self.cfg.strategy.levels as u8 {
                let working = self.orders.at_level(side, level).cloned();
                let target = targets.iter().find(|q| q.level == level);
                let Some(t) = target else {
                    if let Some(o) = working {
                        cancels.push(o.cid);
                    }
                    continue;
                };
                // The size risk allows here, not counting the order this level already has.
                let own = working.as_ref().map_or(Decimal::ZERO, Order::remaining);
                let (room, bound) = risk::room(
                    &limits,
                    self.position.contract(),
                    side,
                    position,
                    exposure - own,
                    t.price,
                    mid,
                    level,
                );
                let qty = quote::round_qty(t.qty.min(room), self.cfg.market.lot_size);
                let bound = match bound {
                    Bound::NotionalLimit { side, level } if desk_bound => {
                        Bound::TotalNotionalLimit { side, level }
                    }
                    b => b,
                };
                if qty < t.qty {
                    bounds.push(bound.clone());
                }
                let wanted = (qty >= self.cfg.market.min_qty).then_some(QuoteLevel {
                    level,
                    price: t.price,
                    qty,
                });
                match (working, wanted) {
                    (Some(o), Some(w)) if self.close_enough(&o, &w, tolerance) => {
                        final_levels[si].push(w)
                    }
                    (Some(o), Some(w)) => {
                        if may_replace {
                            replaced = true;
                            cancels.push(o.cid);
                            // The canceled order may still fill until the venue confirms.
                            let (room, _) = risk::room(
                                &limits,
                                self.position.contract(),
                                side,
                                position,
                                exposure,
                                w.price,
                                mid,
                                level,
                            );
                            let q = quote::round_qty(w.qty.min(room), self.cfg.market.lot_size);
                            if q >= self.cfg.market.min_qty {
                                exposure += q;
                                places.push(self.order(side, level, w.price, q));
                                final_levels[si].push(QuoteLevel { qty: q, ..w });
                            } else {
                                bounds.push(bound.clone());
                            }
                        } else {
                            deferred = true;
                            final_levels[si].push(QuoteLevel {
                                level,
                                price: o.price,
                                qty: o.remaining(),
                            });
                        }
                    }
                    (Some(o), None) => {
                        cancels.push(o.cid);
                    }
                    (None, Some(w)) => {
                        exposure += w.qty;
                        places.push(self.order(side, level, w.price, w.qty));
                        final_levels[si].push(w);
                    }
                    (None, None) => {}
                }
            }
        }
        self.replace_pending = deferred;
        if let Some(mut a) = self
            .risk
            .set_sides_off(sides_off[0], sides_off[1], position)
        {
            a.symbol = Some(self.cfg.market.symbol);
            out.push(Emitted {
                cause: Cause::Input,
                output: Output::RiskAction(a),
            });
        }
        if cancels.is_empty() && places.is_empty() {
            return;
        }
        if replaced {
            self.last_replace = now;
        }
        let [bids, asks] = final_levels;
        let decision = out.len();
        out.push(Emitted {
            cause: Cause::Input,
            output: Output::QuoteDecision(Box::new(QuoteDecision {
                features: self.features.snapshot(now, &self.book),
                prediction,
                rules,
                model_weight,
                position,
                reservation: ladder.reservation,
                prediction_skew: ladder.prediction_skew,
                inventory_skew: ladder.inventory_skew,
                half_spread_bps: ladder.half_spread_bps,
                bids,
                asks,
                bounds,
                symbol: Some(self.cfg.market.symbol),
            })),
        });
        for cid in cancels {
            self.orders.mark_cancel(cid);
            out.push(Emitted {
                cause: Cause::Emitted(decision),
                output: Output::CancelOrder(CancelOrder {
                    cid,
                    why: CancelWhy::Reprice,
                }),
            });
        }
        for p in places {
            self.orders.place(p.cid, p.side, p.level, p.price, p.qty);
            out.push(Emitted {
                cause: Cause::Emitted(decision),
                output: Output::PlaceOrder(p),
            });
        }
    }

    pub fn predictor_gate(&self) -> crate::event::PredictorGate {
        self.prediction.gate()
    }

    fn order(&mut self, side: Side, level: u8, price: Decimal, qty: Decimal) -> PlaceOrder {
        PlaceOrder {
            cid: self.mint(),
            symbol: self.cfg.market.symbol,
            side,
            price,
            qty,
            post_only: self.cfg.strategy.post_only,
            level,
        }
    }

    fn close_enough(&self, o: &Order, w: &QuoteLevel, tolerance: Decimal) -> bool {
        let tol = self.cfg.strategy.size_tolerance;
        let rem = o.remaining();
        (o.price - w.price).abs() <= tolerance
            && rem >= w.qty * (Decimal::ONE - tol)
            && rem <= w.qty * (Decimal::ONE + tol)
    }

    /// When the engine next needs a `Timer` input if nothing else arrives; always after `now`.
    pub fn poll_timeout(&self) -> Option<i64> {
        let mut d = self
            .risk
            .deadline(self.last_market, self.last_block, self.unconfirmed_since);
        let mut consider = |t: i64| d = Some(d.map_or(t, |x: i64| x.min(t)));
        if self.book.is_valid() && !self.risk.halted() {
            if let Some(t) = self.prediction.deadline(self.now) {
                consider(t);
            }
            if self.replace_pending {
                consider(self.replace_at());
            }
            if self.market_pending {
                consider(self.eval_at());
            }
        }
        if let Some(t) = self.funding.next() {
            consider(t);
        }
        // Strictly later than now, so each timer moves time on; at the end of time, none.
        let next = self.now.checked_add(1)?;
        d.map(|t| t.max(next))
    }

    pub fn book_state(&self) -> BookState {
        self.book.state()
    }

    /// True when a risk guard of this kind is engaged.
    pub fn guard(&self, kind: RiskKind) -> bool {
        self.risk.is_engaged(kind)
    }
}

/// The expected move, in bps, the quotes lean on: the prediction weighted `model_weight`
/// (which fades with its age) and the rules weighted the rest, each as confidence x bps.
pub fn blend(
    model: Option<&PredictionUsed>,
    rules: Option<&RulesSignal>,
    model_weight: Decimal,
) -> Decimal {
    let m = model.map_or(Decimal::ZERO, |p| p.confidence * p.price_change_bps);
    let r = rules.map_or(Decimal::ZERO, |p| p.confidence * p.price_change_bps);
    (model_weight * m + (Decimal::ONE - model_weight) * r).round_dp(8)
}
