//! A market's identity and rules come from the data (issue 12, defect 1): another symbol is
//! traded as itself, a COIN-M recording as an inverse contract, and a config that contradicts
//! the data stops the run naming both.

use crate::common;
use serde_json::Value;
use std::io::Read;
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

/// The shipped BTCUSDT recording as another symbol's: every stream and symbol renamed.
fn eth_recording(dir: &Path) -> PathBuf {
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(common::fixture()).unwrap())
        .read_to_string(&mut raw)
        .unwrap();
    let renamed = raw
        .replace("BTCUSDT", "ETHUSDT")
        .replace("btcusdt", "ethusdt");
    let path = dir.join("ethusdt.gz");
    common::gz(&path, &renamed);
    path
}

fn coinm() -> PathBuf {
    common::fixtures_dir().join("binance-coinm-btcusd_perp-20240808.gz")
}

#[test]
fn another_symbols_recording_is_traded_as_that_symbol_with_its_own_lot() {
    let dir = tempfile::tempdir().unwrap();
    let data = eth_recording(dir.path());
    let j = dir.path().join("j");
    let v = json_of(&flashmm(
        &j,
        &["backtest", "--data", data.to_str().unwrap(), "--json"],
    ));
    assert_eq!(v["symbol"], "ETHUSDT");
    assert!(v["quotes"].as_u64().unwrap() > 0, "{v}");
    assert!(v["fills"].as_u64().unwrap() > 0, "{v}");
    // ETHUSDT's lot is 0.0001 (the table), not BTCUSDT's 0.00001: every size is a multiple.
    let vol: rust_decimal::Decimal = v["volume"].as_str().unwrap().parse().unwrap();
    assert!((vol % rust_decimal_macros::dec!(0.0001)).is_zero(), "{vol}");
    // journal ls names the symbol of the import and of the backtest.
    let ls = flashmm(&j, &["journal", "ls", "--json"]);
    let ls: Value = serde_json::from_slice(&ls.stdout).unwrap();
    let symbols: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["ETHUSDT", "ETHUSDT"]);
    let table = text(&flashmm(&j, &["journal", "ls"]).stdout);
    assert!(
        table.contains("symbol") && table.contains("ETHUSDT"),
        "{table}"
    );
}

#[test]
fn a_config_whose_market_contradicts_the_data_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let data = eth_recording(dir.path());
    let j = dir.path().join("j");
    let o = flashmm(
        &j,
        &[
            "backtest",
            "--data",
            data.to_str().unwrap(),
            "--set",
            "market.symbol=BTCUSDT",
        ],
    );
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("market.symbol") && e.contains("BTCUSDT") && e.contains("ETHUSDT"),
        "{e}"
    );
    // From a config file too, and for the contract kind.
    let cfg = dir.path().join("spot.toml");
    std::fs::write(&cfg, "[market]\nkind = \"spot\"\n").unwrap();
    let o = flashmm(
        &j,
        &[
            "backtest",
            "--data",
            coinm().to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("market.kind") && e.contains("inverse_perp"),
        "{e}"
    );
    // No backtest session was written by either.
    let ls: Value =
        serde_json::from_slice(&flashmm(&j, &["journal", "ls", "--json"]).stdout).unwrap();
    assert!(
        ls.as_array().unwrap().iter().all(|s| s["mode"] == "import"),
        "{ls}"
    );
}

#[test]
fn with_two_symbols_in_the_journal_from_a_date_takes_the_one_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = eth_recording(dir.path());
    let j = dir.path().join("j");
    for f in [common::fixture(), data] {
        let o = flashmm(
            &j,
            &[
                "journal",
                "import",
                "--format",
                "binance",
                f.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let run = |sets: &[&str]| {
        let mut a = vec!["backtest", "--from", "2024-08-08", "--json"];
        a.extend_from_slice(sets);
        json_of(&flashmm(&j, &a))
    };
    // Unset: the latest import.
    assert_eq!(run(&[])["symbol"], "ETHUSDT");
    let btc = run(&["--set", "market.symbol=BTCUSDT"]);
    assert_eq!(
        (btc["symbol"].as_str(), btc["source_session"].as_u64()),
        (Some("BTCUSDT"), Some(1))
    );
    let o = flashmm(
        &j,
        &[
            "backtest",
            "--from",
            "2024-08-08",
            "--set",
            "market.symbol=SOLUSDT",
        ],
    );
    let e = text(&o.stderr);
    assert!(
        !o.status.success() && e.contains("SOLUSDT") && e.contains("BTCUSDT"),
        "{e}"
    );
}

#[test]
fn a_coin_margined_recording_is_an_inverse_contract_with_pnl_in_btc() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let imp = flashmm(
        &j,
        &[
            "journal",
            "import",
            "--format",
            "binance",
            coinm().to_str().unwrap(),
        ],
    );
    let said = text(&imp.stdout);
    assert!(
        said.contains("BTCUSD_PERP on binance-coinm (inverse_perp)")
            && said.contains("multiplier 100"),
        "{said}"
    );
    // BTC-sized defaults do not fit 100 USD contracts: the error says which key to set.
    let o = flashmm(&j, &["backtest", "--session", "1"]);
    let e = text(&o.stderr);
    assert!(
        !o.status.success() && e.contains("strategy.base_notional"),
        "{e}"
    );
    let cfg = common::fixtures_dir().join("../backtests/coinm.toml");
    let v = json_of(&flashmm(
        &j,
        &[
            "backtest",
            "--session",
            "1",
            "--config",
            cfg.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        (v["kind"].as_str(), v["settle_currency"].as_str()),
        (Some("inverse_perp"), Some("BTC"))
    );
    assert!(v["fills"].as_u64().unwrap() > 0, "{v}");
    // Sizes are whole contracts, and the market spread is the tight spread of that market.
    let pos: rust_decimal::Decimal = v["final_position"].as_str().unwrap().parse().unwrap();
    assert!(
        pos.fract().is_zero() && pos.abs() <= rust_decimal_macros::dec!(50),
        "{pos}"
    );
    let spread = v["avg_market_spread_bps"].as_f64().unwrap();
    assert!(spread > 0.0 && spread < 5.0, "{spread}");
    // PnL is in BTC: hundreds of fills of 100 USD contracts cannot move it by a whole coin,
    // and `notional` is the BTC value of what traded (about volume x 100 / 61,000).
    let total: rust_decimal::Decimal = v["pnl"]["total"].as_str().unwrap().parse().unwrap();
    assert!(total.abs() < rust_decimal::Decimal::ONE, "{total}");
    let vol: rust_decimal::Decimal = v["volume"].as_str().unwrap().parse().unwrap();
    let notional: rust_decimal::Decimal = v["notional"].as_str().unwrap().parse().unwrap();
    let per_contract = notional / vol;
    assert!(
        per_contract > rust_decimal_macros::dec!(0.0015)
            && per_contract < rust_decimal_macros::dec!(0.0018),
        "{per_contract} BTC a contract"
    );
    // The report reads the session back with the same contract and gets the same PnL.
    let r = json_of(&flashmm(
        &j,
        &["report", "--session", &v_session(&v), "--json"],
    ));
    assert_eq!(r["summary"]["pnl"]["total"], v["pnl"]["total"], "{r}");
}

fn v_session(v: &Value) -> String {
    // The backtest is the session after its data's.
    (v["source_session"].as_u64().unwrap() + 1).to_string()
}
