//! `flashmm live`: the core against the world. One task owns the journal and the core; feeds,
//! venue calls and model calls run beside it and come back as messages. Every message becomes
//! a journaled input before the core reads it, and every order's intent (its signed request,
//! nonce included) is flushed to disk before the order leaves: one fsync per batch.

mod account;

pub mod control;
pub mod metrics;

use metrics::{Latency, Metrics};
use flashmm_core::config::Config;
use flashmm_core::book::Book;
use flashmm_core::{Cause, Emitted, Engine};
use flashmm_core::event::{
    Body, Entry, Fill, Input, Liquidity, Mode, Operator, OperatorCommand, OrderAck, OrderCanceled,
    OrderReject, Output, PositionSync, PredictionResponse, PredictorGate, SessionStart,
    SessionStatus, Side, Symbol, WireAction, WireRecord,
};
use flashmm_venue::feed::FeedEvent;
use flashmm_journal::{JournalError, Writer};
use flashmm_venue::azure::AzureClient;
use flashmm_core::signal::Predictor;
use flashmm_venue::citrex::client::{CitrexClient, Nonces, ProductSpec, VenueError};
use flashmm_venue::citrex::eip712::Signer;
use flashmm_venue::citrex::wire::{AccountUpdate, CancelReplaceRequest, OrderStatus, VenueOrder};
use flashmm_core::sim::SimVenue;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Venue(#[from] VenueError),
    #[error("{0}")]
    Setup(String),
}

pub enum VenueMode {
    /// Real orders on Citrex.
    Citrex(Arc<Signer>),
    /// The live feed with the simulated venue; no key.
    Paper,
    /// Orders signed and journaled as they would be sent, never sent; fills from the simulator.
    DryRun(Arc<Signer>),
}

pub enum LivePredictor {
    Local(Box<dyn Predictor + Send>),
    Azure(Arc<AzureClient>),
}

pub struct LiveArgs {
    pub cfg: Config,
    pub venue: VenueMode,
    pub predictor: LivePredictor,
    /// Stop after this long (tests, soak runs); `None` runs until a signal.
    pub run_for: Option<Duration>,
    /// Set to true to stop (tests); signals do the same.
    pub stop: Option<watch::Receiver<bool>>,
}

pub struct LiveOutcome {
    pub session: u64,
    pub status: SessionStatus,
    pub metrics: Metrics,
}

/// Journal time: wall clock, never going backwards.
struct Clock {
    last: i64,
}

impl Clock {
    fn now(&mut self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        self.last = wall.max(self.last + 1);
        self.last
    }
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct Track {
    venue_id: Option<String>,
    nonce: u64,
    place_seq: u64,
    sent: Instant,
    residual: Decimal,
    cancel_wanted: bool,
    done: bool,
}

enum Reply {
    Placed {
        cid: u64,
        result: Result<VenueOrder, VenueError>,
    },
    /// A placement whose outcome was lost (5xx, dropped connection), looked up by nonce.
    Resolved {
        cid: u64,
        found: Result<Option<VenueOrder>, VenueError>,
    },
    Canceled {
        cid: u64,
        result: Result<(), VenueError>,
    },
    Replaced {
        old: u64,
        new: u64,
        result: Result<VenueOrder, VenueError>,
    },
    Predicted(Box<PredictionResponse>),
    /// The venue's orders and position, read after the account stream reconnected.
    AccountChecked(Box<account::AccountCheck>),
}

/// A venue request, signed and journaled, to be sent once the batch is on disk.
type VenueCall = Box<dyn FnOnce(mpsc::Sender<Reply>) + Send>;

struct CitrexSide {
    client: Arc<CitrexClient>,
    product: ProductSpec,
    nonces: Nonces,
    orders: BTreeMap<u64, Track>,
    by_venue: BTreeMap<String, u64>,
    expiration_s: u64,
    dry_run: bool,
}

struct SimSide {
    venue: SimVenue,
    book: Book,
}

struct Live {
    writer: Writer,
    engine: Engine,
    session: u64,
    symbol: Symbol,
    clock: Clock,
    metrics: Metrics,
    citrex: Option<CitrexSide>,
    sim: Option<SimSide>,
    predictor: LivePredictor,
    replies: mpsc::Sender<Reply>,
    out: Vec<Emitted>,
    seqs: Vec<u64>,
    place_seq: BTreeMap<u64, u64>,
    request_seq: BTreeMap<u64, u64>,
    last_flush: Instant,
    dirty_journal: bool,
    /// Inputs that arose while acting on outputs (an order refused before it left); read next.
    pending_inputs: Vec<(Input, Option<u64>)>,
    /// Fills read from the account stream so far: a check in flight compares it.
    account_fills: u64,
}

/// The highest order nonce journaled by earlier live sessions, so a restart never reuses one.
fn journaled_nonce(writer: &Writer) -> Result<u64, JournalError> {
    let j = writer.journal().clone();
    let mut max = 0u64;
    for s in j
        .sessions()?
        .iter()
        .rev()
        .filter(|s| s.mode == Mode::Live)
        .take(1)
    {
        for e in j.read(s.first_seq)? {
            let e = e?;
            if e.seq > s.last_seq {
                break;
            }
            if let Body::Wire(w) = &e.body {
                max = max.max(w.nonce.unwrap_or(0));
            }
        }
    }
    Ok(max)
}

impl Live {
    fn ts(&mut self) -> i64 {
        self.clock.now()
    }

