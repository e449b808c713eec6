//! One step of the live loop: an input is journaled, the core reads it, what it decided is
//! journaled, and then acted on. Order requests are on disk (one fsync per batch) before they leave.

use super::metrics::Latency;
use super::venue::{replace_pairs, Reply};
use super::{Live, LiveError, LivePredictor};
use flashmm_core::event::{
    Body, CallOutcome, Entry, Input, Output, PredictionRequest, PredictionResponse, PredictorKind,
    WireAction, WireRecord,
};
use flashmm_core::Cause;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Live time. On the wall clock in production; in a simulation it starts at a given instant and
/// runs with tokio's clock, which a paused runtime advances only when every task waits.
pub(super) enum Clock {
    Wall {
        last: i64,
    },
    Simulated {
        start_ns: i64,
        start: tokio::time::Instant,
        last: i64,
    },
}

impl Clock {
    pub(super) fn wall_clock() -> Clock {
        Clock::Wall { last: 0 }
    }

    pub(super) fn simulated(start_ns: i64) -> Clock {
        Clock::Simulated {
            start_ns,
            start: tokio::time::Instant::now(),
            last: 0,
        }
    }

    /// The time now, for decisions: the core's timers, the tracker's, order expiries.
    pub(super) fn wall(&self) -> i64 {
        match self {
            Clock::Wall { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0),
            Clock::Simulated {
                start_ns, start, ..
            } => start_ns.saturating_add(start.elapsed().as_nanos() as i64),
        }
    }

    /// Journal time: the same, never going backwards.
    pub(super) fn now(&mut self) -> i64 {
        let wall = self.wall();
        let last = match self {
            Clock::Wall { last } | Clock::Simulated { last, .. } => last,
        };
        *last = wall.max(*last + 1);
        *last
    }
}

impl Live {
    pub(super) fn ts(&mut self) -> i64 {
        self.clock.now()
    }

    pub(super) fn append(
        &mut self,
        ts: i64,
        venue_ts: Option<i64>,
        cause: Option<u64>,
        body: Body,
    ) -> Result<u64, LiveError> {
        let mut e = Entry {
            seq: 0,
            ts_ns: ts,
            venue_ts_ns: venue_ts,
            session: self.session,
            cause,
            body,
        };
        self.writer.append(&mut e)?;
        self.dirty_journal = true;
        Ok(e.seq)
    }

    pub(super) fn wire(
        &mut self,
        action: WireAction,
        cid: Option<u64>,
        nonce: Option<u64>,
        body: String,
        sent: bool,
        cause: Option<u64>,
    ) -> Result<u64, LiveError> {
        let ts = self.ts();
        self.append(
            ts,
            None,
            cause,
            Body::Wire(Box::new(WireRecord {
                action,
                cid,
                nonce,
                body,
                sent,
            })),
        )
    }

    pub(super) fn flush(&mut self, fsync: bool) -> Result<(), LiveError> {
        let t = Instant::now();
        self.writer.flush(fsync)?;
        self.metrics
            .record(Latency::JournalFlush, t.elapsed().as_nanos() as u64);
        self.last_flush = tokio::time::Instant::now();
        self.dirty_journal = false;
        Ok(())
    }

    /// Journal an input, let the core read it, journal what it decided, and act.
    pub(super) fn input(
        &mut self,
        input: Input,
        venue_ts: Option<i64>,
        cause: Option<u64>,
        received: Option<Instant>,
    ) -> Result<(), LiveError> {
        if self.sim.is_some() && super::paper::SimSide::watches(&input) {
            // In a backtest's order, so a what-if of a paper session is its baseline: what was
            // due before this entry, then the venue reads it, then the reports it made of it
            // (fills at once) reach the core before the entry does.
            self.deliver_sim_reports()?;
            let ts = self.ts();
            if let Some(sim) = self.sim.as_mut() {
                sim.on_market(ts, &input);
            }
            self.deliver_sim_reports()?;
        }
        let ts = self.ts();
        let mut e = Entry {
            seq: 0,
            ts_ns: ts,
            venue_ts_ns: venue_ts,
            session: self.session,
            cause,
            body: Body::Input(input),
        };
        self.writer.append(&mut e)?;
        self.dirty_journal = true;
        self.engine.on_event(&e, &mut self.out);
        if let Some(c) = self.citrex.as_mut() {
            let p = self.engine.position();
            c.tracker
                .engine_position(p.qty(), self.engine.position_unconfirmed());
        }
        if let Some(r) = received {
            self.metrics
                .record(Latency::FrameToDecision, r.elapsed().as_nanos() as u64);
        }
        self.act(e.seq, ts)?;
        self.deliver_sim_reports()
    }

