//! Several markets quoted together: one engine per market, and the limits over all of them.
//!
//! The desk routes each input to the engine it is about (market entries by symbol, order
//! reports by the order's id, a prediction answer by its request) and gives inputs about no
//! market (timers, operator commands, chain heads) to every engine in config order. Engines
//! reading one entry share its id slots, so ids stay unique. Before an engine quotes, the desk
//! tells it what it may still use of `risk.max_total_notional`; after every input it checks
//! `risk.max_total_loss` over all markets. With one market it is exactly that market's engine.

use crate::config::Config;
use crate::event::{bounds, Body, Entry, Input, Output, RiskAction, RiskKind, Symbol};
use crate::markets;
use crate::{Cause, Emitted, Engine, EngineStats};
use rust_decimal::Decimal;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error("config key `{0}`")]
    Config(#[from] crate::config::ConfigError),
    #[error("config keys `risk.max_total_notional` and `risk.max_total_loss` add up every market in one currency, but the markets are quoted in {0}; set both to 0, or quote markets of one currency")]
    Currencies(String),
}

pub struct Desk {
    engines: Vec<Engine>,
    symbols: Vec<Symbol>,
    max_total_notional: Decimal,
    max_total_loss: Decimal,
    /// Which engine owns an order or a prediction request still open.
    orders: HashMap<u64, usize>,
    requests: HashMap<u64, usize>,
    total_loss: bool,
    /// With several markets: inputs read, refused, and about a market or an order no engine
    /// has.
    own: EngineStats,
}

impl Desk {
    /// One engine per market of `cfg` (`[market]`, or each `[[markets]]` entry).
    pub fn new(cfg: &Config) -> Result<Desk, DeskError> {
        let per = cfg.market_configs()?;
        Desk::of(&per, cfg)
    }

    /// A desk over engines with these (resolved) configs and `shared`'s limits over all.
    pub fn of(per: &[Config], shared: &Config) -> Result<Desk, DeskError> {
        let r = &shared.risk;
        let limited = !r.max_total_notional.is_zero() || !r.max_total_loss.is_zero();
        let markets: Vec<_> = per.iter().map(|c| c.market.clone()).collect();
        if limited && per.len() > 1 && markets::common_currency(&markets).is_none() {
            let list: Vec<String> = markets
                .iter()
                .map(|m| format!("{} in {}", m.symbol, m.quote_currency))
                .collect();
            return Err(DeskError::Currencies(list.join(", ")));
        }
        Ok(Desk {
            engines: per.iter().map(Engine::new).collect(),
            symbols: per.iter().map(|c| c.market.symbol).collect(),
            max_total_notional: r.max_total_notional,
            max_total_loss: r.max_total_loss,
            orders: HashMap::new(),
            requests: HashMap::new(),
            total_loss: false,
            own: EngineStats::default(),
        })
    }

    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// Every engine's counts added up; what the desk itself refused or could not route is
    /// counted as refused, other-symbol and unknown reports.
    pub fn stats(&self) -> EngineStats {
        if let [one] = self.engines.as_slice() {
            return one.stats().clone();
        }
        let mut t = self.own.clone();
        for e in &self.engines {
            let s = e.stats();
            t.market_events += s.market_events;
            t.stale_updates += s.stale_updates;
            t.book_gaps += s.book_gaps;
            t.unknown_reports += s.unknown_reports;
        }
        t
    }

    /// The engine an input is about; `None`: every engine (or none, counted, when it names a
    /// market or an order no engine has).
    fn route(&self, input: &Input, body: &Body) -> Route {
        if self.engines.len() == 1 {
            return Route::One(0);
        }
        let by = |id: u64, map: &HashMap<u64, usize>| {
            map.get(&id).map_or(Route::Nobody, |i| Route::One(*i))
        };
        if let Some(sym) = body.market_symbol() {
            return self
                .symbols
                .iter()
                .position(|s| *s == sym)
                .map_or(Route::Nobody, Route::One);
        }
        match input {
            Input::OrderAck(a) => by(a.cid, &self.orders),
            Input::OrderReject(r) => by(r.cid, &self.orders),
            Input::OrderCanceled(c) => by(c.cid, &self.orders),
            Input::Fill(f) => by(f.cid, &self.orders),
            Input::PredictionResponse(r) => by(r.request_id, &self.requests),
            Input::PositionSync(p) => self
                .symbols
                .iter()
                .position(|s| *s == p.symbol)
                .map_or(Route::Nobody, Route::One),
            _ => Route::All,
        }
    }

