//! The driver's side of the order tracker: it signs and journals what the tracker asks for,
//! sends it once the batch is on disk, hands the venue's answers back, and turns what the
//! tracker learned into journaled inputs for the core. The rules live in
//! `flashmm_venue::citrex::tracker`; nothing here decides.

use super::metrics::Latency;
use super::{Live, LiveError};
use flashmm_core::event::{
    Body, CancelWhy, Input, Mode, OrderAck, OrderCanceled, OrderReject, Output, PositionSync,
    PredictionResponse, WireAction,
};
use flashmm_core::{Emitted, Engine};
use flashmm_journal::{JournalError, Writer};
use flashmm_venue::citrex::client::{CitrexClient, VenueError};
use flashmm_venue::citrex::tracker::{Command, Event, Learned, Tracker};
use flashmm_venue::citrex::wire::{
    CancelAllRequest, CancelReplaceRequest, CancelRequest, OrderRequest,
};
use rust_decimal::prelude::ToPrimitive;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What comes back to the loop from work it started.
pub(super) enum Reply {
    Venue(Event),
    Predicted(Box<PredictionResponse>),
}

/// A request signed and journaled, to be sent once the batch is on disk.
pub(super) enum Call {
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
    ReadAccount {
        read: u64,
    },
    CancelAll {
        req: CancelAllRequest,
    },
    ReadOpenOrders,
}

pub(super) struct CitrexSide {
    pub(super) client: Arc<CitrexClient>,
    pub(super) tracker: Tracker,
    pub(super) dry_run: bool,
    /// When each placement left, for the acknowledgement latency.
    sent_at: BTreeMap<u64, Instant>,
}

impl CitrexSide {
    pub(super) fn new(client: Arc<CitrexClient>, tracker: Tracker, dry_run: bool) -> CitrexSide {
        CitrexSide {
            client,
            tracker,
            dry_run,
            sent_at: BTreeMap::new(),
        }
    }
}

