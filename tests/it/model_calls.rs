//! Issue 13, defect 1 and parts of 4 and 5: one owner of each model call's lifetime. The core
//! giving up on a call does not end it: the call keeps its in-flight slot and its worst-case
//! reservation until the driver reports its end, so `predict.max_in_flight` and the budget
//! caps hold even for calls the core stopped waiting for.

use super::predictor::{bullish, quotes, H, S, T0};
use flashmm_core::config::Config;
use flashmm_core::event::*;
use rust_decimal_macros::dec;

const MS: i64 = 1_000_000;

fn cfg(timeout_ms: u64) -> Config {
    let mut cfg = Config::default();
    cfg.azure.timeout_s = 1;
    cfg.predict.timeout_ms = timeout_ms;
    cfg.predict.interval_ms = 1_000;
    cfg.predict.ttl_ms = 30_000;
    cfg.predict.max_requests_per_minute = 1_000;
    cfg
}

fn outcomes(out: &[Output]) -> Vec<(u64, CallOutcome, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::PredictionOutcome(p) => Some((p.request_id, p.outcome, p.after_ms)),
            _ => None,
        })
        .collect()
}

fn cancelled(h: &mut H, id: u64) -> Vec<Output> {
    h.feed(Input::PredictionResponse(Box::new(
        PredictionResponse::cancelled(id, PredictorKind::Azure, 0),
    )))
}

#[test]
fn the_core_gives_up_exactly_after_its_timeout_and_says_so() {
    let mut h = H::new(cfg(5_000));
    let id = H::requests(&h.out)[0];
    // At the timeout itself the core still waits; a millisecond later it gives up, once.
    assert!(outcomes(&h.at(T0 + 5 * S)).is_empty());
    let out = h.at(T0 + 5 * S + MS);
    assert_eq!(outcomes(&out), vec![(id, CallOutcome::GaveUp, 5_001)]);
    assert_eq!(h.engine.prediction_stats().timeouts, 1);
    assert!(outcomes(&h.at(T0 + 9 * S)).is_empty());
    // Nothing left to wait for at a past instant: the next deadline is ahead of now.
    if let Some(t) = h.engine.poll_timeout() {
        assert!(t > h.ts, "deadline {t} is not after now {}", h.ts);
    }
}

#[test]
fn a_call_given_up_on_keeps_its_slot_until_it_ends() {
    let mut h = H::new(cfg(5_000));
    let first = H::requests(&h.out)[0];
    // Given up at 5 s, yet with max_in_flight 1 no second call goes while the first may run.
    let mut later = Vec::new();
    for k in 1..=20 {
        later.extend(H::requests(&h.at(T0 + k * S)));
    }
    assert!(
        later.is_empty(),
        "requests {later:?} went beside the abandoned call"
    );
    // Its answer comes after all: booked, unused, and the slot is free again.
    let out = h.answer(first, bullish(), dec!(0.001));
    assert_eq!(
        outcomes(&out),
        vec![(first, CallOutcome::AnsweredAfterGiveUp, 20_000)]
    );
    assert!(quotes(&out).iter().all(|q| q.prediction.is_none()));
    assert_eq!(H::requests(&out).len(), 1, "the freed slot is used at once");
}

#[test]
fn a_cancelled_call_is_booked_at_its_worst_case_so_the_cap_holds() {
    let mut c = cfg(5_000);
    // Room for one worst case (about 0.009 USD) but not two.
    c.predict.budget_usd_per_hour = dec!(0.015);
    let mut h = H::new(c);
    let first = H::requests(&h.out)[0];
    let out = h.at(T0 + 6 * S);
    assert_eq!(outcomes(&out)[0].1, CallOutcome::GaveUp);
    // Whatever the service billed for it is unknown: the worst case stays spent, and the next
    // request would not fit beside it.
    let out = cancelled(&mut h, first);
    assert!(
        outcomes(&out).is_empty(),
        "the end of a cancelled call is its own record"
    );
    assert_eq!(h.engine.prediction_stats().cancelled, 1);
    let mut later = H::gates(&out);
    let mut asked = H::requests(&out);
    for k in 7..60 {
        let out = h.at(T0 + k * S);
        later.extend(H::gates(&out));
        asked.extend(H::requests(&out));
    }
    assert!(
        asked.is_empty(),
        "asked {asked:?} with the worst case of the first still spent"
    );
    assert!(later.contains(&PredictorGate::OverBudgetHour), "{later:?}");
}

#[test]
fn a_request_in_flight_does_not_close_the_budget_gate() {
    let mut c = cfg(5_000);
    // One worst case fits with room to spare, two do not: while one is in flight the gate
    // stays open (the admission check counts the reservation anyway).
    c.predict.budget_usd_per_hour = dec!(0.015);
    let mut h = H::new(c);
    assert_eq!(H::requests(&h.out).len(), 1);
    for k in 1..5 {
        let out = h.at(T0 + k * S);
        assert!(H::gates(&out).is_empty(), "gate changed at {k} s: {out:?}");
    }
}

