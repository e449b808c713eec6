//! `flashmm report` on the shipped recording: the page is self-contained and well-formed, each
//! chart draws what the journal holds (every fill, every risk action, every model answer), and
//! the JSON agrees with the session summary.

use crate::common;

use flashmm_core::event::*;
use flashmm_journal::Journal;
use flashmm_report::session;
use rust_decimal::Decimal;
use serde_json::Value;
use std::process::Command;

const SESSION: u64 = 2;

fn parse(text: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts).expect("well-formed XML")
}

/// The chart whose class names it.
fn chart<'a>(doc: &'a roxmltree::Document<'a>, key: &str) -> roxmltree::Node<'a, 'a> {
    let class = format!("chart-{key}");
    doc.descendants()
        .find(|n| {
            n.has_tag_name("svg")
                && n.attribute("class")
                    .is_some_and(|c| c.split(' ').any(|c| c == class))
        })
        .unwrap_or_else(|| panic!("no chart {key}"))
}

fn series<'a>(svg: roxmltree::Node<'a, 'a>, name: &str) -> roxmltree::Node<'a, 'a> {
    svg.descendants()
        .find(|n| n.attribute("data-series") == Some(name))
        .unwrap_or_else(|| panic!("no series {name}"))
}

fn has_class(n: &roxmltree::Node, class: &str) -> bool {
    n.attribute("class")
        .is_some_and(|c| c.split(' ').any(|c| c == class))
}

fn entries(j: &Journal) -> Vec<Entry> {
    common::stream(j, SESSION)
}

