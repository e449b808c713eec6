//! The live engine against a Citrex that behaves like an independent implementation of the
//! venue: account pushes in the market streams' envelope with fills shown only as residuals,
//! refused subscriptions, failing REST reads, 429s at stop. Each test is one defect of issue 10.

use crate::common::{wait_for, wait_for_async, PATIENCE};
use crate::live::{
    best_quote, entries, free_port, metric, replays_clean, sets, signer, world, World,
};
use flashmm::mode::live::{self, LiveArgs, LiveOutcome, LivePredictor, VenueMode};
use flashmm_core::event::*;
use flashmm_core::signal::rules::Rules;
use flashmm_journal::Journal;
use flashmm_testkit::citrex::AccountEnvelope;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type Engine = JoinHandle<Result<LiveOutcome, live::LiveError>>;

fn start(w: &World, venue: VenueMode, extra: &[&str]) -> (watch::Sender<bool>, Engine) {
    let mut s = sets(w);
    s.extend(extra.iter().map(|x| x.to_string()));
    let (tx, rx) = watch::channel(false);
    let args = LiveArgs {
        cfg: flashmm::config::load(None, &s).unwrap(),
        venue,
        predictor: LivePredictor::Local(Box::new(Rules {
            signal_bps: dec!(2),
        })),
        run_for: Some(Duration::from_secs(60)),
        stop: Some(rx),
    };
    let writer = Journal::open(w.dir.path()).unwrap().writer().unwrap();
    (tx, tokio::spawn(live::run(writer, args)))
}

fn statuses(es: &[Entry]) -> Vec<String> {
    es.iter()
        .filter_map(|e| match &e.body {
            Body::Input(Input::FeedStatus(s)) => Some(s.detail.clone()),
            _ => None,
        })
        .collect()
}

fn wires(es: &[Entry], action: WireAction) -> Vec<String> {
    es.iter()
        .filter_map(|e| match &e.body {
            Body::Wire(w) if w.action == action => Some(w.body.clone()),
            _ => None,
        })
        .collect()
}

/// The engine's position rebuilt from the journal: fills, and venue reads adopted.
fn engine_position(es: &[Entry]) -> Decimal {
    let mut q = Decimal::ZERO;
    for e in es {
        match &e.body {
            Body::Input(Input::Fill(f)) => q += f.side.sign() * f.qty,
            Body::Input(Input::PositionSync(p)) => q = p.qty,
            _ => {}
        }
    }
    q
}

fn venue_position(w: &World) -> Decimal {
    w.fake
        .positions(signer().address())
        .iter()
        .map(|p| p.quantity.to_decimal())
        .sum()
}

/// `start` with the metrics endpoint served on a free port, which it returns.
fn start_served(w: &World, venue: VenueMode, extra: &[&str]) -> (u16, watch::Sender<bool>, Engine) {
    let port = free_port();
    let addr = format!("live.metrics_addr=\"127.0.0.1:{port}\"");
    let mut all = extra.to_vec();
    all.push(&addr);
    let (tx, engine) = start(w, venue, &all);
    (port, tx, engine)
}

async fn stop(tx: watch::Sender<bool>, engine: Engine) -> LiveOutcome {
    tx.send(true).unwrap();
    engine.await.unwrap().unwrap()
}