    pub fn on_event(&mut self, e: &Entry, out: &mut Vec<Emitted>) {
        let Body::Input(input) = &e.body else {
            return;
        };
        let route = self.route(input, &e.body);
        if self.engines.len() > 1 {
            self.own.inputs += 1;
            // The engines refuse these too; refused here, they are counted once.
            if bounds::clock(e.ts_ns).is_err() || bounds::market_input(input).is_err() {
                self.own.refused_inputs += 1;
                return;
            }
        }
        let mut next_id = 0u64;
        match route {
            Route::One(i) => {
                self.give(i, e, out, next_id);
            }
            Route::All => {
                for i in 0..self.engines.len() {
                    next_id = self.give(i, e, out, next_id);
                }
            }
            Route::Nobody if e.body.is_market() => self.own.other_symbol += 1,
            Route::Nobody => self.own.unknown_reports += 1,
        }
        self.forget_done(input);
        self.check_total_loss(out);
    }

    fn give(&mut self, i: usize, e: &Entry, out: &mut Vec<Emitted>, first_id: u64) -> u64 {
        // With one market the limit over all markets still binds it (the others hold nothing).
        if !self.max_total_notional.is_zero() {
            let others: Decimal = self
                .engines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, en)| en.worst_notional())
                .sum();
            self.engines[i].set_notional_cap(Some(self.max_total_notional - others));
        }
        let at = out.len();
        let next = self.engines[i].on_event_minting(e, out, first_id);
        // One market routes everything to its engine and needs no owners.
        if self.engines.len() > 1 {
            for em in &out[at..] {
                match &em.output {
                    Output::PlaceOrder(p) => {
                        self.orders.insert(p.cid, i);
                    }
                    Output::PredictionRequest(r) => {
                        self.requests.insert(r.request_id, i);
                    }
                    _ => {}
                }
            }
        }
        next
    }

    /// Orders and requests that can hear nothing more are forgotten, so the maps hold only
    /// what is open.
    fn forget_done(&mut self, input: &Input) {
        match input {
            Input::OrderReject(r) => {
                self.orders.remove(&r.cid);
            }
            Input::OrderCanceled(c) => {
                self.orders.remove(&c.cid);
            }
            Input::Fill(f) if f.leaves_qty.is_zero() => {
                self.orders.remove(&f.cid);
            }
            Input::PredictionResponse(r) => {
                self.requests.remove(&r.request_id);
            }
            _ => {}
        }
    }

    fn check_total_loss(&mut self, out: &mut Vec<Emitted>) {
        if self.total_loss || self.max_total_loss.is_zero() {
            return;
        }
        let equity: Decimal = self.engines.iter().map(Engine::equity_in_quote).sum();
        if equity > -self.max_total_loss {
            return;
        }
        self.total_loss = true;
        let at = out.len();
        let per: Vec<String> = self
            .engines
            .iter()
            .map(|en| {
                format!(
                    "{} {}",
                    en.config().market.symbol,
                    en.equity_in_quote().round_dp(2)
                )
            })
            .collect();
        out.push(Emitted {
            cause: Cause::Input,
            output: Output::RiskAction(RiskAction {
                kind: RiskKind::TotalLoss,
                engaged: true,
                detail: format!(
                    "the markets together lost {} (risk.max_total_loss {}): {}; quoting stops for the rest of the session",
                    (-equity).round_dp(2),
                    self.max_total_loss,
                    per.join(", ")
                ),
                symbol: None,
            }),
        });
        for en in &mut self.engines {
            en.stop_for_total_loss(Cause::Emitted(at), out);
        }
    }

    /// The earliest time any engine needs a timer.
    pub fn poll_timeout(&self) -> Option<i64> {
        self.engines.iter().filter_map(Engine::poll_timeout).min()
    }

    /// True when a guard of this kind is engaged in any market.
    pub fn guard(&self, kind: RiskKind) -> bool {
        self.engines.iter().any(|e| e.guard(kind))
    }
}

#[derive(Clone, Copy)]
enum Route {
    One(usize),
    All,
    Nobody,
}

#[cfg(test)]
#[path = "desk_tests.rs"]
mod tests;