    fn append(
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

    fn wire(
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

    fn flush(&mut self, fsync: bool) -> Result<(), LiveError> {
        let t = Instant::now();
        self.writer.flush(fsync)?;
        self.metrics
            .record(Latency::JournalFlush, t.elapsed().as_nanos() as u64);
        self.last_flush = Instant::now();
        self.dirty_journal = false;
        Ok(())
    }

    /// Journal an input, let the core read it, journal what it decided, and act.
    fn input(
        &mut self,
        input: Input,
        venue_ts: Option<i64>,
        cause: Option<u64>,
        received: Option<Instant>,
    ) -> Result<(), LiveError> {
        let ts = self.ts();
        if let (Some(sim), true) = (
            self.sim.as_mut(),
            matches!(
                input,
                Input::BookSnapshot(_) | Input::BookDelta(_) | Input::Bbo(_) | Input::Trade(_)
            ),
        ) {
            sim.book.apply_market(&input);
            sim.venue.on_market(ts, &input, &sim.book);
        }
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
        if let Some(r) = received {
            self.metrics
                .record(Latency::FrameToDecision, r.elapsed().as_nanos() as u64);
        }
        self.act(e.seq, ts)?;
        for (input, cause) in std::mem::take(&mut self.pending_inputs) {
            self.input(input, None, cause, None)?;
        }
        self.deliver_sim_reports()
    }

    fn act(&mut self, input_seq: u64, ts: i64) -> Result<(), LiveError> {
        let out = std::mem::take(&mut self.out);
        self.seqs.clear();
        let decided = Instant::now();
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
        // Orders first: sign and journal every request, one flush, then send.
        let mut sends: Vec<Box<dyn FnOnce(mpsc::Sender<Reply>) + Send>> = Vec::new();
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
                    if self.citrex.is_some() {
                        let replaced = pairs
                            .iter()
                            .find(|(_, new)| *new == p.cid)
                            .map(|(old, _)| *old);
                        if let Some(send) = self.sign_place(p, seq, replaced)? {
                            sends.push(send);
                        }
                    }
                }
                Output::CancelOrder(c) => {
                    if let Some(sim) = self.sim.as_mut() {
                        sim.venue.cancel(ts, c.cid);
                    }
                    if self.citrex.is_some() && !pairs.iter().any(|(old, _)| *old == c.cid) {
                        if let Some(send) = self.sign_cancel(c.cid, seq)? {
                            sends.push(send);
                        }
                    }
                }
                Output::PredictionRequest(r) => {
                    self.request_seq.insert(r.request_id, seq);
                    self.ask(r, ts);
                }
                Output::PredictorStatus(s) => self.metrics.breaker(match s.gate {
                    PredictorGate::Open => "open",
                    PredictorGate::BreakerOpen => "breaker_open",
                    PredictorGate::HalfOpen => "half_open",
                    _ => "over_budget",
                }),
                Output::QuoteDecision(q) => {
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
                Output::RiskAction(_) => {}
            }
        }
        self.out = out;
        self.out.clear();
        if !sends.is_empty() {
            // The intent is on disk before the order leaves.
            self.flush(true)?;
            let wire = Instant::now();
            self.metrics.record(
                Latency::DecisionToWire,
                wire.duration_since(decided).as_nanos() as u64,
            );
            for send in sends {
                send(self.replies.clone());
            }
        }
        Ok(())
    }

