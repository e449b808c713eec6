//! A depth frame in, the signed order request body out, in process (no fsync, no network):
//! parse the Citrex frame, the core's decision, EIP-712 signing, the JSON body.
//!
//! cargo bench --bench live
//!
//! Besides criterion's figures it prints p50/p99/max from an HDR histogram of every iteration.

use criterion::{criterion_group, criterion_main, Criterion};
use flashmm_core::event::{Body, Entry, Input, OrderAck, OrderCanceled, Output, Symbol};
use flashmm_core::Engine;
use flashmm_venue::citrex::client::{CitrexClient, ProductSpec};
use flashmm_venue::citrex::eip712::Signer;
use flashmm_venue::citrex::tracker::{Command, Event, Tracker, TrackerConfig};
use flashmm_venue::citrex::wire::{Depth, OrderStatus, StreamPush, VenueOrder, E18};
use flashmm_venue::feed::citrex::{snapshot, RawPush};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "0x36f973d09569752528d6d2033f635b57dad67d3c3d1a42cb196010b266d52c4f";

fn frame(mid: i64) -> String {
    let e = |d: Decimal| E18::from_decimal(d).expect("e18");
    let row = |p: i64, i: i64| {
        vec![
            e(Decimal::from(p)),
            e(dec!(0.5) + Decimal::from(i)),
            e(Decimal::from(i + 1)),
        ]
    };
    let d = Depth {
        bids: (0..20).map(|i| row(mid - 1 - i, i)).collect(),
        asks: (0..20).map(|i| row(mid + 1 + i, i)).collect(),
    };
    serde_json::to_string(&StreamPush {
        id: "btcperp@depth20_10".into(),
        success: true,
        result: serde_json::to_value(d).expect("json"),
    })
    .expect("json")
}