    fn act(&mut self, input_seq: u64, ts: i64) -> Result<(), LiveError> {
        let out = std::mem::take(&mut self.out);
        self.seqs.clear();
        let mut outputs = 0u64;
        for em in &out {
            let cause = match em.cause {
                Cause::Input => input_seq,
                Cause::Emitted(i) => self.seqs.get(i).copied().unwrap_or(input_seq),
            };
            let seq = self.append(ts, None, Some(cause), Body::Output(em.output.clone()))?;
            self.seqs.push(seq);
            outputs += 1;
        }
        self.metrics.entries(1, outputs);
        self.metrics
            .position(self.engine.position().qty().to_f64().unwrap_or(0.0));
        // Orders go to the tracker; the pump signs and journals every request, one flush, then
        // sends.
        let pairs = if self.citrex.is_some() {
            replace_pairs(&out, &self.engine)
        } else {
            Vec::new()
        };
        for (i, em) in out.iter().enumerate() {
            let seq = self.seqs[i];
            match &em.output {
                Output::PlaceOrder(p) => {
                    self.place_seq.insert(p.cid, seq);
                    if let Some(sim) = self.sim.as_mut() {
                        sim.venue.submit(ts, p);
                    }
                    let replaced = pairs
                        .iter()
                        .find(|(_, new)| *new == p.cid)
                        .map(|(old, _)| *old);
                    let now = self.clock.wall();
                    if let Some(c) = self.citrex.as_mut() {
                        c.tracker.place(p, replaced, now);
                    }
                }
                Output::CancelOrder(c) => {
                    if let Some(sim) = self.sim.as_mut() {
                        sim.venue.cancel(ts, c.cid);
                    }
                    if !pairs.iter().any(|(old, _)| *old == c.cid) {
                        if let Some(t) = self.citrex.as_mut() {
                            t.tracker.cancel(c.cid);
                        }
                    }
                }
                Output::PredictionRequest(r) => {
                    self.request_seq.insert(r.request_id, seq);
                    self.ask(r, ts);
                }
                Output::PredictorStatus(s) => {
                    self.metrics.gate(s.gate);
                    self.metrics.breaker(self.engine.breaker_state());
                }
                Output::QuoteDecision(q) => {
                    self.metrics.quote(q.prediction.as_ref().map(|p| p.age_ms));
                    let spread = match (q.bids.first(), q.asks.first()) {
                        (Some(b), Some(a)) if !q.features.mid.is_zero() => {
                            ((a.price - b.price) / q.features.mid * Decimal::from(10_000)).to_f64()
                        }
                        _ => None,
                    };
                    let pnl = self
                        .engine
                        .position()
                        .pnl(q.features.mid)
                        .total
                        .to_f64()
                        .unwrap_or(0.0);
                    let pos = self.engine.position().qty().to_f64().unwrap_or(0.0);
                    self.metrics
                        .book(pos, pnl, self.engine.orders().len() as u64, spread);
                }
                Output::PredictionOutcome(o) => {
                    self.metrics.outcome(o.outcome);
                    if o.outcome == CallOutcome::GaveUp {
                        if let Some(stop) = self.model_calls.remove(&o.request_id) {
                            // The call answers with its cancellation, or with the answer it
                            // already had: either way exactly one reply comes.
                            let _ = stop.send(());
                        }
                    }
                }
                Output::RiskAction(_) | Output::Funding(_) => {}
            }
        }
        self.out = out;
        self.out.clear();
        self.decided = Some(Instant::now());
        self.pump(None)
    }

    pub(super) fn on_prediction(&mut self, resp: PredictionResponse) -> Result<(), LiveError> {
        let ok = resp.result.is_ok();
        self.metrics.llm(ok, resp.cost_usd);
        // A local predictor answers in no time: its "latency" is not the model's.
        if matches!(resp.source, PredictorKind::Azure) {
            self.metrics
                .record(Latency::Llm, resp.latency_ms * 1_000_000);
        }
        self.model_calls.remove(&resp.request_id);
        let cause = self.request_seq.get(&resp.request_id).copied();
        let stepped = self.input(Input::PredictionResponse(Box::new(resp)), None, cause, None);
        self.metrics.breaker(self.engine.breaker_state());
        stepped
    }

    /// Asks the model: a local one answers at once, Azure in the background; either way the
    /// answer comes back as `Reply::Predicted`.
    fn ask(&mut self, r: &PredictionRequest, ts: i64) {
        match &mut self.predictor {
            LivePredictor::Local(p) => {
                let resp = p.answer(r, ts);
                let _ = self.replies.try_send(Reply::Predicted(Box::new(resp)));
            }
            LivePredictor::Azure(client) => {
                let client = client.clone();
                let req = r.clone();
                let tx = self.replies.clone();
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                self.model_calls.insert(r.request_id, stop_tx);
                tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    // Dropping the call drops its connection; a dropped sender is no stop.
                    let resp = tokio::select! {
                        resp = client.call(&req) => resp,
                        Ok(()) = stop_rx => PredictionResponse::cancelled(
                            req.request_id,
                            PredictorKind::Azure,
                            started.elapsed().as_millis() as u64,
                        ),
                    };
                    let _ = tx.send(Reply::Predicted(Box::new(resp))).await;
                });
            }
        }
    }
}
