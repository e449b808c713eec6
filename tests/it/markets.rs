//! Several markets in one session (issue 12): Binance spot BTCUSDT and COIN-M BTCUSD_PERP over
//! the same minutes, quoted together, read back per market by the report, the replay and the
//! post-mortem.

use crate::common;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn flashmm(journal: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .arg("--journal")
        .arg(journal)
        .args(args)
        .output()
        .expect("run flashmm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_of(o: &Output) -> Value {
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("--json prints one object")
}

fn two_markets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("backtests/two-markets.toml")
}

fn spot() -> String {
    common::fixture().display().to_string()
}

fn coinm() -> String {
    common::fixtures_dir()
        .join("binance-coinm-btcusd_perp-20240808.gz")
        .display()
        .to_string()
}

fn dec(v: &Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"))
        .parse()
        .expect("decimal")
}

/// What the run itself measured, which differs between runs.
fn without_timing(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("wall_s");
        o.remove("events_per_s");
    }
    v
}

#[test]
fn two_markets_quote_together_and_read_back_per_market() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let cfg = two_markets().display().to_string();
    let args = [
        "backtest",
        "--config",
        &cfg,
        "--data",
        &spot(),
        "--data",
        &coinm(),
        "--json",
    ];
    let v = json_of(&flashmm(&j, &args));
    assert_eq!(v["symbols"], serde_json::json!(["BTCUSDT", "BTCUSD_PERP"]));
    let ms = v["markets"].as_array().expect("markets");
    assert_eq!(ms[0]["settle_currency"], "USDT");
    assert_eq!(ms[1]["settle_currency"], "BTC");
    assert_eq!(ms[1]["kind"], "inverse_perp");
    for (m, max) in ms.iter().zip(["0.08", "50"]) {
        assert!(m["quotes"].as_u64().unwrap() > 0, "{m}");
        assert!(m["fills"].as_u64().unwrap() > 0, "{m}");
        // Each market keeps its own position limit (the config sets them per market).
        let max: rust_decimal::Decimal = max.parse().unwrap();
        assert!(dec(&m["max_abs_position"]) <= max, "{m}");
        let spread: f64 = match &m["avg_market_spread_bps"] {
            Value::String(x) => x.parse().unwrap(),
            other => other.as_f64().unwrap_or_else(|| panic!("a spread: {m}")),
        };
        assert!(
            spread > 0.0 && spread < 5.0,
            "a plausible market spread: {m}"
        );
    }
    // Every market entry of the merge is one market's event, and each import's all reached it.
    let sessions = json_of(&flashmm(&j, &["journal", "ls", "--json"]));
    let ls = sessions.as_array().unwrap();
    let source = v["source_session"].as_u64().unwrap();
    let merged = ls.iter().find(|s| s["id"] == source).expect("the merge");
    assert_eq!(
        merged["symbols"],
        serde_json::json!(["BTCUSDT", "BTCUSD_PERP"])
    );
    let imports: u64 = v["merged_from"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let s = ls.iter().find(|s| s["id"] == *id).unwrap();
            // Each import's entries less its start and end are its market entries.
            s["entries"].as_u64().unwrap() - 2
        })
        .sum();
    let events: u64 = ms.iter().map(|m| m["events"].as_u64().unwrap()).sum();
    assert_eq!(events, imports);
    assert_eq!(merged["entries"].as_u64().unwrap() - 2, imports);

    // The same run again finds the merge instead of copying it twice, and decides the same.
    let again = json_of(&flashmm(&j, &args));
    assert_eq!(again["source_session"], v["source_session"]);
    assert_eq!(
        without_timing(again.clone())["markets"],
        without_timing(v.clone())["markets"]
    );
    let session = json_of(&flashmm(&j, &["journal", "ls", "--json"]))
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_u64()
        .unwrap()
        .to_string();

    // The report, from the journal alone, gives each market the numbers the run printed.
    let r = json_of(&flashmm(&j, &["report", "--session", &session, "--json"]));
    let rm = r["markets"].as_array().expect("per market");
    assert_eq!(rm.len(), 2);
    for (a, b) in rm.iter().zip(ms) {
        assert_eq!(a["symbol"], b["symbol"]);
        for k in [
            "events",
            "quotes",
            "orders",
            "fills",
            "volume",
            "pnl",
            "final_position",
        ] {
            assert_eq!(a["summary"][k], b[k], "{k} of {}", b["symbol"]);
        }
    }
    let risk_symbols: Vec<&Value> = r["risk_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["symbol"])
        .collect();
    assert!(
        risk_symbols.iter().all(|s| s.is_string()),
        "{risk_symbols:?}"
    );

    // The replay makes every decision of both markets again.
    let rp = flashmm(&j, &["replay", "--session", &session]);
    let out = text(&rp.stdout) + &text(&rp.stderr);
    assert!(rp.status.success(), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("outputs match"))
        .expect(&out);
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "of").unwrap();
    assert_eq!(words[i - 1], words[i + 1], "{line}");

    // The post-mortem ranks the fills of both markets, each on its own book.
    let pm = json_of(&flashmm(
        &j,
        &[
            "postmortem",
            "--session",
            &session,
            "--worst",
            "40",
            "--json",
        ],
    ));
    let fills = pm["fills"].as_array().expect("fills");
    let mut seen: Vec<&str> = fills
        .iter()
        .map(|f| f["symbol"].as_str().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, vec!["BTCUSDT", "BTCUSD_PERP"]);
    for f in fills {
        // A spot fill is near 61,700 USDT and so is a perp's; each fill's book is its market's:
        // the touch before the fill is within 1% of the fill's price.
        let px = dec(&f["price"]);
        let before = &f["context"]["before"];
        if let Some(bid) = before["best_bid"].as_str() {
            let bid: rust_decimal::Decimal = bid.parse().unwrap();
            assert!(
                (bid - px).abs() < px / rust_decimal::Decimal::from(100),
                "{f}"
            );
        }
    }
}

#[test]
fn a_market_without_data_a_market_key_outside_its_entry_and_a_contradiction_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let cfg = two_markets().display().to_string();
    let o = flashmm(&j, &["backtest", "--config", &cfg, "--data", &spot()]);
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("BTCUSD_PERP") && e.contains("markets[1].symbol"),
        "{e}"
    );

    let o = flashmm(
        &j,
        &[
            "backtest",
            "--config",
            &cfg,
            "--set",
            "market.tick_size=0.1",
            "--data",
            &spot(),
        ],
    );
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("market.tick_size") && e.contains("[[markets]]"),
        "{e}"
    );

    let wrong = dir.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        "[[markets]]\nsymbol = \"BTCUSDT\"\n[[markets]]\nsymbol = \"BTCUSD_PERP\"\nkind = \"spot\"\n",
    )
    .unwrap();
    let o = flashmm(
        &j,
        &[
            "backtest",
            "--config",
            wrong.to_str().unwrap(),
            "--data",
            &spot(),
            "--data",
            &coinm(),
        ],
    );
    let e = text(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("market.kind") && e.contains("inverse_perp"),
        "{e}"
    );
}
