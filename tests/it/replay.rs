//! Replay proves the core makes the recorded decisions again, byte for byte; a changed input is
//! caught where it takes effect; a what-if reruns the same market and model answers.

use crate::common;

use flashmm::mode::replay::{self, RECORDED_FIXTURE};
use flashmm_core::event::*;
use flashmm_journal::binance::{self, ImportOptions};
use flashmm_journal::{jsonl, Journal};
use flashmm_testkit::azure as fake_azure;
use std::process::Command;

const FIXTURE_SEED: u64 = 20_240_808;

/// A journal holding the shipped recording: the Binance import and the recorded model session.
fn recorded() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    binance::import(&mut w, &common::fixture(), &ImportOptions::default()).unwrap();
    let opts = jsonl::ImportOptions {
        rebase: true,
        ..Default::default()
    };
    let recorded = common::fixture().with_file_name(RECORDED_FIXTURE);
    jsonl::import_file(&mut w, &recorded, &opts).unwrap();
    w.close().unwrap();
    (dir, j)
}

/// Copies a journal through the API into a new one, letting `edit` change entries on the way.
fn copy_with(src: &Journal, edit: &dyn Fn(&mut Entry)) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let dst = Journal::open(dir.path()).unwrap();
    let mut w = dst.writer().unwrap();
    for e in src.read(0).unwrap() {
        let mut e = e.unwrap();
        edit(&mut e);
        match e.body {
            Body::SessionStart(_) => w.begin_with_id(&mut e).unwrap(),
            _ => w.append(&mut e).unwrap(),
        }
    }
    w.close().unwrap();
    (dir, dst)
}

fn verify(j: &Journal, from: Option<&str>) -> replay::ReplayReport {
    use flashmm_core::event::when;
    let until = from.map(|f| when::parse("--from", f, when::Edge::End).unwrap());
    let from = from.map(|f| {
        flashmm_core::event::when::parse("--from", f, flashmm_core::event::when::Edge::Start)
            .unwrap()
    });
    let s = replay::pick_session(j, None, from.zip(until)).unwrap();
    replay::verify(j, &s, from, None, &mut |_, _| {}).unwrap()
}

#[test]
fn the_recorded_session_replays_with_no_divergence_from_its_start_and_its_middle() {
    let (_d, j) = recorded();
    let r = verify(&j, Some("2024-08-08"));
    assert_eq!(r.session, 2);
    assert!(r.divergences.is_empty(), "{:?}", r.divergences.first());
    assert!(r.outputs_compared > 1000 && r.outputs_matched == r.outputs_compared);
    assert_eq!(r.fast_forwarded, 0);
    let mid = verify(&j, Some("2024-08-08T23:58:00Z"));
    assert!(mid.divergences.is_empty());
    assert!(
        mid.fast_forwarded > 10_000
            && mid.outputs_compared > 100
            && mid.outputs_compared < r.outputs_compared
    );
    assert_eq!(mid.entries + mid.fast_forwarded, r.entries);
}

#[test]
fn the_fixture_holds_real_prompts_and_the_fakes_documented_answers() {
    let (_d, j) = recorded();
    let mut asked = std::collections::BTreeMap::new();
    let mut answers = 0;
    for e in j.read(j.session(2).unwrap().first_seq).unwrap() {
        let e = e.unwrap();
        match &e.body {
            Body::Output(Output::PredictionRequest(r)) => {
                let p = r.prompt.as_ref().expect("a real prompt");
                assert!(
                    p.user.contains("best bid:") && p.user.contains("trades, oldest first"),
                    "{}",
                    p.user
                );
                asked.insert(e.seq, format!("{}\n{}", p.developer, p.user));
            }
            Body::Input(Input::PredictionResponse(r)) => {
                let prompt = &asked[&e.cause.unwrap()];
                let (latency_ms, body) = fake_azure::model_answer(prompt, FIXTURE_SEED);
                assert_eq!(
                    r.raw, body,
                    "the answer is the documented function of the prompt"
                );
                assert_eq!(r.latency_ms, latency_ms);
                assert_eq!(r.source, PredictorKind::Azure);
                assert!(r.result.is_ok() && r.cost_usd > rust_decimal::Decimal::ZERO);
                answers += 1;
            }
            _ => {}
        }
    }
    assert!(answers > 20, "{answers}");
}

/// Where a change at `changed` must show: its first recorded output, or the change itself when
/// the recording has no output right after it.
fn expected_divergence(j: &Journal, session: u64, changed: u64) -> (u64, u64) {
    let mut first_out = None;
    for e in flashmm_journal::stream::session_stream(j, session).unwrap() {
        let e = e.unwrap();
        if e.cause == Some(changed) && matches!(e.body, Body::Output(_)) {
            first_out = Some(e.seq);
            break;
        }
    }
    (changed, first_out.unwrap_or(changed))
}