fn benches(c: &mut Criterion) {
    let cfg = flashmm::config::load(
        None,
        &[
            "market.symbol=\"BTCPERP\"".into(),
            "market.tick_size=\"1\"".into(),
            "market.lot_size=\"0.001\"".into(),
            "market.min_qty=\"0.001\"".into(),
            "strategy.levels=1".into(),
            "strategy.min_refresh_ms=0".into(),
            // The test book jumps 40 ticks every frame, which would trip the kill switch.
            "risk.kill_min_move_bps=10000".into(),
        ],
    )
    .expect("config");
    let signer = Arc::new(Signer::from_hex(KEY).expect("key"));
    let citrex = CitrexClient::new(&cfg.citrex, Some(signer)).expect("client");
    let product = ProductSpec {
        id: 1003,
        symbol: "btcperp".into(),
        tick: dec!(1),
        min_qty: dec!(0.001),
        maker_fee: dec!(0),
        taker_fee: dec!(0),
    };
    let symbol = Symbol::new("BTCPERP").expect("symbol");
    // Two books 40 ticks apart, so every frame moves the quote beyond the refresh tolerance.
    let frames = [frame(60_000), frame(60_040)];
    let mut engine = Engine::new(&cfg);
    let mut seq = 0u64;
    let mut ts = 1_723_161_600_000_000_000i64;
    // The live path: the core's orders go through the tracker, which names nonces and asks
    // for the requests that are signed.
    let mut tracker = Tracker::new(
        TrackerConfig {
            product: product.clone(),
            nonce_floor: 0,
            expiration_s: 86_400,
            reconcile_every_ms: 5_000,
            dry_run: false,
            settle_ms: 1_500,
        },
        ts,
    );
    let acked = |cid: u64, nonce: u64| VenueOrder {
        id: format!("0x{cid:064x}"),
        account: String::new(),
        sub_account_id: 1,
        product_id: 1003,
        product_symbol: "btcperp".into(),
        is_buy: true,
        order_type: 1,
        time_in_force: 0,
        price: E18(0),
        quantity: E18(0),
        residual_quantity: E18(0),
        nonce,
        expiry: 0,
        status: OrderStatus::Open,
        created_at: 0,
    };
    let mut out = Vec::new();
    let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut bodies = 0u64;
    let mut one = |engine: &mut Engine, text: &str, bodies: &mut u64| -> Duration {
        let start = Instant::now();
        let push: RawPush = serde_json::from_str(text).expect("frame");
        let depth: Depth = serde_json::from_str(push.result.expect("result").get()).expect("depth");
        seq += 1;
        ts += 100_000_000;
        let e = Entry {
            seq,
            ts_ns: ts,
            venue_ts_ns: None,
            session: 1,
            cause: None,
            body: Body::Input(snapshot(symbol, seq, &depth)),
        };
        engine.on_event(&e, &mut out);
        let mut first = None;
        let mut reports = Vec::new();
        // A repricing cancel and the place on its side and level go as one cancel-and-replace,
        // as live pairs them.
        let repriced: Vec<(u64, flashmm_core::event::Side, u8)> = out
            .iter()
            .filter_map(|em| match &em.output {
                Output::CancelOrder(c) => {
                    engine.orders().get(c.cid).map(|o| (c.cid, o.side, o.level))
                }
                _ => None,
            })
            .collect();
        for em in out.drain(..) {
            match em.output {
                Output::PlaceOrder(p) => {
                    let old = repriced
                        .iter()
                        .find(|(_, side, level)| *side == p.side && *level == p.level)
                        .map(|(cid, _, _)| *cid);
                    tracker.place(&p, old, ts);
                }
                Output::CancelOrder(c) => {
                    if !repriced.iter().any(|(cid, _, _)| *cid == c.cid) {
                        tracker.cancel(c.cid);
                    }
                    reports.push(Input::OrderCanceled(OrderCanceled {
                        cid: c.cid,
                        canceled_qty: Decimal::ZERO,
                        reason: String::new(),
                    }))
                }
                _ => {}
            }
        }
        while let Some(cmd) = tracker.poll_command(ts) {
            match cmd {
                Command::Place {
                    cid,
                    nonce,
                    expiration_ms,
                    order,
                } => {
                    let req = citrex
                        .sign_order(&product, &order, nonce, expiration_ms)
                        .expect("sign");
                    let body = serde_json::to_string(&req).expect("body");
                    *bodies += body.len() as u64;
                    first.get_or_insert_with(|| start.elapsed());
                    reports.push(Input::OrderAck(OrderAck {
                        cid,
                        venue_order_id: format!("0x{cid:064x}"),
                    }));
                    tracker.handle(
                        Event::Placed {
                            cid,
                            result: Ok(acked(cid, nonce)),
                        },
                        ts,
                    );
                }
                Command::CancelReplace {
                    old,
                    old_venue_id,
                    new,
                    nonce,
                    expiration_ms,
                    order,
                } => {
                    let body = flashmm_venue::citrex::wire::CancelReplaceRequest {
                        id_to_cancel: old_venue_id,
                        new_order: citrex
                            .sign_order(&product, &order, nonce, expiration_ms)
                            .expect("sign"),
                    };
                    *bodies += serde_json::to_string(&body).expect("body").len() as u64;
                    first.get_or_insert_with(|| start.elapsed());
                    reports.push(Input::OrderAck(OrderAck {
                        cid: new,
                        venue_order_id: format!("0x{new:064x}"),
                    }));
                    tracker.handle(
                        Event::Replaced {
                            old,
                            new,
                            result: Ok(acked(new, nonce)),
                        },
                        ts,
                    );
                }
                Command::Cancel { cid, venue_id } => {
                    let req = citrex.sign_cancel(product.id, &venue_id).expect("sign");
                    *bodies += serde_json::to_string(&req).expect("body").len() as u64;
                    tracker.handle(
                        Event::Canceled {
                            cid,
                            result: Ok(()),
                        },
                        ts,
                    );
                }
                _ => {}
            }
        }
        while tracker.poll_learned().is_some() {}
        let Some(took) = first else {
            panic!(
                "frame {seq} signed no order: {:?} orders {:?} reports {:?}",
                engine.risk().halted(),
                engine.orders().iter().collect::<Vec<_>>(),
                reports
            );
        };
        // The venue's answers, outside the timing: the next frame starts from a settled book.
        for input in reports {
            seq += 1;
            let e = Entry {
                seq,
                ts_ns: ts,
                venue_ts_ns: None,
                session: 1,
                cause: None,
                body: Body::Input(input),
            };
            engine.on_event(&e, &mut out);
            out.clear();
        }
        took
    };
    // Warm up: the first frame validates the book and places the first quotes.
    let mut i = 0usize;
    for _ in 0..10 {
        i += 1;
        one(&mut engine, &frames[i % 2], &mut bodies);
    }
    c.bench_function("depth_frame_to_signed_order", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let d = one(&mut engine, &frames[i % 2], &mut bodies);
                let _ = hist.record(d.as_nanos() as u64);
                total += d;
            }
            total
        })
    });
    // Where the time goes, measured apart.
    let mut parse = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut sign = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let p = flashmm_core::event::PlaceOrder {
        cid: 1,
        symbol,
        side: flashmm_core::event::Side::Buy,
        price: dec!(59990),
        qty: dec!(0.001),
        post_only: true,
        level: 0,
    };
    for k in 0..2000u64 {
        let t = Instant::now();
        let push: RawPush = serde_json::from_str(&frames[(k % 2) as usize]).expect("frame");
        let _depth: Depth =
            serde_json::from_str(push.result.expect("result").get()).expect("depth");
        let _ = parse.record(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        let req = citrex
            .sign_order(&product, &p, 1_000_000 + k, 1_800_000_000_000)
            .expect("sign");
        let _body = serde_json::to_string(&req).expect("body");
        let _ = sign.record(t.elapsed().as_nanos() as u64);
    }
    let us = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "depth frame -> first signed order body: p50 {:.1} us, p99 {:.1} us, max {:.1} us over {} frames",
        us(&hist, 0.5),
        us(&hist, 0.99),
        hist.max() as f64 / 1e3,
        hist.len()
    );
    println!(
        "  parsing the 20-level JSON frame: p50 {:.1} us, p99 {:.1} us",
        us(&parse, 0.5),
        us(&parse, 0.99)
    );
    println!(
        "  EIP-712 signing + JSON body, one order: p50 {:.1} us, p99 {:.1} us",
        us(&sign, 0.5),
        us(&sign, 0.99)
    );
}

criterion_group!(live, benches);
criterion_main!(live);