/// A cancel-all that hangs must not hold the stop forever.
const CANCEL_ALL_TIMEOUT: Duration = Duration::from_secs(10);

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

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Live {
    /// Tells the tracker what happened and acts on what follows.
    pub(super) fn tell(&mut self, ev: Event, received: Option<Instant>) -> Result<(), LiveError> {
        let now = self.clock.wall();
        let Some(c) = self.citrex.as_mut() else {
            return Ok(());
        };
        c.tracker.handle(ev, now);
        self.pump(received)
    }

    /// Until the tracker has nothing more: what it learned goes to the journal and the core;
    /// what it asks for is signed and journaled, flushed once, then sent.
    pub(super) fn pump(&mut self, received: Option<Instant>) -> Result<(), LiveError> {
        if self.pumping {
            return Ok(()); // the outer pump picks up whatever this step added
        }
        self.pumping = true;
        let r = self.pump_all(received);
        self.pumping = false;
        r
    }

    fn pump_all(&mut self, received: Option<Instant>) -> Result<(), LiveError> {
        loop {
            let mut busy = false;
            while let Some(l) = self.citrex.as_mut().and_then(|c| c.tracker.poll_learned()) {
                busy = true;
                self.apply(l, received)?;
            }
            let now = self.clock.wall();
            let mut calls = Vec::new();
            while let Some(cmd) = self
                .citrex
                .as_mut()
                .and_then(|c| c.tracker.poll_command(now))
            {
                busy = true;
                if let Some(call) = self.prepare(cmd)? {
                    calls.push(call);
                }
            }
            if !calls.is_empty() {
                // The intent is on disk before the order leaves.
                self.flush(true)?;
                if let Some(decided) = self.decided.take() {
                    self.metrics
                        .record(Latency::DecisionToWire, decided.elapsed().as_nanos() as u64);
                }
                for call in calls {
                    self.send(call);
                }
            }
            if !busy {
                return Ok(());
            }
        }
    }

    fn cause_of(&self, cid: u64) -> Option<u64> {
        self.place_seq.get(&cid).copied()
    }

    fn apply(&mut self, l: Learned, received: Option<Instant>) -> Result<(), LiveError> {
        match l {
            Learned::Ack { cid, venue_id } => {
                if let Some(t) = self.citrex.as_mut().and_then(|c| c.sent_at.remove(&cid)) {
                    self.metrics
                        .record(Latency::OrderAck, t.elapsed().as_nanos() as u64);
                }
                let input = Input::OrderAck(OrderAck {
                    cid,
                    venue_order_id: venue_id,
                });
                self.input(input, None, self.cause_of(cid), None)
            }
            Learned::Fill {
                fill,
                venue_ts_ns,
                pushed,
            } => {
                let cause = self.cause_of(fill.cid);
                let received = if pushed { received } else { None };
                self.input(Input::Fill(fill), venue_ts_ns, cause, received)
            }
            Learned::Canceled { cid, qty, reason } => {
                let input = Input::OrderCanceled(OrderCanceled {
                    cid,
                    canceled_qty: qty,
                    reason,
                });
                self.input(input, None, self.cause_of(cid), None)
            }
            Learned::Rejected { cid, reason } => {
                let input = Input::OrderReject(OrderReject { cid, reason });
                self.input(input, None, self.cause_of(cid), None)
            }
            Learned::PositionSync {
                qty,
                avg_price,
                note,
                ..
            } => {
                let input = Input::PositionSync(PositionSync {
                    symbol: self.symbol,
                    qty,
                    avg_price,
                    note,
                });
                self.input(input, None, None, None)
            }
            Learned::Note {
                action,
                cid,
                nonce,
                text,
                sent,
            } => {
                let cause = cid.and_then(|c| self.cause_of(c));
                self.wire(action, cid, nonce, text, sent, cause).map(|_| ())
            }
            Learned::Reconciled { venue_qty, adopted } => {
                // Last of a check, so whoever sees the count knows all of it is journaled.
                self.metrics
                    .reconciled(venue_qty.to_f64().unwrap_or(0.0), adopted);
                Ok(())
            }
        }
    }

    /// Signs and journals what the tracker asks for; returns the call to send after the
    /// flush, or nothing in a dry run.
    fn prepare(&mut self, cmd: Command) -> Result<Option<Call>, LiveError> {
        let Some(c) = self.citrex.as_mut() else {
            return Ok(None);
        };
        let (dry, client) = (c.dry_run, c.client.clone());
        let product = c.tracker.product().clone();
        match cmd {
            Command::Place {
                cid,
                nonce,
                expiration_ms,
                order,
            } => {
                let req = match client.sign_order(&product, &order, nonce, expiration_ms) {
                    Ok(r) => r,
                    Err(e) => return self.unsigned(cid, nonce, e),
                };
                let cause = self.cause_of(cid);
                self.wire(
                    WireAction::Place,
                    Some(cid),
                    Some(nonce),
                    json(&req),
                    !dry,
                    cause,
                )?;
                Ok((!dry).then_some(Call::Place { cid, req }))
            }
            Command::CancelReplace {
                old,
                old_venue_id,
                new,
                nonce,
                expiration_ms,
                order,
            } => {
                let new_order = match client.sign_order(&product, &order, nonce, expiration_ms) {
                    Ok(r) => r,
                    Err(e) => return self.unsigned(new, nonce, e),
                };
                let body = CancelReplaceRequest {
                    id_to_cancel: old_venue_id,
                    new_order,
                };
                let cause = self.cause_of(new);
                let text = json(&body);
                self.wire(
                    WireAction::CancelReplace,
                    Some(new),
                    Some(nonce),
                    text,
                    !dry,
                    cause,
                )?;
                Ok((!dry).then_some(Call::CancelReplace { old, new, body }))
            }
            Command::Cancel { cid, venue_id } => {
                let req = client.sign_cancel(product.id, &venue_id)?;
                let cause = self.cause_of(cid);
                self.wire(WireAction::Cancel, Some(cid), None, json(&req), !dry, cause)?;
                Ok((!dry).then_some(Call::Cancel { cid, req }))
            }
            Command::CancelAll => {
                let req = client.sign_cancel_all(product.id)?;
                self.wire(WireAction::CancelAll, None, None, json(&req), !dry, None)?;
                Ok((!dry).then_some(Call::CancelAll { req }))
            }
            Command::Lookup { cid, nonce } => Ok(Some(Call::Lookup { cid, nonce })),
            Command::ReadAccount { read } => Ok(Some(Call::ReadAccount { read })),
            Command::ReadOpenOrders => Ok(Some(Call::ReadOpenOrders)),
        }
    }

    /// An order that could not be signed never leaves: journal why, and the core hears it was
    /// refused.
    fn unsigned(&mut self, cid: u64, nonce: u64, e: VenueError) -> Result<Option<Call>, LiveError> {
        let reason = e.to_string();
        let cause = self.cause_of(cid);
        self.wire(
            WireAction::Failure,
            Some(cid),
            Some(nonce),
            reason,
            false,
            cause,
        )?;
        let now = self.clock.wall();
        if let Some(c) = self.citrex.as_mut() {
            c.tracker.handle(
                Event::Placed {
                    cid,
                    result: Err(e),
                },
                now,
            );
        }
        Ok(None)
    }

    /// Runs a venue call in the background; its answer comes back on the reply channel.
    pub(super) fn send(&mut self, call: Call) {
        let Some(c) = self.citrex.as_mut() else {
            return;
        };
        if let Call::Place { cid, .. } | Call::CancelReplace { new: cid, .. } = &call {
            c.sent_at.insert(*cid, Instant::now());
        }
        let client = c.client.clone();
        let tx = self.replies.clone();
        // Finished calls are reaped here so the set holds only what is in flight.
        while self.venue_calls.try_join_next().is_some() {}
        self.venue_calls.spawn(async move {
            let ev = match call {
                Call::Place { cid, req } => Event::Placed {
                    cid,
                    result: client.place(&req).await,
                },
                Call::CancelReplace { old, new, body } => Event::Replaced {
                    old,
                    new,
                    result: client.cancel_replace(&body).await,
                },
                Call::Cancel { cid, req } => Event::Canceled {
                    cid,
                    result: client.cancel(&req).await.map(|_| ()),
                },
                Call::Lookup { cid, nonce } => Event::LookedUp {
                    cid,
                    found: client
                        .open_orders()
                        .await
                        .map(|v| v.into_iter().find(|o| o.nonce == nonce)),
                },
                Call::ReadAccount { read } => {
                    let snapshot = match client.open_orders().await {
                        Ok(open) => client.positions().await.map(|p| (open, p)),
                        Err(e) => Err(e),
                    };
                    Event::AccountRead { read, snapshot }
                }
                Call::CancelAll { req } => {
                    let r = tokio::time::timeout(CANCEL_ALL_TIMEOUT, client.cancel_all(&req)).await;
                    Event::CanceledAll(match r {
                        Ok(r) => r.map(|_| ()),
                        Err(_) => Err(VenueError::Connection(format!(
                            "no answer within {} s",
                            CANCEL_ALL_TIMEOUT.as_secs()
                        ))),
                    })
                }
                Call::ReadOpenOrders => Event::StopRead(client.open_orders().await),
            };
            let _ = tx.send(Reply::Venue(ev)).await;
        });
    }
}
