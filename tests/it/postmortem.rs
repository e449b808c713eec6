//! Post-mortems on the shipped recording: the cause chain is the journal's, the markouts are
//! the mids of the book rebuilt here by hand, `--worst` ranks by the stated horizon, fills at
//! the end of the data are marked as having none, and the CLI's JSON and HTML have their shape.

use crate::common;

use flashmm_core::book::Book;
use flashmm_core::event::*;
use flashmm_journal::Journal;
use flashmm_report::horizon::Horizon;
use flashmm_report::markout::Mark;
use flashmm_report::postmortem::{self, Options, Postmortem, Select};
use flashmm_report::{ReportError, SessionReport};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const SESSION: u64 = 2;

fn run(j: &Journal, select: Select, horizons: &str, rank_by: Option<&str>) -> Postmortem {
    postmortem::run(
        j,
        &Options {
            session: Some(SESSION),
            select,
            horizons: Horizon::parse_list(horizons).unwrap(),
            rank_by: rank_by.map(|h| Horizon::parse("--rank-by", h).unwrap()),
        },
    )
    .unwrap()
}

/// The mid after each market entry of the session, rebuilt here with the core's book, and
/// the session's last ts.
fn mids(stream: &[Entry]) -> (Vec<(i64, Decimal)>, i64) {
    let mut book = Book::new();
    let mut out = Vec::new();
    for e in stream {
        match &e.body {
            Body::Input(Input::BookSnapshot(s)) => book.apply_snapshot(s),
            Body::Input(Input::BookDelta(d)) => {
                book.apply_delta(d);
            }
            Body::Input(Input::Bbo(b)) => {
                book.apply_bbo(b);
            }
            _ => {}
        }
        if e.body.is_market() {
            if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
                out.push((e.ts_ns, (b + a) / dec!(2)));
            }
        }
    }
    let last = stream.iter().map(|e| e.ts_ns).max().unwrap();
    (out, last)
}

/// The mid that stood at `t`: after every market entry with ts <= t.
fn mid_at(mids: &[(i64, Decimal)], t: i64) -> Decimal {
    let i = mids.partition_point(|(ts, _)| *ts <= t);
    mids[i - 1].1
}