    /// Signs an order (or a cancel-and-replace) and journals it; returns the send to run after
    /// the flush, or nothing in a dry run.
    fn sign_place(
        &mut self,
        p: &flashmm_core::event::PlaceOrder,
        seq: u64,
        replaces: Option<u64>,
    ) -> Result<Option<VenueCall>, LiveError> {
        let Some(c) = self.citrex.as_mut() else {
            return Ok(None);
        };
        let nonce = c.nonces.next(micros_now());
        let expiration = (micros_now() / 1000) + c.expiration_s * 1000;
        let req = match c.client.sign_order(&c.product, p, nonce, expiration) {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                let cause = Some(seq);
                self.wire(
                    WireAction::Failure,
                    Some(p.cid),
                    Some(nonce),
                    reason.clone(),
                    false,
                    cause,
                )?;
                self.pending_inputs.push((
                    Input::OrderReject(OrderReject { cid: p.cid, reason }),
                    cause,
                ));
                return Ok(None);
            }
        };
        let old_id = replaces.and_then(|old| c.orders.get(&old).and_then(|t| t.venue_id.clone()));
        let dry = c.dry_run;
        c.orders.insert(
            p.cid,
            Track {
                venue_id: None,
                nonce,
                place_seq: seq,
                sent: Instant::now(),
                residual: p.qty,
                cancel_wanted: false,
                done: false,
            },
        );
        let client = c.client.clone();
        let cid = p.cid;
        match (replaces, old_id) {
            (Some(old), Some(id)) => {
                let body = CancelReplaceRequest {
                    id_to_cancel: id,
                    new_order: req,
                };
                self.wire(
                    WireAction::CancelReplace,
                    Some(cid),
                    Some(nonce),
                    serde_json::to_string(&body).unwrap_or_default(),
                    !dry,
                    Some(seq),
                )?;
                if dry {
                    return Ok(None);
                }
                Ok(Some(Box::new(move |tx: mpsc::Sender<Reply>| {
                    tokio::spawn(async move {
                        let result = client.cancel_replace(&body).await;
                        let _ = tx
                            .send(Reply::Replaced {
                                old,
                                new: cid,
                                result,
                            })
                            .await;
                    });
                })))
            }
            (replaces, _) => {
                if let Some(old) = replaces {
                    // The order being replaced has no venue id yet: cancel it once it has one.
                    if let Some(t) = c.orders.get_mut(&old) {
                        t.cancel_wanted = true;
                    }
                }
                self.wire(
                    WireAction::Place,
                    Some(cid),
                    Some(nonce),
                    serde_json::to_string(&req).unwrap_or_default(),
                    !dry,
                    Some(seq),
                )?;
                if dry {
                    return Ok(None);
                }
                Ok(Some(Box::new(move |tx: mpsc::Sender<Reply>| {
                    tokio::spawn(async move {
                        let result = client.place(&req).await;
                        let _ = tx.send(Reply::Placed { cid, result }).await;
                    });
                })))
            }
        }
    }

    fn sign_cancel(&mut self, cid: u64, seq: u64) -> Result<Option<VenueCall>, LiveError> {
        let Some(c) = self.citrex.as_mut() else {
            return Ok(None);
        };
        let Some(t) = c.orders.get_mut(&cid) else {
            return Ok(None);
        };
        let Some(id) = t.venue_id.clone() else {
            // Still on its way: cancel it when the venue names it.
            t.cancel_wanted = true;
            return Ok(None);
        };
        let req = c.client.sign_cancel(c.product.id, &id)?;
        let dry = c.dry_run;
        let client = c.client.clone();
        self.wire(
            WireAction::Cancel,
            Some(cid),
            None,
            serde_json::to_string(&req).unwrap_or_default(),
            !dry,
            Some(seq),
        )?;
        if dry {
            return Ok(None);
        }
        Ok(Some(Box::new(move |tx: mpsc::Sender<Reply>| {
            tokio::spawn(async move {
                let result = client.cancel(&req).await.map(|_| ());
                let _ = tx.send(Reply::Canceled { cid, result }).await;
            });
        })))
    }

