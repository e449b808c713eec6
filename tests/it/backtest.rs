//! The backtest end to end on the real fixture: determinism, the journal it leaves behind, and
//! a report recomputed from that journal alone.

use crate::common::*;
use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm_core::config::Config;
use flashmm_core::event::{Body, Input, Output};
use flashmm_journal::stream::session_stream;
use flashmm_journal::{jsonl, Journal, Writer};
use flashmm_report::SessionReport;
use std::collections::BTreeMap;

fn run(w: &mut Writer, cfg: Config, predictor: PredictorChoice) -> backtest::Outcome {
    backtest::run(
        w,
        BacktestArgs {
            data: Data::File(fixture()),
            from: None,
            from_until: None,
            to: None,
            predictor,
            cfg,
            market_keys: None,
            progress: false,
            what_if: None,
        },
    )
    .unwrap()
}

fn session_jsonl(j: &Journal, id: u64) -> String {
    let mut out = Vec::new();
    jsonl::export(j, Some(id), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn two_runs_write_identical_session_bytes_and_reports() {
    let mut sessions = Vec::new();
    let mut reports = Vec::new();
    let mut dirs = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let mut w = j.writer().unwrap();
        let o = run(&mut w, Config::default(), PredictorChoice::Rules);
        w.close().unwrap();
        assert_eq!(o.session, 2);
        sessions.push(session_jsonl(&j, o.session));
        reports.push(o.summary.to_json());
        dirs.push(dir);
    }
    assert!(sessions[0].lines().count() > 1000);
    assert!(sessions[0] == sessions[1], "the two sessions differ");
    assert_eq!(reports[0], reports[1]);
}

#[test]
fn the_report_read_back_from_the_journal_equals_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let o = run(&mut w, Config::default(), PredictorChoice::Rules);
    w.close().unwrap();
    let mut r = SessionReport::new(Config::default().predict.horizon_s, Default::default());
    let mut n = 0;
    for e in session_stream(&j, o.session).unwrap() {
        r.on_entry(&e.unwrap());
        n += 1;
    }
    let mut s = r.summary;
    s.finish();
    assert!(n > 41_000);
    assert_eq!(s.to_json(), o.summary.to_json());
    let v = o.summary.to_json();
    assert_eq!(v["events"], 41247);
    assert!(v["fills"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["final_mid"], "61685.995");
}

#[test]
fn the_journal_links_every_fill_to_its_order_quote_and_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let o = run(&mut w, Config::default(), PredictorChoice::Rules);
    w.close().unwrap();
    let info = j.session(o.session).unwrap();
    let entries: BTreeMap<u64, flashmm_core::event::Entry> = j
        .read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.seq, e))
        .collect();
    let mut fills = 0;
    let mut with_prediction = 0;
    for e in entries.values().filter(|e| e.session == o.session) {
        match &e.body {
            Body::Input(Input::Fill(f)) => {
                fills += 1;
                let order = &entries[&e.cause.unwrap()];
                let Body::Output(Output::PlaceOrder(p)) = &order.body else {
                    panic!("fill {} caused by {:?}", e.seq, order.body.kind())
                };
                assert_eq!((p.cid, p.side, p.price), (f.cid, f.side, f.price));
                assert!(order.ts_ns < e.ts_ns, "a fill cannot precede its order");
                let quote = &entries[&order.cause.unwrap()];
                let Body::Output(Output::QuoteDecision(q)) = &quote.body else {
                    panic!("order caused by {}", quote.body.kind())
                };
                if let Some(p) = &q.prediction {
                    with_prediction += 1;
                    let resp = &entries[&p.response_seq];
                    let Body::Input(Input::PredictionResponse(r)) = &resp.body else {
                        panic!()
                    };
                    assert_eq!(r.request_id, p.request_id);
                    let req = &entries[&resp.cause.unwrap()];
                    assert!(
                        matches!(&req.body, Body::Output(Output::PredictionRequest(x)) if x.request_id == p.request_id)
                    );
                }
            }
            Body::Output(Output::PlaceOrder(_)) | Body::Output(Output::CancelOrder(_)) => {
                assert!(matches!(
                    entries[&e.cause.unwrap()].body,
                    Body::Output(Output::QuoteDecision(_))
                        | Body::Output(Output::RiskAction(_))
                        | Body::Input(_)
                ));
            }
            _ => {}
        }
        assert!(e.seq >= info.first_seq && e.seq <= info.last_seq);
    }
    assert!(
        fills > 0 && with_prediction > 0,
        "{fills} fills, {with_prediction} with a prediction"
    );
}

