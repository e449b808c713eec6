//! Our orders at Citrex: each one's nonce, venue id and residual, the signed requests that place
//! and cancel them, and the venue's answers and account updates turned into journaled inputs.

use super::metrics::Latency;
use super::{Live, LiveError};
use flashmm_core::event::{
    Body, CancelWhy, Fill, Input, Liquidity, Mode, OrderAck, OrderCanceled, OrderReject, Output,
    PlaceOrder, PredictionResponse, Side, WireAction,
};
use flashmm_core::{Emitted, Engine};
use flashmm_journal::{JournalError, Writer};
use flashmm_venue::citrex::client::{CitrexClient, Nonces, ProductSpec, VenueError};
use flashmm_venue::citrex::wire::{
    AccountUpdate, CancelReplaceRequest, CancelRequest, OrderRequest, OrderStatus, VenueOrder,
    VenuePosition,
};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub(super) struct Track {
    pub(super) venue_id: Option<String>,
    pub(super) nonce: u64,
    place_seq: u64,
    sent: Instant,
    pub(super) residual: Decimal,
    cancel_wanted: bool,
    pub(super) done: bool,
}

pub(super) enum Reply {
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
    AccountChecked(Box<AccountCheck>),
}

/// The venue's orders and position, read back, with what we knew when the read was issued.
pub(super) struct AccountCheck {
    /// What prompted the read, for the journal.
    pub why: &'static str,
    /// Our orders the venue had acknowledged when the check was issued: only these can be
    /// missing from its answer (one placed since may not have reached it yet).
    pub acked: BTreeSet<u64>,
    /// Fills read from the account stream before the check was issued.
    pub fills_at_issue: u64,
    pub attempt: u32,
    /// A position difference seen by the previous read: adopted only if this read sees it
    /// again with no fill between, since a fill push may simply not have arrived yet.
    pub seen_difference: Option<Decimal>,
    pub snapshot: Result<(Vec<VenueOrder>, Vec<VenuePosition>), VenueError>,
}

/// A venue request, signed and journaled, to be sent once the batch is on disk; or the look-up
/// of a placement whose outcome was lost. `Live::send` runs it; the answer comes back as a `Reply`.
pub(super) enum VenueCall {
    Place {
        cid: u64,
        req: OrderRequest,
    },
    CancelReplace {
        old: u64,
        new: u64,
        body: CancelReplaceRequest,
    },
    Cancel {
        cid: u64,
        req: CancelRequest,
    },
    Lookup {
        cid: u64,
        nonce: u64,
    },
}

pub(super) struct CitrexSide {
    pub(super) client: Arc<CitrexClient>,
    pub(super) product: ProductSpec,
    nonces: Nonces,
    pub(super) orders: BTreeMap<u64, Track>,
    by_venue: BTreeMap<String, u64>,
    /// Trade ids of the fill pushes already booked: a push sent twice is booked once.
    seen_trades: BTreeSet<String>,
    expiration_s: u64,
    pub(super) dry_run: bool,
}