    fn ask(&mut self, r: &flashmm_core::event::PredictionRequest, ts: i64) {
        match &mut self.predictor {
            LivePredictor::Local(p) => {
                let resp = p.answer(r, ts);
                let _ = self.replies.try_send(Reply::Predicted(Box::new(resp)));
            }
            LivePredictor::Azure(client) => {
                let client = client.clone();
                let req = r.clone();
                let tx = self.replies.clone();
                tokio::spawn(async move {
                    let resp = client.call(&req).await;
                    let _ = tx.send(Reply::Predicted(Box::new(resp))).await;
                });
            }
        }
    }

    fn deliver_sim_reports(&mut self) -> Result<(), LiveError> {
        loop {
            let now = self.clock.now();
            let Some(sim) = self.sim.as_mut() else {
                return Ok(());
            };
            if sim.venue.next_arrival().is_some_and(|t| t <= now) {
                sim.venue.arrive(&sim.book);
                continue;
            }
            if sim.venue.next_report().is_none_or(|t| t > now) {
                return Ok(());
            }
            let Some(r) = sim.venue.pop_report() else {
                return Ok(());
            };
            let cid = match &r.input {
                Input::OrderAck(a) => a.cid,
                Input::OrderReject(x) => x.cid,
                Input::OrderCanceled(c) => c.cid,
                Input::Fill(f) => f.cid,
                _ => 0,
            };
            let cause = self.place_seq.get(&cid).copied();
            self.input(r.input, Some(r.venue_ts), cause, None)?;
        }
    }

    fn track_input(&mut self, cid: u64, input: Input) -> Result<(), LiveError> {
        let cause = self.place_seq.get(&cid).copied();
        self.input(input, None, cause, None)
    }

    fn on_reply(&mut self, reply: Reply) -> Result<(), LiveError> {
        match reply {
            Reply::Predicted(resp) => {
                let ok = resp.result.is_ok();
                self.metrics.llm(ok, resp.cost_usd.to_f64().unwrap_or(0.0));
                self.metrics
                    .record(Latency::Llm, resp.latency_ms * 1_000_000);
                let cause = self.request_seq.get(&resp.request_id).copied();
                self.input(Input::PredictionResponse(resp), None, cause, None)
            }
            Reply::Placed { cid, result } => self.placed(cid, result),
            Reply::AccountChecked(check) => self.on_account_check(*check),
            Reply::Replaced { old, new, result } => match result {
                Ok(o) => {
                    self.gone(old, "replaced")?;
                    self.placed(new, Ok(o))
                }
                Err(e) => {
                    // Whether the old order went is not certain: cancel it plainly; the
                    // account stream settles it either way.
                    self.rejected(new, e.to_string())?;
                    if let Some(seq) = self.place_seq.get(&old).copied() {
                        if let Some(send) = self.sign_cancel(old, seq)? {
                            self.flush(true)?;
                            send(self.replies.clone());
                        }
                    }
                    Ok(())
                }
            },
            Reply::Resolved { cid, found } => match found {
                Ok(Some(o)) => self.placed(cid, Ok(o)),
                Ok(None) => self.rejected(
                    cid,
                    "the order is not at the venue after an unknown outcome".into(),
                ),
                Err(e) => self.rejected(
                    cid,
                    format!("could not confirm the order after an unknown outcome: {e}"),
                ),
            },
            Reply::Canceled { cid, result } => match result {
                Ok(()) => self.gone(cid, "canceled"),
                Err(e) => {
                    // The order may have filled meanwhile; the account stream settles it.
                    self.wire(
                        WireAction::Failure,
                        Some(cid),
                        None,
                        format!("cancel failed: {e}"),
                        true,
                        self.place_seq.get(&cid).copied(),
                    )?;
                    Ok(())
                }
            },
        }
    }