#[test]
fn one_changed_prediction_response_diverges_at_its_seq() {
    let (_d, j) = recorded();
    // A response the fake gave, turned into a confident crash call.
    let target = j
        .read(j.session(2).unwrap().first_seq)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| matches!(&e.body, Body::Input(Input::PredictionResponse(_))))
        .nth(10)
        .unwrap()
        .seq;
    let (_d2, changed) = copy_with(&j, &|e| {
        if e.seq == target {
            if let Body::Input(Input::PredictionResponse(r)) = &mut e.body {
                r.result = Ok(Prediction {
                    direction: Direction::Bearish,
                    confidence: rust_decimal::Decimal::ONE,
                    price_change_bps: rust_decimal::Decimal::from(-400),
                    reasoning: "changed".into(),
                });
            }
        }
    });
    let r = verify(&changed, None);
    let d = r.divergences.first().expect("a divergence");
    let (a, b) = expected_divergence(&j, 2, target);
    assert!(
        d.seq == a || d.seq == b,
        "divergence at {} ({}), expected {a} or {b}",
        d.seq,
        d.why
    );
    assert_eq!(
        d.inputs_before.last().unwrap().seq,
        target,
        "the changed input is the last one read"
    );
    assert_eq!(d.inputs_before.len(), 5);
    // The original still replays clean.
    assert!(verify(&j, None).divergences.is_empty());
}

#[test]
fn one_changed_market_event_diverges_where_it_takes_effect() {
    let (_d, j) = recorded();
    // A top-of-book update in the import that the recorded session requoted on: move it 40
    // dollars down, and the decision it caused must come out different.
    let (target, decision) = flashmm_journal::stream::session_stream(&j, 2)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| matches!(&e.body, Body::Output(Output::QuoteDecision(_))))
        .filter_map(|e| {
            e.cause
                .filter(|c| *c > 20_000 && *c < 41_249)
                .map(|c| (c, e.seq))
        })
        .find(|(c, _)| matches!(j.get(*c).unwrap().unwrap().body, Body::Input(Input::Bbo(_))))
        .expect("a quote caused by a top-of-book update");
    let (_d2, changed) = copy_with(&j, &|e| {
        if e.seq == target {
            if let Body::Input(Input::Bbo(b)) = &mut e.body {
                b.bid -= rust_decimal::Decimal::from(40);
                b.ask -= rust_decimal::Decimal::from(40);
            }
        }
    });
    let r = verify(&changed, None);
    let d = r.divergences.first().expect("a divergence");
    assert_eq!(d.seq, decision, "{}", d.why);
    assert_eq!(d.inputs_before.last().unwrap().seq, target);
    assert!(
        r.outputs_matched > 100,
        "everything before the change matched"
    );
}

#[test]
fn two_processes_replaying_the_same_session_emit_identical_outputs() {
    let (d, _j) = recorded();
    let dir = d.path().to_str().unwrap().to_string();
    drop(_j);
    let out_dir = tempfile::tempdir().unwrap();
    let mut dumps = Vec::new();
    let mut reports = Vec::new();
    for i in 0..2 {
        let dump = out_dir.path().join(format!("outputs-{i}.jsonl"));
        let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .args([
                "--journal",
                &dir,
                "replay",
                "--from",
                "2024-08-08",
                "--json",
                "--dump-outputs",
                dump.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for k in ["wall_s", "entries_per_s"] {
            assert!(v.as_object_mut().unwrap().remove(k).is_some());
        }
        reports.push(v);
        dumps.push(std::fs::read(&dump).unwrap());
    }
    assert!(dumps[0].len() > 100_000);
    assert!(dumps[0] == dumps[1]);
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[0]["divergences"], serde_json::json!([]));
    assert_eq!(
        reports[0]["outputs_compared"],
        reports[0]["outputs_matched"]
    );
}

#[test]
fn a_divergence_exits_non_zero_with_the_seq_and_the_inputs_before_it() {
    let (_d, j) = recorded();
    let target = j
        .read(j.session(2).unwrap().first_seq)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| matches!(&e.body, Body::Input(Input::Fill(_))))
        .nth(3)
        .unwrap()
        .seq;
    let (d2, changed) = copy_with(&j, &|e| {
        if e.seq == target {
            if let Body::Input(Input::Fill(f)) = &mut e.body {
                // More filled than recorded: the position, and so the next quote, differs.
                f.qty += f.qty;
            }
        }
    });
    drop(changed);
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            d2.path().to_str().unwrap(),
            "replay",
            "--session",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("DIVERGENCE at seq"), "{text}");
    assert!(
        text.contains(&format!("seq {target} ")),
        "the changed fill is listed among the inputs before: {text}"
    );
}

#[test]
fn a_what_if_with_unchanged_parameters_equals_the_original_and_records_its_parent() {
    let (_d, j) = recorded();
    let parent = j.session(2).unwrap();
    let mut w = j.writer().unwrap();
    let (same, original) = replay::what_if(&mut w, &parent, &[], false).unwrap();
    assert_eq!(same.summary.to_json(), original.to_json());
    let info = j.session(same.session).unwrap();
    assert_eq!((info.mode, info.parent), (Mode::Replay, Some(2)));
    let (wider, _) = replay::what_if(
        &mut w,
        &parent,
        &["strategy.base_half_spread_bps=4".into()],
        false,
    )
    .unwrap();
    assert_ne!(
        wider.summary.to_json()["fills"],
        original.to_json()["fills"]
    );
    w.close().unwrap();
    // The what-if itself replays clean.
    let s = j.session(wider.session).unwrap();
    assert!(replay::verify(&j, &s, None, None, &mut |_, _| {})
        .unwrap()
        .divergences
        .is_empty());
}