#[test]
fn the_page_is_self_contained_and_each_chart_draws_what_the_journal_holds() {
    let (_d, j) = common::recorded();
    let all = entries(&j);
    let fills: Vec<u64> = all
        .iter()
        .filter(|e| matches!(e.body, Body::Input(Input::Fill(_))))
        .map(|e| e.seq)
        .collect();
    let risk = all
        .iter()
        .filter(|e| matches!(e.body, Body::Output(Output::RiskAction(_))))
        .count();
    let answers: Vec<u64> = all
        .iter()
        .filter(|e| matches!(e.body, Body::Input(Input::PredictionResponse(_))))
        .map(|e| e.seq)
        .collect();
    assert!(fills.len() > 50 && risk > 0 && answers.len() > 20);

    let view = session::read(&j, Some(SESSION)).unwrap();
    let html = view.to_html();
    assert_eq!(
        html,
        session::read(&j, Some(SESSION)).unwrap().to_html(),
        "deterministic"
    );
    let doc = parse(&html);
    for n in doc.descendants() {
        assert!(
            !["script", "link", "img", "iframe", "object"]
                .iter()
                .any(|t| n.has_tag_name(*t)),
            "{:?}",
            n.tag_name()
        );
        for a in n.attributes() {
            assert!(
                a.name() == "xmlns" || !(a.value().contains("http") || a.value().contains("url(")),
                "{}={}",
                a.name(),
                a.value()
            );
        }
    }
    assert!(!html.contains("@import") && !html.contains("url("));
    let svgs: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg"))
        .collect();
    assert_eq!(
        svgs.len(),
        9,
        "price, pnl, inventory, spread, 3 markout histograms, latency, cost"
    );
    for svg in &svgs {
        // Each chart is a well-formed SVG document on its own too.
        let alone = parse(&html[svg.range()]);
        assert_eq!(alone.root_element().tag_name().name(), "svg");
        assert!(svg.descendants().any(|n| has_class(&n, "x-axis")), "axes");
    }

    // Price: every fill is a marker carrying its seq; every risk action is an event line.
    let price = chart(&doc, "price");
    let markers: Vec<u64> = series(price, "fills")
        .children()
        .filter(|n| has_class(n, "marker"))
        .map(|n| n.attribute("data-seq").unwrap().parse().unwrap())
        .collect();
    assert_eq!(markers, fills);
    let buys = series(price, "fills")
        .children()
        .filter(|n| has_class(n, "buy"))
        .count();
    let journal_buys = all
        .iter()
        .filter(|e| matches!(&e.body, Body::Input(Input::Fill(f)) if f.side == Side::Buy))
        .count();
    assert_eq!(buys, journal_buys);
    let events = |svg: roxmltree::Node| {
        svg.descendants()
            .filter(|n| has_class(n, "event") && has_class(n, "risk"))
            .count()
    };
    assert_eq!(events(price), risk);
    assert_eq!(events(chart(&doc, "pnl")), risk);
    assert_eq!(events(chart(&doc, "inventory")), risk);
    let mid = series(price, "mid");
    let mid_points: usize = mid.attribute("data-count").unwrap().parse().unwrap();
    assert!(mid_points > 1000, "{mid_points}");
    assert!(mid.children().any(|p| p.has_tag_name("polyline")));
    for key in ["our-bid", "our-ask"] {
        assert!(series(price, key).children().count() > 0, "{key}");
    }
    // PnL, inventory: one step per fill at least.
    let position: usize = series(chart(&doc, "inventory"), "position")
        .attribute("data-count")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        position,
        fills.len() + 1,
        "flat at the start, then each fill"
    );
    assert!(
        series(chart(&doc, "pnl"), "pnl")
            .attribute("data-count")
            .unwrap()
            != "0"
    );
    // Spreads: a quoted spread per two-sided decision.
    let spread = chart(&doc, "spread");
    assert!(series(spread, "quoted-spread").children().count() >= 1);
    assert!(series(spread, "market-spread").children().count() >= 1);
    // Model: one marker per answer.
    let latency = chart(&doc, "model-latency");
    let mut drawn: Vec<u64> = ["answers-ok", "answers-failed"]
        .iter()
        .flat_map(|k| {
            series(latency, k)
                .children()
                .filter_map(|m| m.attribute("data-seq"))
                .map(|s| s.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    drawn.sort();
    assert_eq!(drawn, answers);
    assert!(series(chart(&doc, "model-cost"), "cost").children().count() > 0);
    // Markout histograms: the bars hold every scored fill.
    let v = view.to_json();
    for h in ["1s", "5s", "30s"] {
        let hist = chart(&doc, &format!("markout-{h}"));
        let total: u64 = hist
            .descendants()
            .filter(|n| has_class(n, "bar"))
            .map(|n| n.attribute("data-count").unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            total,
            v["summary"]["markout_samples"][h].as_u64().unwrap(),
            "{h}"
        );
    }
}

#[test]
fn the_json_agrees_with_the_summary_and_the_journal() {
    let (_d, j) = common::recorded();
    let all = entries(&j);
    let v = session::read(&j, None).unwrap().to_json();
    assert_eq!(
        v["session"], SESSION,
        "the newest session with decisions by default"
    );
    let s = &v["summary"];
    assert_eq!(s["events"], 41247);
    for h in ["1s", "5s", "30s"] {
        let m = &v["markouts"][h];
        assert_eq!(m["mean_bps"], s["markout_bps"][h], "{h}");
        assert_eq!(m["scored"], s["markout_samples"][h]);
        assert_eq!(m["no_data"], s["markout_unscored"][h]);
        let counts: u64 = m["histogram"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(counts, m["scored"].as_u64().unwrap());
    }
    let responses: Vec<&PredictionResponse> = all
        .iter()
        .filter_map(|e| match &e.body {
            Body::Input(Input::PredictionResponse(r)) => Some(&**r),
            _ => None,
        })
        .collect();
    let cost: Decimal = responses.iter().map(|r| r.cost_usd).sum();
    assert_eq!(v["model"]["answers"], responses.len());
    assert_eq!(v["model"]["cost_usd"], cost.normalize().to_string());
    assert!(v["model"]["latency_ms"]["p50"].as_u64().unwrap() > 0);
    let risk: Vec<u64> = all
        .iter()
        .filter(|e| matches!(e.body, Body::Output(Output::RiskAction(_))))
        .map(|e| e.seq)
        .collect();
    let listed: Vec<u64> = v["risk_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, risk);
    // An import session reads too: market only, and charts that say there is nothing to draw.
    let imported = session::read(&j, Some(1)).unwrap();
    assert_eq!(imported.to_json()["summary"]["fills"], 0);
    let html = imported.to_html();
    let doc = parse(&html);
    assert!(series(chart(&doc, "price"), "fills")
        .children()
        .next()
        .is_none());
    assert!(html.contains("no data in this session"));
}

#[test]
fn the_cli_report_prints_the_same_json_every_time_and_writes_the_page() {
    let (d, j) = common::recorded();
    drop(j);
    let dir = d.path().to_str().unwrap();
    let page = d.path().with_extension("html");
    let run = |extra: &[&str]| {
        let mut args = vec!["--journal", dir, "report"];
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let a = run(&["--json", "--html", page.to_str().unwrap()]);
    let b = run(&["--json"]);
    assert_eq!(a.stdout, b.stdout);
    let v: Value = serde_json::from_slice(&a.stdout).unwrap();
    for key in [
        "session",
        "summary",
        "markouts",
        "model",
        "risk_actions",
        "first_ts",
    ] {
        assert!(!v[key].is_null(), "{key}");
    }
    assert!(v["summary"]["pnl"]["total"].is_string());
    assert!(std::fs::read_to_string(&page)
        .unwrap()
        .starts_with("<!DOCTYPE html>"));
    let text = String::from_utf8(run(&[]).stdout).unwrap();
    for needle in [
        "PnL",
        "markout 30s",
        "model",
        "risk actions    4",
        "kill_switch",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(["--journal", dir, "report", "--session", "99"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no session 99"));
}