    fn placed(
        &mut self,
        cid: u64,
        result: Result<VenueOrder, VenueError>,
    ) -> Result<(), LiveError> {
        match result {
            Ok(o) => {
                let mut cancel_now = None;
                if let Some(c) = self.citrex.as_mut() {
                    if let Some(t) = c.orders.get_mut(&cid) {
                        if t.venue_id.is_some() {
                            return Ok(());
                        }
                        t.venue_id = Some(o.id.clone());
                        self.metrics
                            .record(Latency::OrderAck, t.sent.elapsed().as_nanos() as u64);
                        if t.cancel_wanted {
                            cancel_now = Some(t.place_seq);
                        }
                    }
                    c.by_venue.insert(o.id.clone(), cid);
                }
                self.track_input(
                    cid,
                    Input::OrderAck(OrderAck {
                        cid,
                        venue_order_id: o.id,
                    }),
                )?;
                if let Some(seq) = cancel_now {
                    if let Some(send) = self.sign_cancel(cid, seq)? {
                        self.flush(true)?;
                        send(self.replies.clone());
                    }
                }
                Ok(())
            }
            Err(
                e @ (VenueError::Connection(_)
                | VenueError::Http {
                    status: 500..=599, ..
                }),
            ) => {
                // Lost: look the order up by its nonce before deciding anything.
                let Some(c) = self.citrex.as_ref() else {
                    return Ok(());
                };
                let Some(nonce) = c.orders.get(&cid).map(|t| t.nonce) else {
                    return Ok(());
                };
                let client = c.client.clone();
                let cause = self.place_seq.get(&cid).copied();
                self.wire(
                    WireAction::Failure,
                    Some(cid),
                    Some(nonce),
                    format!("outcome unknown ({e}); checking open orders"),
                    true,
                    cause,
                )?;
                let tx = self.replies.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let found = client
                        .open_orders()
                        .await
                        .map(|v| v.into_iter().find(|o| o.nonce == nonce));
                    let _ = tx.send(Reply::Resolved { cid, found }).await;
                });
                Ok(())
            }
            Err(e) => self.rejected(cid, e.to_string()),
        }
    }

    fn rejected(&mut self, cid: u64, reason: String) -> Result<(), LiveError> {
        if let Some(t) = self.citrex.as_mut().and_then(|c| c.orders.get_mut(&cid)) {
            if t.done {
                return Ok(());
            }
            t.done = true;
        }
        self.track_input(cid, Input::OrderReject(OrderReject { cid, reason }))
    }

    fn gone(&mut self, cid: u64, reason: &str) -> Result<(), LiveError> {
        let mut residual = Decimal::ZERO;
        if let Some(t) = self.citrex.as_mut().and_then(|c| c.orders.get_mut(&cid)) {
            if t.done {
                return Ok(());
            }
            t.done = true;
            residual = t.residual;
        }
        self.track_input(
            cid,
            Input::OrderCanceled(OrderCanceled {
                cid,
                canceled_qty: residual,
                reason: reason.into(),
            }),
        )
    }

    fn on_account(&mut self, update: AccountUpdate, received: Instant) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_mut() else {
            return Ok(());
        };
        match update {
            AccountUpdate::Order(o) => {
                let cid = c.by_venue.get(&o.id).copied().or_else(|| {
                    c.orders
                        .iter()
                        .find(|(_, t)| t.nonce == o.nonce)
                        .map(|(cid, _)| *cid)
                });
                let Some(cid) = cid else { return Ok(()) };
                if let Some(t) = c.orders.get_mut(&cid) {
                    t.residual = o.residual_quantity.to_decimal();
                }
                match o.status {
                    OrderStatus::Open | OrderStatus::Pending => self.placed(cid, Ok(o)),
                    OrderStatus::Cancelled => self.gone(cid, "canceled"),
                    OrderStatus::Expired => self.gone(cid, "expired"),
                    OrderStatus::Rejected => self.rejected(cid, "rejected by the venue".into()),
                    OrderStatus::Filled => Ok(()),
                }
            }
            AccountUpdate::Fill(f) => {
                self.account_fills += 1;
                let cid = c.by_venue.get(&f.order_id).copied().unwrap_or(0);
                let leaves = f.residual_quantity.to_decimal();
                if let Some(t) = c.orders.get_mut(&cid) {
                    t.residual = leaves;
                    if leaves <= Decimal::ZERO {
                        t.done = true;
                    }
                }
                let fill = Fill {
                    cid,
                    side: if f.is_buy { Side::Buy } else { Side::Sell },
                    price: f.price.to_decimal(),
                    qty: f.quantity.to_decimal(),
                    liquidity: if f.is_maker {
                        Liquidity::Maker
                    } else {
                        Liquidity::Taker
                    },
                    fee: f.fee.to_decimal(),
                    leaves_qty: leaves,
                };
                let cause = self.place_seq.get(&cid).copied();
                self.input(
                    Input::Fill(fill),
                    Some(f.created_at as i64 * 1_000_000),
                    cause,
                    Some(received),
                )
            }
            AccountUpdate::Position(_) | AccountUpdate::Balance(_) => Ok(()),
        }
    }

    /// Cancels everything we have at the venue, per product, and waits for the answer.
    async fn cancel_everything(&mut self, why: &str) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let req = c.client.sign_cancel_all(c.product.id)?;
        let dry = c.dry_run;
        let client = c.client.clone();
        self.wire(
            WireAction::CancelAll,
            None,
            None,
            serde_json::to_string(&req).unwrap_or_default(),
            !dry,
            None,
        )?;
        self.flush(true)?;
        if dry {
            return Ok(());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), client.cancel_all(&req)).await;
        let note = match r {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => format!("cancel-all ({why}) failed: {e}"),
            Err(_) => format!("cancel-all ({why}) timed out"),
        };
        self.wire(WireAction::Failure, None, None, note, true, None)?;
        Ok(())
    }

    /// At start: cancel whatever is resting at the venue and adopt its position, journaling each
    /// correction; only then may the core quote.
    async fn reconcile(&mut self) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_ref() else {
            return Ok(());
        };
        let client = c.client.clone();
        let product = c.product.clone();
        let open = client.open_orders().await?;
        let ours: Vec<VenueOrder> = open
            .into_iter()
            .filter(|o| o.product_id == product.id)
            .collect();
        for o in &ours {
            let body = serde_json::to_string(o).unwrap_or_default();
            self.wire(WireAction::Reconcile, None, Some(o.nonce), body, true, None)?;
        }
        if !ours.is_empty() {
            self.cancel_everything("reconcile: orders left at the venue")
                .await?;
        }
        let positions = client.positions().await?;
        let (qty, avg) = positions
            .iter()
            .find(|p| p.product_id == product.id)
            .map(|p| (p.quantity.to_decimal(), p.avg_entry_price.to_decimal()))
            .unwrap_or_default();
        let note = format!(
            "GET /positionRisk at start; {} orders found at the venue and canceled",
            ours.len()
        );
        self.input(
            Input::PositionSync(PositionSync {
                symbol: self.symbol,
                qty,
                avg_price: avg,
                note,
            }),
            None,
            None,
            None,
        )?;
        self.flush(true)
    }

    fn next_wake(&self) -> Option<i64> {
        let mut d = self.engine.poll_timeout();
        if let Some(sim) = self.sim.as_ref() {
            for t in [sim.venue.next_arrival(), sim.venue.next_report()]
                .into_iter()
                .flatten()
            {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        }
        d
    }
}