/// Defect 1: pushes as `{"id":"account.updates","success":true,"result":<Order>}`, fills only
/// as a lower residual. Every fill reaches the engine once, and its position is the venue's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_shown_only_as_residuals_in_the_result_envelope_reach_the_engine() {
    let w = world().await;
    w.fake.set_account_pushes(AccountEnvelope::Result, false);
    let (tx, engine) = start(&w, VenueMode::Citrex(signer()), &[]);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    let bid = best_quote(&w, true);
    let sent = w.fake.requests().len();
    w.fake
        .trade("btcperp", bid - Decimal::ONE, dec!(0.001), false);
    wait_for(PATIENCE, "the venue to hold the fill", || {
        venue_position(&w) > Decimal::ZERO
    })
    .await;
    let venue = venue_position(&w);
    // The engine answers the fill with new quotes; the journal is read once it has stopped.
    wait_for(PATIENCE, "the filled level placed again", || {
        w.fake.requests()[sent..]
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/order"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(tx, engine).await;
    let es = entries(w.dir.path()).1;
    let fills: Vec<&Fill> = es
        .iter()
        .filter_map(|e| match &e.body {
            Body::Input(Input::Fill(f)) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(
        fills.iter().map(|f| f.qty).sum::<Decimal>(),
        venue,
        "each fill booked once: {fills:?}"
    );
    assert!(fills.iter().all(|f| f.price == bid && f.cid != 0));
    assert!(
        !statuses(&es).iter().any(|s| s.contains("missing field")),
        "no push was refused as malformed: {:?}",
        statuses(&es)
    );
    replays_clean(&entries(w.dir.path()).0);
}

/// Defect 1: a cancel the venue refuses (the order is not open any more) starts an account read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cancel_reads_the_account_back() {
    let w = world().await;
    let (port, tx, engine) = start_served(&w, VenueMode::Citrex(signer()), &[]);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    w.fake.fail_next("DELETE", "/order", 400, 100);
    // A stale feed pulls the quotes one cancel at a time; every cancel is refused.
    w.fake.pause_market(true);
    wait_for(PATIENCE, "a refused cancel", || {
        w.fake
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("/order") && r.status == 400)
    })
    .await;
    // The engine counts an account read once what it found is journaled.
    wait_for_async(PATIENCE, "the account read that follows", || async move {
        metric(port, "flashmm_reconciliations_total")
            .await
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    w.fake.pause_market(false);
    stop(tx, engine).await;
    let es = entries(w.dir.path()).1;
    let checks = wires(&es, WireAction::Reconcile);
    assert!(
        checks.iter().any(|c| c.contains("a cancel was refused")),
        "{checks:?}"
    );
}

fn open_order_reads(w: &World) -> usize {
    w.fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/openOrders"))
        .count()
}

/// Defect 2: order requests still retrying a 429 when the stop comes must not land after the
/// final cancel-all. The stop aborts them, cancels, and reads the venue until it lists none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_429_retries_leaves_no_order_resting() {
    let w = world().await;
    // Every placement is refused with retry-after 1 s, twice: the retries are still waiting
    // when the stop comes.
    w.fake.fail_next("POST", "/order", 429, 12);
    let (tx, engine) = start(&w, VenueMode::Citrex(signer()), &[]);
    wait_for(PATIENCE, "the first refused placements", || {
        w.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.status == 429)
            .count()
            >= 6
    })
    .await;
    let outcome = stop(tx, engine).await;
    assert_eq!(outcome.status, SessionStatus::Completed);
    // Long enough for any retry that was not stopped to land (retry-after is 1 s).
    let me = signer().address();
    let end = tokio::time::Instant::now() + Duration::from_millis(2_500);
    while tokio::time::Instant::now() < end {
        assert!(
            w.fake.open_orders(me).is_empty(),
            "an order landed after the stop: {:?}",
            w.fake.open_orders(me)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let es = entries(w.dir.path()).1;
    let end = es
        .iter()
        .find_map(|e| match &e.body {
            Body::SessionEnd(s) => Some(s.note.clone()),
            _ => None,
        })
        .unwrap();
    assert!(end.contains("the venue lists none"), "{end}");
    // Nothing was still trying to place once the stop began canceling.
    let rs = w.fake.requests();
    let cancel_all = rs
        .iter()
        .position(|r| r.method == "DELETE" && r.path.ends_with("/openOrders"))
        .expect("a cancel-all at stop");
    let late: Vec<_> = rs[cancel_all..]
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/order"))
        .collect();
    assert!(late.is_empty(), "placements after the cancel-all: {late:?}");
}

/// Defect 3: a venue that wants `"jsonrpc":"2.0"` on every frame accepts our subscription; one
/// that refuses every subscription is backed off from, not reconnected to in a storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_carry_jsonrpc_and_a_refusal_backs_off() {
    let w = world().await;
    w.fake.refuse_subscriptions(false, true);
    let (tx, engine) = start(&w, VenueMode::Citrex(signer()), &[]);
    let me = signer().address();
    wait_for(PATIENCE, "quotes on a venue that wants jsonrpc", || {
        w.fake.open_orders(me).len() == 6
    })
    .await;
    stop(tx, engine).await;
    assert!(
        !statuses(&entries(w.dir.path()).1)
            .iter()
            .any(|s| s.contains("refused the subscription")),
        "{:?}",
        statuses(&entries(w.dir.path()).1)
    );

    let w = world().await;
    w.fake.refuse_subscriptions(true, false);
    let extra = [
        "citrex.reconnect_base_ms=200",
        "citrex.reconnect_max_ms=2000",
    ];
    let (tx, engine) = start(&w, VenueMode::Paper, &extra);
    wait_for(PATIENCE, "a refused subscription", || {
        w.fake.accepted_connections() >= 2
    })
    .await;
    let seen = w.fake.accepted_connections();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let more = w.fake.accepted_connections() - seen;
    stop(tx, engine).await;
    // Backoff 200, 400, 800, 1600, 2000 ms (with jitter): a handful in 3 s. Reconnecting on
    // every refusal at the base delay would be 15.
    assert!(more <= 6, "{more} reconnects in 3 s");
    let es = entries(w.dir.path()).1;
    assert!(
        statuses(&es)
            .iter()
            .any(|s| s.contains("refused the subscription")),
        "{:?}",
        statuses(&es)
    );
    let placed = es
        .iter()
        .filter(|e| matches!(e.body, Body::Output(Output::PlaceOrder(_))))
        .count();
    assert_eq!(
        placed, 0,
        "nothing is quoted while the market stream is refused"
    );
}

/// Defect 4: a failed `GET /depth` after a reconnect is journaled as failed, not as reloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_depth_read_is_not_journaled_as_a_reload() {
    let w = world().await;
    let (tx, engine) = start(&w, VenueMode::Paper, &["citrex.max_retries=0"]);
    wait_for(PATIENCE, "the stream up", || w.fake.connections() >= 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.fake.fail_next("GET", "/depth", 503, 1_000);
    w.fake.drop_connections();
    wait_for(PATIENCE, "the reconnect and its depth read", || {
        w.fake
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/depth") && r.status == 503)
    })
    .await;
    wait_for(PATIENCE, "the stream back", || w.fake.connections() >= 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(tx, engine).await;
    let s = statuses(&entries(w.dir.path()).1);
    assert!(s.iter().any(|d| d.contains("GET /depth failed")), "{s:?}");
    assert!(!s.iter().any(|d| d.contains("book reloaded")), "{s:?}");
}

/// Defect 6: dry-run sessions say so, and a stop without a venue does not claim to cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_paper_sessions_are_labelled_for_what_they_are() {
    let w = world().await;
    let (tx, engine) = start(&w, VenueMode::DryRun(signer()), &[]);
    wait_for(PATIENCE, "the market stream", || w.fake.connections() >= 1).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let outcome = stop(tx, engine).await;
    // The rules predictor answers locally: no model latency is recorded for it.
    assert!(
        outcome
            .metrics
            .render()
            .contains("flashmm_llm_latency_seconds_count 0"),
        "{}",
        outcome.metrics.render()
    );
    let (tx, engine) = start(&w, VenueMode::Paper, &[]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(tx, engine).await;
    let modes: Vec<Mode> = Journal::open(w.dir.path())
        .unwrap()
        .sessions()
        .unwrap()
        .iter()
        .map(|s| s.mode)
        .collect();
    assert_eq!(modes, vec![Mode::DryRun, Mode::Paper]);
    let notes: Vec<String> = entries(w.dir.path())
        .1
        .iter()
        .filter_map(|e| match &e.body {
            Body::SessionEnd(s) => Some(s.note.clone()),
            _ => None,
        })
        .collect();
    assert!(notes[0].contains("no order was sent"), "{notes:?}");
    let es = entries(w.dir.path()).1;
    assert!(
        !wires(&es, WireAction::Place).is_empty(),
        "the dry run signed and journaled its orders"
    );
    assert!(notes[1].contains("no order was at a venue"), "{notes:?}");
    assert!(notes.iter().all(|n| !n.contains("open orders canceled")));
}

/// Defect 6: the position metric follows the engine even while quotes are pulled, and the
/// venue's position from the last account read is exported beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_the_engine_and_venue_positions() {
    let w = world().await;
    let extra = ["citrex.reconcile_interval_ms=300"];
    let (port, tx, engine) = start_served(&w, VenueMode::Citrex(signer()), &extra);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    let ask = best_quote(&w, false);
    w.fake
        .trade("btcperp", ask + Decimal::ONE, dec!(0.001), true);
    wait_for(PATIENCE, "the venue short", || {
        venue_position(&w) < Decimal::ZERO
    })
    .await;
    let venue: f64 = venue_position(&w).to_string().parse().unwrap();
    wait_for_async(
        PATIENCE,
        "two account reads that saw the fill",
        || async move {
            metric(port, "flashmm_reconciliations_total")
                .await
                .is_some_and(|n| n >= 2.0)
                && metric(port, "flashmm_venue_position").await == Some(venue)
        },
    )
    .await;
    let position = metric(port, "flashmm_position").await;
    let difference = metric(port, "flashmm_position_difference").await;
    stop(tx, engine).await;
    assert_eq!(position, Some(venue));
    assert_eq!(difference, Some(0.0));
}

/// Defect 7: a placement the venue carried out but whose answer was lost (a 5xx) is looked up by
/// its nonce and adopted, not placed a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_whose_answer_was_lost_is_found_by_nonce_not_placed_twice() {
    let w = world().await;
    w.fake.fail_next_after("POST", "/order", 503, 1);
    let (tx, engine) = start(&w, VenueMode::Citrex(signer()), &[]);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    wait_for(PATIENCE, "the look-up by nonce", || {
        let rs = w.fake.requests();
        let lost = rs
            .iter()
            .position(|r| r.method == "POST" && r.status == 503);
        lost.is_some_and(|i| rs[i..].iter().any(|r| r.path.ends_with("/openOrders")))
    })
    .await;
    // Let the look-up's answer reach the engine (it would re-place a level it thought lost).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.fake.orders(me).len(), 6, "{:?}", w.fake.orders(me));
    stop(tx, engine).await;
    let es = entries(w.dir.path()).1;
    let acks = es
        .iter()
        .filter(|e| matches!(e.body, Body::Input(Input::OrderAck(_))))
        .count();
    assert_eq!(acks, 6, "the lost one is acknowledged from the look-up");
    assert!(!es.iter().any(|e| matches!(
        &e.body,
        Body::Input(Input::OrderReject(r)) if r.reason.contains("unknown outcome")
    )));
    let nonces = w.fake.nonces(me);
    let mut unique = nonces.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), nonces.len(), "a nonce was reused");
}