impl CitrexSide {
    /// Nonces start above `nonce_floor`, the highest one journaled before.
    pub(super) fn new(
        client: Arc<CitrexClient>,
        product: ProductSpec,
        nonce_floor: u64,
        expiration_s: u64,
        dry_run: bool,
    ) -> CitrexSide {
        CitrexSide {
            client,
            product,
            nonces: Nonces::after(nonce_floor),
            orders: BTreeMap::new(),
            by_venue: BTreeMap::new(),
            seen_trades: BTreeSet::new(),
            expiration_s,
            dry_run,
        }
    }
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The highest order nonce journaled by earlier live sessions, so a restart never reuses one.
pub(super) fn journaled_nonce(writer: &Writer) -> Result<u64, JournalError> {
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

/// Pairs a repricing cancel with the place that replaces it (same side and level) in one batch,
/// so they can go as one cancel-and-replace.
pub(super) fn replace_pairs(out: &[Emitted], engine: &Engine) -> Vec<(u64, u64)> {
    let mut pairs = Vec::new();
    for e in out {
        let Output::CancelOrder(c) = &e.output else {
            continue;
        };
        if c.why != CancelWhy::Reprice {
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

impl Live {
    /// Signs an order (or a cancel-and-replace) and journals it; returns the call to send after
    /// the flush, or nothing in a dry run.
    pub(super) fn sign_place(
        &mut self,
        p: &PlaceOrder,
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
                residual: req.quantity.to_decimal(),
                cancel_wanted: false,
                done: false,
            },
        );
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
                Ok(Some(VenueCall::CancelReplace {
                    old,
                    new: cid,
                    body,
                }))
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
                Ok(Some(VenueCall::Place { cid, req }))
            }
        }
    }

    /// Signs a cancel and journals it; returns the call to send after the flush, or nothing in
    /// a dry run or while the order has no venue id yet (it is canceled when it gets one).
    pub(super) fn sign_cancel(
        &mut self,
        cid: u64,
        seq: u64,
    ) -> Result<Option<VenueCall>, LiveError> {
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
        Ok(Some(VenueCall::Cancel { cid, req }))
    }

    /// A cancel outside a batch: signed, journaled, on disk, then sent.
    fn cancel_alone(&mut self, cid: u64, seq: u64) -> Result<(), LiveError> {
        if let Some(call) = self.sign_cancel(cid, seq)? {
            self.flush(true)?;
            self.send(call);
        }
        Ok(())
    }

    /// Runs a venue call in the background; its answer comes back on the reply channel.
    pub(super) fn send(&mut self, call: VenueCall) {
        let Some(c) = self.citrex.as_ref() else {
            return;
        };
        let client = c.client.clone();
        let tx = self.replies.clone();
        // Finished calls are reaped here so the set holds only what is in flight.
        while self.venue_calls.try_join_next().is_some() {}
        self.venue_calls.spawn(async move {
            let reply = match call {
                VenueCall::Place { cid, req } => {
                    let result = client.place(&req).await;
                    Reply::Placed { cid, result }
                }
                VenueCall::CancelReplace { old, new, body } => {
                    let result = client.cancel_replace(&body).await;
                    Reply::Replaced { old, new, result }
                }
                VenueCall::Cancel { cid, req } => {
                    let result = client.cancel(&req).await.map(|_| ());
                    Reply::Canceled { cid, result }
                }
                VenueCall::Lookup { cid, nonce } => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let found = client
                        .open_orders()
                        .await
                        .map(|v| v.into_iter().find(|o| o.nonce == nonce));
                    Reply::Resolved { cid, found }
                }
            };
            let _ = tx.send(reply).await;
        });
    }

    fn track_input(&mut self, cid: u64, input: Input) -> Result<(), LiveError> {
        let cause = self.place_seq.get(&cid).copied();
        self.input(input, None, cause, None)
    }