fn fills(stream: &[Entry]) -> Vec<(Entry, Fill)> {
    stream
        .iter()
        .filter_map(|e| match &e.body {
            Body::Input(Input::Fill(f)) => Some((e.clone(), f.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_fills_chain_is_the_journals_links_down_to_the_prompt() {
    let (_d, j) = common::recorded();
    let by_seq: BTreeMap<u64, Entry> = j
        .read(0)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.seq, e))
        .collect();
    let stream = common::stream(&j, SESSION);
    // A fill whose decision leaned on a model answer.
    let (fill, _) = fills(&stream)
        .into_iter()
        .find(|(e, _)| {
            let order = &by_seq[&e.cause.unwrap()];
            matches!(&by_seq[&order.cause.unwrap()].body,
                Body::Output(Output::QuoteDecision(q)) if q.prediction.is_some())
        })
        .expect("a fill that used a prediction");
    let pm = run(&j, Select::Fill(fill.seq), "1s,5s,30s", None);
    assert_eq!(pm.fills.len(), 1);
    let f = &pm.fills[0];
    assert_eq!(f.seq, fill.seq);
    let links = &f.chain.links;
    let seqs: Vec<u64> = links.iter().map(|l| l.seq).collect();
    let kinds: Vec<&str> = links.iter().map(|l| l.kind).collect();

    let order = &by_seq[&fill.cause.unwrap()];
    let decision = &by_seq[&order.cause.unwrap()];
    let trigger = &by_seq[&decision.cause.unwrap()];
    let Body::Output(Output::QuoteDecision(q)) = &decision.body else {
        panic!()
    };
    let used = q.prediction.as_ref().unwrap();
    let response = &by_seq[&used.response_seq];
    let request = &by_seq[&response.cause.unwrap()];
    assert_eq!(
        seqs,
        [
            fill.seq,
            order.seq,
            decision.seq,
            trigger.seq,
            response.seq,
            request.seq
        ]
    );
    assert_eq!(
        kinds,
        [
            "fill",
            "place_order",
            "quote_decision",
            trigger.body.kind(),
            "prediction_response",
            "prediction_request"
        ]
    );
    // Each link names the field it came through and the entry it came from.
    assert_eq!(links[1].via, "cause");
    assert_eq!(links[1].from, Some(fill.seq));
    assert_eq!(links[4].via, "prediction.response_seq");
    assert_eq!(links[4].from, Some(decision.seq));
    assert_eq!(links[5].from, Some(response.seq));
    assert!(f.chain.broken.is_empty());
    // What it carries is the journal's.
    let (_, _, got) = f.chain.decision.as_ref().unwrap();
    assert_eq!(got, &**q);
    let Body::Input(Input::PredictionResponse(r)) = &response.body else {
        panic!()
    };
    assert_eq!(&f.chain.response.as_ref().unwrap().2, &**r);
    let Body::Output(Output::PredictionRequest(req)) = &request.body else {
        panic!()
    };
    let prompt = f.chain.request.as_ref().unwrap().2.prompt.clone().unwrap();
    assert_eq!(Some(&prompt), req.prompt.as_ref());
    assert!(prompt.user.contains("best bid:"));
    // The text view shows the whole prompt for a single fill.
    let text = pm.to_text();
    assert!(
        text.contains(&format!(
            "quote_decision {} used prediction_response {}",
            decision.seq, response.seq
        )),
        "{text}"
    );
    assert!(text.contains("| best bid:"), "{text}");
    // The book before is the book as the fill found it: rebuilt here, it has the same top.
    let mut book = Book::new();
    for e in stream.iter().take_while(|e| e.seq != fill.seq) {
        match &e.body {
            Body::Input(Input::BookSnapshot(s)) => book.apply_snapshot(s),
            Body::Input(Input::BookDelta(d)) => {
                book.apply_delta(d);
            }
            Body::Input(Input::Bbo(b)) => {
                book.apply_bbo(b);
            }
            _ => {}
        }
    }
    let before = f.context.before.as_ref().unwrap();
    assert_eq!(before.bids[0].price, book.best_bid().unwrap().0);
    assert_eq!(before.asks[0].price, book.best_ask().unwrap().0);
    assert!(f.context.after.as_ref().unwrap().ts_ns >= fill.ts_ns);
    assert!(f
        .context
        .trades
        .iter()
        .all(|t| (t.ts_ns - fill.ts_ns).abs() <= 2_000_000_000));
    assert!(!f.hints.is_empty());
}

#[test]
fn markouts_are_the_mids_of_the_book_rebuilt_by_hand() {
    let (_d, j) = common::recorded();
    let stream = common::stream(&j, SESSION);
    let (mids, last_ts) = mids(&stream);
    let all = fills(&stream);
    let pm = run(&j, Select::All, "1s,5s,30s,500ms", None);
    let labels: Vec<String> = pm.horizons.iter().map(|h| h.label()).collect();
    assert_eq!(labels, ["500ms", "1s", "5s", "30s"]);
    assert_eq!(pm.fills.len(), all.len());
    assert!(all.len() > 50);
    let mut scored = 0;
    for ((e, fill), got) in all.iter().zip(&pm.fills) {
        assert_eq!(got.seq, e.seq);
        for (h, mark) in pm.horizons.iter().zip(&got.marks) {
            let due = e.ts_ns + h.ns;
            if due > last_ts {
                assert_eq!(mark, &Mark::NoData, "fill {} at {}", e.seq, h.label());
                continue;
            }
            let mid = mid_at(&mids, due);
            let sign = if fill.side == Side::Buy {
                dec!(1)
            } else {
                dec!(-1)
            };
            let bps = sign * (mid - fill.price) / fill.price * dec!(10000);
            let quote = sign * (mid - fill.price) * fill.qty;
            assert_eq!(
                mark,
                &Mark::Scored { mid, bps, quote },
                "fill {} at {}",
                e.seq,
                h.label()
            );
            scored += 1;
        }
    }
    assert!(scored > 200, "{scored}");
    // The same rule as the session summary: its averages come out again.
    let mut r = SessionReport::new(60, Default::default());
    for e in &stream {
        r.on_entry(e);
    }
    r.summary.finish();
    let s = r.summary.to_json();
    for (i, h) in pm.horizons.iter().enumerate().skip(1) {
        let v: Vec<Decimal> = pm.fills.iter().filter_map(|f| f.marks[i].bps()).collect();
        let avg = (v.iter().sum::<Decimal>() / Decimal::from(v.len()))
            .round_dp(4)
            .normalize();
        assert_eq!(s["markout_bps"][h.label()], avg.to_string());
        assert_eq!(s["markout_samples"][h.label()], v.len());
    }
}

#[test]
fn worst_ranks_by_the_stated_horizon_and_puts_fills_without_data_last() {
    let (_d, j) = common::recorded();
    let all = run(&j, Select::All, "1s,5s,30s", None);
    let n = all.fills.len();
    // Default: the longest horizon ranks.
    let worst = run(&j, Select::Worst(7), "1s,5s,30s", None);
    assert_eq!(worst.rank_by.label(), "30s");
    assert_eq!(worst.fills.len(), 7);
    let at = |f: &postmortem::FillStudy, i: usize| f.marks[i].bps();
    let picked: Vec<u64> = worst.fills.iter().map(|f| f.seq).collect();
    let ranked: Vec<Decimal> = worst.fills.iter().map(|f| at(f, 2).unwrap()).collect();
    assert!(ranked.windows(2).all(|w| w[0] <= w[1]), "{ranked:?}");
    assert_eq!(
        worst
            .fills
            .iter()
            .map(|f| f.rank.unwrap())
            .collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    for f in all.fills.iter().filter(|f| !picked.contains(&f.seq)) {
        if let Some(b) = at(f, 2) {
            assert!(b >= ranked[6], "fill {} at {b} beats the 7th worst", f.seq);
        }
    }
    // --rank-by another horizon, and one that is not in the list (added to it).
    let by5 = run(&j, Select::Worst(n), "1s,5s,30s", Some("5s"));
    let v: Vec<Option<Decimal>> = by5.fills.iter().map(|f| at(f, 1)).collect();
    let scored = v.iter().take_while(|b| b.is_some()).count();
    assert!(
        v[scored..].iter().all(|b| b.is_none()),
        "no-data fills come last"
    );
    assert!(scored < n, "some fills have no data 5 s after them");
    let vals: Vec<Decimal> = v.iter().flatten().copied().collect();
    assert!(vals.windows(2).all(|w| w[0] <= w[1]));
    let by2 = run(&j, Select::Worst(3), "1s,5s", Some("2s"));
    assert_eq!(
        by2.horizons.iter().map(|h| h.label()).collect::<Vec<_>>(),
        ["1s", "2s", "5s"]
    );
}

#[test]
fn fills_at_the_end_of_the_session_are_marked_as_having_no_data() {
    let (_d, j) = common::recorded();
    let last_ts = j.session(SESSION).unwrap().last_ts;
    let pm = run(&j, Select::All, "1s,5s,30s", None);
    let late: Vec<&postmortem::FillStudy> = pm
        .fills
        .iter()
        .filter(|f| f.ts_ns + 30_000_000_000 > last_ts)
        .collect();
    assert!(
        !late.is_empty(),
        "the recording ends within 30 s of some fills"
    );
    assert_eq!(pm.unscored_at_rank, late.len());
    let v = pm.to_json();
    for f in late {
        assert_eq!(f.marks[2], Mark::NoData);
        let jf = v["fills"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["seq"] == f.seq)
            .unwrap();
        assert!(jf["markout_bps"]["30s"].is_null(), "{jf}");
        assert!(jf["markout_quote"]["30s"].is_null());
        assert!(jf["no_data_after"]
            .as_array()
            .unwrap()
            .contains(&Value::from("30s")));
        assert!(jf["markout_bps"]["1s"].is_string());
    }
    assert!(pm.to_text().contains("30s no data: the session ends first"));
}

#[test]
fn bad_fill_arguments_are_clear_errors() {
    let (_d, j) = common::recorded();
    let opts = |session, select| Options {
        session,
        select,
        horizons: Horizon::parse_list("1s").unwrap(),
        rank_by: None,
    };
    let e = postmortem::run(&j, &opts(None, Select::Fill(5)))
        .err()
        .expect("an error");
    assert!(matches!(e, ReportError::NotAFill { seq: 5, .. }), "{e}");
    assert!(e.to_string().contains("not a fill"));
    let e = postmortem::run(&j, &opts(None, Select::Fill(99_999_999)))
        .err()
        .expect("an error");
    assert!(matches!(e, ReportError::NoEntry(_)), "{e}");
    let fill = fills(&common::stream(&j, SESSION))[0].0.seq;
    let e = postmortem::run(&j, &opts(Some(1), Select::Fill(fill)))
        .err()
        .expect("an error");
    assert!(e.to_string().contains("belongs to session 2"), "{e}");
    // With no --session, --fill finds its own.
    let pm = postmortem::run(&j, &opts(None, Select::Fill(fill))).unwrap();
    assert_eq!(pm.picked.info.id, SESSION);
    // An import session has no fills.
    let pm = postmortem::run(&j, &opts(Some(1), Select::All)).unwrap();
    assert!(pm.fills.is_empty());
    assert!(pm.to_text().contains("no fills"));
    assert!(Horizon::parse_list("1s,fast")
        .unwrap_err()
        .to_string()
        .contains("--horizons"));
}

fn flashmm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_cli_prints_json_of_the_documented_shape_and_a_self_contained_page() {
    let (d, j) = common::recorded();
    drop(j);
    let dir = d.path().to_str().unwrap();
    let page = d.path().with_extension("html");
    let args = [
        "--journal",
        dir,
        "postmortem",
        "--worst",
        "3",
        "--json",
        "--html",
        page.to_str().unwrap(),
    ];
    let o = flashmm(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["session"], 2);
    assert_eq!(v["rank_by"], "30s");
    let fills = v["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 3);
    for f in fills {
        assert!(f["seq"].is_u64());
        assert!(f["side"] == "buy" || f["side"] == "sell");
        assert!(
            f["price"].is_string() && f["qty"].is_string(),
            "decimals are strings"
        );
        for h in ["1s", "5s", "30s"] {
            assert!(f["markout_bps"].get(h).is_some(), "{h}: {f}");
        }
        let chain = f["chain"].as_array().unwrap();
        assert!(chain.len() >= 3);
        for l in chain {
            assert!(l["seq"].is_u64() && l["kind"].is_string(), "{l}");
        }
        assert_eq!(chain[0]["kind"], "fill");
        assert_eq!(chain[1]["kind"], "place_order");
        assert_eq!(chain[2]["kind"], "quote_decision");
        assert!(f["decision"]["features"]["mid"].is_string());
        assert!(f["book_before"]["bids"].as_array().unwrap().len() <= 5);
    }
    assert_eq!(fills[0]["rank"], 1);
    // The same journal gives the same bytes.
    let page1 = std::fs::read_to_string(&page).unwrap();
    let again = flashmm(&args);
    assert_eq!(again.stdout, o.stdout);
    assert_eq!(std::fs::read_to_string(&page).unwrap(), page1);
    // The page: well-formed, no scripts, nothing fetched, one chart per fill with its fill.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(&page1, opts).expect("the page is well-formed XML");
    assert!(doc
        .descendants()
        .all(|n| !n.has_tag_name("script") && !n.has_tag_name("link") && !n.has_tag_name("img")));
    for n in doc.descendants() {
        for a in n.attributes() {
            let external = a.value().contains("http") && a.name() != "xmlns";
            assert!(!external, "{}={}", a.name(), a.value());
        }
    }
    let svgs: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg"))
        .collect();
    assert_eq!(svgs.len(), 3);
    for (svg, f) in svgs.iter().zip(fills) {
        roxmltree::Document::parse(&page1[svg.range()]).expect("each chart parses alone");
        let markers: Vec<&str> = svg
            .descendants()
            .filter(|n| n.attribute("data-series") == Some("fills"))
            .flat_map(|g| g.children().filter_map(|m| m.attribute("data-seq")))
            .collect();
        assert_eq!(markers, [f["seq"].to_string().as_str()]);
    }
    // --fill on the command line, and an error that names the flag.
    let seq = fills[0]["seq"].to_string();
    let o = flashmm(&["--journal", dir, "postmortem", "--fill", &seq]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("fill {seq}")));
    let o = flashmm(&["--journal", dir, "postmortem", "--horizons", "1x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--horizons"));
}