#[test]
fn the_market_entries_are_referenced_not_copied() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let o = run(&mut w, Config::default(), PredictorChoice::Stub);
    w.close().unwrap();
    let market_in_session = j
        .read(j.session(o.session).unwrap().first_seq)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.session == o.session && e.body.is_market())
        .count();
    assert_eq!(market_in_session, 0);
    assert!(j.session(o.session).unwrap().entries < 10_000);
    // A second run finds the import instead of repeating it.
    let mut w = j.writer().unwrap();
    let again = run(&mut w, Config::default(), PredictorChoice::Stub);
    assert!(!again.imported && o.imported);
    assert_eq!(again.source_session, o.source_session);
}

#[test]
fn a_time_window_from_the_journal() {
    let (_d, j, mut w) = imported();
    let from = flashmm_core::event::when::parse(
        "--from",
        "2024-08-08T23:58:00Z",
        flashmm_core::event::when::Edge::Start,
    )
    .unwrap();
    let to = flashmm_core::event::when::parse(
        "--to",
        "2024-08-08T23:59:00Z",
        flashmm_core::event::when::Edge::Start,
    )
    .unwrap();
    let o = backtest::run(
        &mut w,
        BacktestArgs {
            data: Data::Journal(None),
            from: Some(from),
            from_until: Some(from),
            to: Some(to),
            predictor: PredictorChoice::Rules,
            cfg: Config::default(),
            market_keys: None,
            progress: false,
            what_if: None,
        },
    )
    .unwrap();
    let first = j.get(o.from_seq).unwrap().unwrap();
    let last = j.get(o.to_seq).unwrap().unwrap();
    assert!(first.ts_ns >= from && j.get(o.from_seq - 1).unwrap().unwrap().ts_ns < from);
    assert!(last.ts_ns <= to && j.get(o.to_seq + 1).unwrap().unwrap().ts_ns > to);
    let events = o.summary.to_json()["events"].as_u64().unwrap();
    assert!(events > 1000 && events < 41_000, "{events}");
}

#[test]
fn feeding_the_recorded_inputs_to_a_fresh_core_reproduces_every_output_byte_for_byte() {
    use flashmm_core::Engine;
    use flashmm_journal::codec;
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let o = run(&mut w, Config::default(), PredictorChoice::Rules);
    w.close().unwrap();
    let mut engine = Engine::new(&Config::default());
    let mut pending: std::collections::VecDeque<Output> = Default::default();
    let mut out = Vec::new();
    let (mut compared, mut inputs) = (0, 0);
    let bytes = |o: &Output| {
        let e = flashmm_core::event::Entry {
            seq: 0,
            ts_ns: 0,
            venue_ts_ns: None,
            session: 0,
            cause: None,
            body: Body::Output(o.clone()),
        };
        let mut b = Vec::new();
        codec::encode_entry(&e, &mut b).unwrap();
        b
    };
    for e in session_stream(&j, o.session).unwrap() {
        let e = e.unwrap();
        match &e.body {
            Body::Input(_) => {
                assert!(
                    pending.is_empty(),
                    "outputs {:?} were recorded but not emitted again before seq {}",
                    pending.front().map(|o| o.kind()),
                    e.seq
                );
                engine.on_event(&e, &mut out);
                pending.extend(out.drain(..).map(|em| em.output));
                inputs += 1;
            }
            Body::Output(recorded) => {
                let again = pending.pop_front().unwrap_or_else(|| {
                    panic!(
                        "seq {}: recorded {} but the core emitted nothing",
                        e.seq,
                        recorded.kind()
                    )
                });
                assert_eq!(
                    bytes(&again),
                    bytes(recorded),
                    "divergence at seq {}",
                    e.seq
                );
                compared += 1;
            }
            _ => {}
        }
    }
    assert!(pending.is_empty());
    assert!(
        compared > 1000 && inputs > 41_000,
        "{compared} outputs, {inputs} inputs"
    );
}