    pub(super) fn on_reply(&mut self, reply: Reply) -> Result<(), LiveError> {
        match reply {
            Reply::Predicted(resp) => {
                let ok = resp.result.is_ok();
                self.metrics.llm(ok, resp.cost_usd.to_f64().unwrap_or(0.0));
                // A local predictor answers in no time: its "latency" is not the model's.
                if matches!(resp.source, flashmm_core::event::PredictorKind::Azure) {
                    self.metrics
                        .record(Latency::Llm, resp.latency_ms * 1_000_000);
                }
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
                        self.cancel_alone(old, seq)?;
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
                    // The order is not in the state we think (filled, already gone): read the
                    // account back rather than wait for a push that may never come.
                    self.wire(
                        WireAction::Failure,
                        Some(cid),
                        None,
                        format!("cancel failed: {e}; reading the venue's orders and position"),
                        true,
                        self.place_seq.get(&cid).copied(),
                    )?;
                    self.check_account("a cancel was refused", 0, Duration::ZERO);
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
                    self.cancel_alone(cid, seq)?;
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
                let cause = self.place_seq.get(&cid).copied();
                self.wire(
                    WireAction::Failure,
                    Some(cid),
                    Some(nonce),
                    format!("outcome unknown ({e}); checking open orders"),
                    true,
                    cause,
                )?;
                self.send(VenueCall::Lookup { cid, nonce });
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

    pub(super) fn gone(&mut self, cid: u64, reason: &str) -> Result<(), LiveError> {
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

    /// The venue says order `cid` has `leaves` left: returns how much filled since we last knew
    /// (zero if nothing new), and remembers the new residual.
    fn learn_residual(&mut self, cid: u64, leaves: Decimal) -> Decimal {
        let Some(t) = self.citrex.as_mut().and_then(|c| c.orders.get_mut(&cid)) else {
            return Decimal::ZERO;
        };
        let filled = (t.residual - leaves).max(Decimal::ZERO);
        if leaves < t.residual {
            t.residual = leaves;
        }
        if t.residual <= Decimal::ZERO {
            t.done = true;
        }
        if filled > Decimal::ZERO {
            self.account_fills += 1;
        }
        filled
    }

    /// Our order as the venue lists it (a push or a REST read): some venues show a fill only
    /// as a lower residual. Book what filled since we last knew, at the order's price (a resting
    /// order fills at its own price), once.
    pub(super) fn residual_fill(
        &mut self,
        cid: u64,
        o: &VenueOrder,
        received: Option<Instant>,
    ) -> Result<(), LiveError> {
        let Some(fee_rate) = self.citrex.as_ref().map(|c| c.product.maker_fee) else {
            return Ok(());
        };
        let (price, leaves) = (o.price.to_decimal(), o.residual_quantity.to_decimal());
        let filled = self.learn_residual(cid, leaves);
        if filled <= Decimal::ZERO {
            return Ok(());
        }
        let fill = Fill {
            cid,
            side: if o.is_buy { Side::Buy } else { Side::Sell },
            price,
            qty: filled,
            liquidity: Liquidity::Maker,
            fee: filled * price * fee_rate,
            leaves_qty: leaves,
        };
        let cause = self.place_seq.get(&cid).copied();
        self.input(Input::Fill(fill), None, cause, received)
    }

    /// Which of our orders the venue's order is, by its id or our nonce.
    pub(super) fn cid_of(&self, o: &VenueOrder) -> Option<u64> {
        let c = self.citrex.as_ref()?;
        c.by_venue.get(&o.id).copied().or_else(|| {
            c.orders
                .iter()
                .find(|(_, t)| t.nonce == o.nonce)
                .map(|(cid, _)| *cid)
        })
    }

    pub(super) fn on_account(
        &mut self,
        update: AccountUpdate,
        received: Instant,
    ) -> Result<(), LiveError> {
        let Some(c) = self.citrex.as_mut() else {
            return Ok(());
        };
        match update {
            AccountUpdate::Order(o) => {
                let Some(cid) = self.cid_of(&o) else {
                    return Ok(());
                };
                let acked = self
                    .citrex
                    .as_ref()
                    .and_then(|c| c.orders.get(&cid))
                    .is_some_and(|t| t.venue_id.is_some());
                if !acked && !matches!(o.status, OrderStatus::Rejected) {
                    self.placed(cid, Ok(o.clone()))?;
                }
                self.residual_fill(cid, &o, Some(received))?;
                match o.status {
                    OrderStatus::Open | OrderStatus::Pending => self.placed(cid, Ok(o)),
                    OrderStatus::Cancelled => self.gone(cid, "canceled"),
                    OrderStatus::Expired => self.gone(cid, "expired"),
                    OrderStatus::Rejected => self.rejected(cid, "rejected by the venue".into()),
                    OrderStatus::Filled => Ok(()),
                }
            }
            AccountUpdate::Fill(f) => {
                if !c.seen_trades.insert(f.trade_id.clone()) {
                    return Ok(()); // the same push again
                }
                let cid = c.by_venue.get(&f.order_id).copied().unwrap_or(0);
                let leaves = f.residual_quantity.to_decimal();
                // Each fill once: what an order push already showed is not booked again.
                let qty = if c.orders.contains_key(&cid) {
                    self.learn_residual(cid, leaves)
                } else {
                    self.account_fills += 1;
                    f.quantity.to_decimal()
                };
                if qty <= Decimal::ZERO {
                    return Ok(());
                }
                let fill = Fill {
                    cid,
                    side: if f.is_buy { Side::Buy } else { Side::Sell },
                    price: f.price.to_decimal(),
                    qty,
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
}