/// Defect 7: a fill for an order id we never placed still moves the position, once, even when
/// the venue pushes it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_for_an_unknown_order_moves_the_position_once() {
    let w = world().await;
    let (port, tx, engine) = start_served(&w, VenueMode::Citrex(signer()), &[]);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    let e18 = |d: Decimal| flashmm_venue::citrex::wire::E18::from_decimal(d).unwrap();
    let fill = flashmm_venue::citrex::wire::WsFill {
        order_id: "0xnot-ours".into(),
        product_id: 1003,
        is_buy: true,
        price: e18(dec!(60000)),
        quantity: e18(dec!(0.002)),
        fee: e18(dec!(0.012)),
        is_maker: true,
        residual_quantity: e18(Decimal::ZERO),
        created_at: 1,
        trade_id: "stranger-1".into(),
    };
    w.fake.push_fill(me, 1, fill.clone());
    w.fake.push_fill(me, 1, fill);
    wait_for_async(PATIENCE, "the engine long 0.002", || async move {
        metric(port, "flashmm_position").await == Some(0.002)
    })
    .await;
    // The second push had time to arrive too; it must not count.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(tx, engine).await;
    let (j, es) = entries(w.dir.path());
    let fills: Vec<&Fill> = es
        .iter()
        .filter_map(|e| match &e.body {
            Body::Input(Input::Fill(f)) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(fills.len(), 1, "{fills:?}");
    assert_eq!((fills[0].cid, fills[0].qty), (0, dec!(0.002)));
    assert_eq!(engine_position(&es), dec!(0.002));
    replays_clean(&j);
}

/// Quotes come down while fills the venue has not confirmed move the position past
/// `risk.position_unconfirmed_ms`; a read of the account that agrees confirms them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_position_pulls_the_quotes_until_a_read_confirms_it() {
    let w = world().await;
    let extra = ["risk.position_unconfirmed_ms=1000"];
    let (_, tx, engine) = start_served(&w, VenueMode::Citrex(signer()), &extra);
    let me = signer().address();
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    let bid = best_quote(&w, true);
    w.fake
        .trade("btcperp", bid - Decimal::ONE, dec!(0.001), false);
    // No periodic reads in these tests: nothing confirms the fill, so the quotes come down.
    wait_for(PATIENCE, "quotes pulled", || {
        w.fake.open_orders(me).is_empty()
    })
    .await;
    stop(tx, engine).await;
    let es = entries(w.dir.path()).1;
    let engaged: Vec<bool> = es
        .iter()
        .filter_map(|e| match &e.body {
            Body::Output(Output::RiskAction(a)) if a.kind == RiskKind::PositionUnconfirmed => {
                Some(a.engaged)
            }
            _ => None,
        })
        .collect();
    assert_eq!(engaged.first(), Some(&true), "{engaged:?}");

    // With reads every 300 ms, the fill is confirmed long before a 20 s bound.
    let w = world().await;
    let extra = [
        "risk.position_unconfirmed_ms=20000",
        "citrex.reconcile_interval_ms=300",
    ];
    let (port, tx, engine) = start_served(&w, VenueMode::Citrex(signer()), &extra);
    wait_for(PATIENCE, "quotes", || w.fake.open_orders(me).len() == 6).await;
    let bid = best_quote(&w, true);
    w.fake
        .trade("btcperp", bid - Decimal::ONE, dec!(0.001), false);
    wait_for(PATIENCE, "the venue long", || {
        venue_position(&w) > Decimal::ZERO
    })
    .await;
    let reads = metric(port, "flashmm_reconciliations_total")
        .await
        .unwrap_or(0.0);
    wait_for_async(PATIENCE, "a read after the fill", || async move {
        metric(port, "flashmm_reconciliations_total")
            .await
            .is_some_and(|n| n >= reads + 2.0)
    })
    .await;
    stop(tx, engine).await;
    let es = entries(w.dir.path()).1;
    assert!(es.iter().any(|e| matches!(
        &e.body,
        Body::Input(Input::PositionSync(p)) if p.note.contains("confirms our position")
    )));
    assert!(!es.iter().any(|e| matches!(
        &e.body,
        Body::Output(Output::RiskAction(a)) if a.kind == RiskKind::PositionUnconfirmed
    )));
    replays_clean(&entries(w.dir.path()).0);
}