#[test]
fn answers_no_quote_uses_are_outcomes_in_the_journal() {
    let mut h = H::new(cfg(20_000));
    let first = H::requests(&h.out)[0];
    // A stale answer: after the TTL.
    h.ts = T0 + 31 * S;
    let out = h.answer(first, bullish(), dec!(0));
    assert_eq!(outcomes(&out), vec![(first, CallOutcome::Stale, 31_000)]);
    // An answer to nothing in flight.
    let out = h.answer(9_999_999, bullish(), dec!(0));
    assert_eq!(outcomes(&out)[0].1, CallOutcome::Unknown);
    let stats = h.engine.prediction_stats();
    assert_eq!((stats.late, stats.unknown), (1, 1));
}

#[test]
fn a_timeout_shorter_than_the_http_bound_is_refused_naming_both_keys() {
    let err = Config::load_text(
        None,
        &[
            "predict.timeout_ms=5000".to_string(),
            "azure.timeout_s=30".to_string(),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("predict.timeout_ms") && err.contains("azure.timeout_s"),
        "{err}"
    );
    assert!(Config::load_text(
        None,
        &[
            "predict.timeout_ms=31000".to_string(),
            "azure.timeout_s=30".to_string()
        ]
    )
    .is_ok());
}

/// The backtest driver ends a call the core gave up on at once, with a `cancelled` answer; the
/// journal shows the give-up and the end, never more calls open than `predict.max_in_flight`,
/// the report counts both, and the session replays exactly.
#[test]
fn a_backtest_cancels_the_calls_the_core_gave_up_on_and_replays_them() {
    use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
    use flashmm::mode::replay;
    use flashmm_journal::stream::session_stream;
    use flashmm_journal::Journal;
    use std::collections::BTreeSet;

    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let mut c = cfg(2_000);
    // The stub answers after 3 s: every call outlives the core's patience.
    c.backtest.predictor_latency_ms = 3_000;
    let o = backtest::run(
        &mut w,
        BacktestArgs {
            data: Data::File(crate::common::fixture()),
            from: None,
            from_until: None,
            to: None,
            predictor: PredictorChoice::Stub,
            cfg: c,
            market_keys: None,
            progress: false,
            what_if: None,
        },
    )
    .unwrap();
    w.close().unwrap();

    let mut open: BTreeSet<u64> = BTreeSet::new();
    let mut gave_up: BTreeSet<u64> = BTreeSet::new();
    let (mut max_open, mut cancelled) = (0, 0);
    for e in session_stream(&j, o.session).unwrap() {
        let e = e.unwrap();
        if e.session != o.session {
            continue;
        }
        match &e.body {
            Body::Output(Output::PredictionRequest(r)) => {
                open.insert(r.request_id);
                max_open = max_open.max(open.len());
            }
            Body::Output(Output::PredictionOutcome(p)) if p.outcome == CallOutcome::GaveUp => {
                assert!(open.contains(&p.request_id), "gave up on a call not open");
                assert!((2_000..3_000).contains(&p.after_ms), "{p:?}");
                gave_up.insert(p.request_id);
            }
            Body::Input(Input::PredictionResponse(r)) => {
                assert!(open.remove(&r.request_id), "an end for a call not open");
                let kind = r.result.as_ref().err().map(|f| f.kind);
                if gave_up.contains(&r.request_id) {
                    assert_eq!(kind, Some(FailureKind::Cancelled), "{r:?}");
                    cancelled += 1;
                }
            }
            _ => {}
        }
    }
    assert!(cancelled >= 5, "only {cancelled} calls were cancelled");
    assert_eq!(cancelled, gave_up.len());
    assert_eq!(max_open, 1, "max_in_flight is 1");

    let report = flashmm_report::session::read(&j, Some(o.session)).unwrap();
    let m = &report.to_json()["model"];
    assert_eq!(m["outcomes"]["gave_up"], serde_json::json!(cancelled));
    assert_eq!(
        m["failure_kinds"]["cancelled"],
        serde_json::json!(cancelled)
    );
    let text = report.to_text();
    assert!(
        text.contains(&format!("{cancelled} gave up ({cancelled} cancelled")),
        "{text}"
    );

    let s = replay::pick_session(&j, Some(o.session), None).unwrap();
    let r = replay::verify(&j, &s, None, None, &mut |_, _| {}).unwrap();
    assert!(r.divergences.is_empty(), "{:?}", r.divergences);
    assert_eq!(r.outputs_compared, r.outputs_matched);
}