/// Pairs a repricing cancel with the place that replaces it (same side and level) in one batch,
/// so they can go as one cancel-and-replace.
fn replace_pairs(out: &[Emitted], engine: &Engine) -> Vec<(u64, u64)> {
    let mut pairs = Vec::new();
    for e in out {
        let Output::CancelOrder(c) = &e.output else {
            continue;
        };
        if c.why != flashmm_core::event::CancelWhy::Reprice {
            continue;
        }
        let Some(old) = engine.orders().get(c.cid) else {
            continue;
        };
        let new = out.iter().find_map(|e| match &e.output {
            Output::PlaceOrder(p) if p.side == old.side && p.level == old.level => Some(p.cid),
            _ => None,
        });
        if let Some(new) = new {
            pairs.push((c.cid, new));
        }
    }
    pairs
}

fn wall_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

enum Event {
    Feed(FeedEvent),
    Reply(Reply),
    Operator(OperatorCommand, String),
    Wake,
    Stop(&'static str),
}

pub async fn run(mut writer: Writer, args: LiveArgs) -> Result<LiveOutcome, LiveError> {
    let mut cfg = args.cfg;
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let paper = matches!(args.venue, VenueMode::Paper);
    let signer = match &args.venue {
        VenueMode::Citrex(s) | VenueMode::DryRun(s) => Some(s.clone()),
        VenueMode::Paper => None,
    };
    let client = Arc::new(CitrexClient::new(&cfg.citrex, signer.clone())?);
    let product = client.product(&cfg.citrex.product).await?;
    // The venue's grid is the one to quote on.
    cfg.market.symbol = Symbol::new(&product.symbol.to_ascii_uppercase())
        .map_err(|e| LiveError::Setup(e.to_string()))?;
    cfg.market.tick_size = product.tick.normalize();
    cfg.market.lot_size = product.min_qty.normalize();
    cfg.market.min_qty = product.min_qty.normalize();
    cfg.venue.maker_fee_bps = product.maker_fee * Decimal::from(10_000);
    cfg.venue.taker_fee_bps = product.taker_fee * Decimal::from(10_000);
    cfg.validate()
        .map_err(|e| LiveError::Setup(format!("with the product's tick and size: {e}")))?;
    let nonce_floor = journaled_nonce(&writer)?;
    let mode = if paper { Mode::Paper } else { Mode::Live };
    let label = match &args.venue {
        VenueMode::Citrex(s) => format!("live on Citrex {} as {}", product.symbol, s.address()),
        VenueMode::DryRun(s) => format!(
            "dry run on Citrex {} as {} (signed, never sent)",
            product.symbol,
            s.address()
        ),
        VenueMode::Paper => format!("paper on Citrex {} (simulated venue)", product.symbol),
    };
    let mut clock = Clock { last: 0 };
    let session = writer.begin(
        clock.now(),
        SessionStart {
            mode,
            version: flashmm_core::VERSION.to_string(),
            config: cfg.to_toml(),
            label,
            parent: None,
            source: None,
        },
    )?;
    let (reply_tx, mut reply_rx) = mpsc::channel::<Reply>(1024);
    let citrex = match &args.venue {
        VenueMode::Paper => None,
        VenueMode::Citrex(_) | VenueMode::DryRun(_) => Some(CitrexSide {
            client: client.clone(),
            product: product.clone(),
            nonces: Nonces::after(nonce_floor),
            orders: BTreeMap::new(),
            by_venue: BTreeMap::new(),
            expiration_s: cfg.citrex.order_expiration_s,
            dry_run: matches!(args.venue, VenueMode::DryRun(_)),
        }),
    };
    let sim = matches!(args.venue, VenueMode::Paper | VenueMode::DryRun(_)).then(|| SimSide {
        venue: SimVenue::new(&cfg.venue, &cfg.market),
        book: Book::new(),
    });
    let mut live = Live {
        engine: Engine::new(&cfg),
        symbol: cfg.market.symbol,
        writer,
        session,
        clock,
        metrics: metrics.clone(),
        citrex,
        sim,
        predictor: args.predictor,
        replies: reply_tx,
        out: Vec::new(),
        seqs: Vec::new(),
        place_seq: BTreeMap::new(),
        request_seq: BTreeMap::new(),
        last_flush: Instant::now(),
        dirty_journal: true,
        pending_inputs: Vec::new(),
        account_fills: 0,
    };
    if matches!(args.venue, VenueMode::Citrex(_)) {
        live.reconcile().await?;
    }
    let (feed_tx, mut feed_rx) = mpsc::channel::<FeedEvent>(4096);
    let (op_tx, mut op_rx) = mpsc::channel::<(OperatorCommand, String)>(16);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(flashmm_venue::feed::citrex::market(
        cfg.citrex.clone(),
        live.symbol,
        client.clone(),
        feed_tx.clone(),
        stop_rx.clone(),
    )));
    if matches!(args.venue, VenueMode::Citrex(_)) {
        tasks.push(tokio::spawn(flashmm_venue::feed::citrex::account(
            cfg.citrex.clone(),
            client.clone(),
            live.symbol,
            feed_tx.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(flashmm_venue::feed::sei::heads(
        cfg.citrex.sei(),
        cfg.citrex.reconnect_base_ms,
        cfg.citrex.reconnect_max_ms,
        feed_tx.clone(),
        stop_rx.clone(),
    )));
    if !cfg.live.metrics_addr.is_empty() {
        let (addr, m, s) = (
            cfg.live.metrics_addr.clone(),
            metrics.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr.clone(), m, s).await {
                tracing::warn!("metrics endpoint {addr} (live.metrics_addr) failed: {e}");
            }
        }));
    }
    if !cfg.live.control_addr.is_empty() {
        let (addr, s) = (cfg.live.control_addr.clone(), stop_rx.clone());
        let tx = op_tx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = control::serve(addr.clone(), tx, s).await {
                tracing::warn!("control endpoint {addr} (live.control_addr) failed: {e}");
            }
        }));
    }
    drop(feed_tx);
    let deadline = args.run_for.map(|d| tokio::time::Instant::now() + d);
    let mut external_stop = args.stop;
    let flush_every = Duration::from_millis(cfg.live.flush_interval_ms);
    let result: Result<&'static str, LiveError> = async {
        loop {
            let wake = live.next_wake();
            let wake_in = wake.map(|t| Duration::from_nanos((t - wall_ns()).max(0) as u64)).unwrap_or(Duration::from_secs(3600));
            let flush_in = if live.dirty_journal { flush_every.saturating_sub(live.last_flush.elapsed()) } else { Duration::from_secs(3600) };
            let sleep = wake_in.min(flush_in);
            let ev = tokio::select! {
                biased;
                _ = shutdown_signal() => Event::Stop("signal"),
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => Event::Stop("run time elapsed"),
                _ = async { match external_stop.as_mut() { Some(s) => { let _ = s.wait_for(|v| *v).await; } None => std::future::pending().await } } => Event::Stop("stopped"),
                Some((c, note)) = op_rx.recv() => Event::Operator(c, note),
                Some(r) = reply_rx.recv() => Event::Reply(r),
                Some(f) = feed_rx.recv() => Event::Feed(f),
                _ = tokio::time::sleep(sleep) => Event::Wake,
            };
            match ev {
                Event::Stop(why) => return Ok(why),
                Event::Operator(command, note) => live.input(Input::Operator(Operator { command, note }), None, None, None)?,
                Event::Reply(r) => live.on_reply(r)?,
                Event::Feed(FeedEvent::Market { input, venue_ts, received }) => live.input(input, venue_ts, None, Some(received))?,
                Event::Feed(FeedEvent::Chain { head, received }) => {
                    let ts = head.block_ts_ns;
                    live.input(Input::ChainHead(head), Some(ts), None, Some(received))?
                }
                Event::Feed(FeedEvent::Account { update, received }) => live.on_account(update, received)?,
                Event::Feed(FeedEvent::Status(s)) => live.input(Input::FeedStatus(s), None, None, None)?,
                Event::Feed(FeedEvent::AccountResynced) => {
                    live.wire(WireAction::Reconcile, None, None, "account stream reconnected; updates may have been missed: reading the venue's orders and position".into(), false, None)?;
                    live.check_account(0, Duration::ZERO);
                }
                Event::Wake => {
                    live.deliver_sim_reports()?;
                    if live.engine.poll_timeout().is_some_and(|t| t <= wall_ns()) {
                        live.input(Input::Timer, None, None, None)?;
                    }
                    if live.dirty_journal && live.last_flush.elapsed() >= flush_every {
                        live.flush(false)?;
                    }
                }
            }
        }
    }
    .await;
    let (status, why) = match &result {
        Ok(why) => (SessionStatus::Completed, why.to_string()),
        Err(e) => (SessionStatus::Failed(e.to_string()), e.to_string()),
    };
    // Cancel everything, per product, before anything else.
    let cancel = live.cancel_everything(&why).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    let ts = live.ts();
    let note = match &cancel {
        Ok(()) => format!("stopped: {why}; open orders canceled"),
        Err(e) => format!("stopped: {why}; cancel-all failed: {e}"),
    };
    live.writer.end(live.session, ts, status.clone(), note)?;
    live.flush(true)?;
    result?;
    cancel?;
    Ok(LiveOutcome {
        session,
        status,
        metrics,
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
