//! The `flashmm` binary as a user meets it: help, reports, and errors that name what to fix.

use crate::common;

use serde_json::Value;
use std::process::{Command, Output};

fn flashmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(args)
        .output()
        .expect("run flashmm")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_the_commands_and_their_flags() {
    let o = flashmm(&["--help"]);
    assert!(o.status.success());
    let h = text(&o.stdout);
    for cmd in ["backtest", "journal", "config", "--journal"] {
        assert!(h.contains(cmd), "{cmd} missing from --help:\n{h}");
    }
    let h = text(&flashmm(&["backtest", "--help"]).stdout);
    for flag in [
        "--predictor",
        "--data",
        "--from",
        "--to",
        "--config",
        "--set",
        "--json",
        "--session",
    ] {
        assert!(
            h.contains(flag),
            "{flag} missing from backtest --help:\n{h}"
        );
    }
    let h = text(&flashmm(&["journal", "import", "--help"]).stdout);
    for flag in [
        "--format",
        "--strict",
        "--allow-gaps",
        "--unsigned",
        "NOTHING IS",
        "--rebase",
    ] {
        assert!(h.contains(flag), "{flag} missing:\n{h}");
    }
}

fn without_timing(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    assert!(m.remove("wall_s").unwrap().as_f64().unwrap() > 0.0);
    assert!(m.remove("events_per_s").unwrap().as_f64().unwrap() > 0.0);
    v
}

#[test]
fn the_same_backtest_twice_prints_the_same_json_apart_from_timing() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let j = j.to_str().unwrap();
    let runs: Vec<Value> = (0..2)
        .map(|_| {
            let o = flashmm(&["--journal", j, "backtest", "--predictor", "rules", "--json"]);
            assert!(o.status.success(), "{}", text(&o.stderr));
            serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
        })
        .collect();
    let v = &runs[0];
    for key in [
        "events",
        "quotes",
        "orders",
        "fills",
        "maker_fills",
        "taker_fills",
        "volume",
        "final_position",
        "max_abs_position",
        "avg_quoted_spread_bps",
        "avg_market_spread_bps",
        "prediction_hit_rate",
    ] {
        assert!(!v[key].is_null(), "{key} missing: {v}");
    }
    for key in ["realized", "unrealized", "fees", "total"] {
        assert!(
            v["pnl"][key].is_string(),
            "pnl.{key} should be a decimal string: {v}"
        );
    }
    for h in ["1s", "5s", "30s"] {
        assert!(v["markout_bps"][h].is_string(), "markout {h}: {v}");
    }
    assert!(v["volume"].is_string());
    assert_eq!(
        without_timing(runs[0].clone()),
        without_timing(runs[1].clone())
    );
    // The human report of the same run.
    let o = flashmm(&["--journal", j, "backtest"]);
    assert!(o.status.success());
    let r = text(&o.stdout);
    assert!(r.contains("PnL") && r.contains("markouts (bps)"), "{r}");
    let ls = text(&flashmm(&["--journal", j, "journal", "ls"]).stdout);
    assert_eq!(
        ls.lines().filter(|l| l.contains("backtest")).count(),
        3,
        "{ls}"
    );
    assert_eq!(
        ls.lines().filter(|l| l.contains(" import ")).count(),
        1,
        "{ls}"
    );
}

#[test]
fn errors_name_the_flag_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let j = j.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--journal", j, "backtest", "--set", "strategy.levels=0"],
            "strategy.levels",
        ),
        (
            &["--journal", j, "backtest", "--set", "strategy.nope=1"],
            "strategy.nope",
        ),
        (
            &["--journal", j, "backtest", "--from", "yesterday"],
            "--from",
        ),
        (
            &["--journal", j, "backtest", "--data", "/nonexistent.gz"],
            "/nonexistent.gz",
        ),
    ];
    for (args, needle) in cases {
        let o = flashmm(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_journal_in_use_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let _held = flashmm_journal::Journal::open(dir.path()).unwrap();
    let o = flashmm(&["--journal", dir.path().to_str().unwrap(), "journal", "ls"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("in use by another flashmm process") && err.contains("--journal"),
        "{err}"
    );
}

#[test]
fn import_export_verify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let j = j.to_str().unwrap();
    let fixture = common::fixture();
    let o = flashmm(&[
        "--journal",
        j,
        "journal",
        "import",
        "--format",
        "binance",
        fixture.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("as session 1"));
    let o = flashmm(&["--journal", j, "journal", "verify"]);
    assert!(o.status.success());
    assert!(
        text(&o.stdout).contains("intact: 41249 entries"),
        "{}",
        text(&o.stdout)
    );
    let out = dir.path().join("all.jsonl");
    let o = flashmm(&[
        "--journal",
        j,
        "journal",
        "export",
        "--format",
        "jsonl",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    // The entries between the export's header and trailer.
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().count(),
        41249 + 2
    );
    let j2 = dir.path().join("j2");
    let o = flashmm(&[
        "--journal",
        j2.to_str().unwrap(),
        "journal",
        "import",
        "--format",
        "jsonl",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A gap in a recording fails the import with its line.
    let gap = dir.path().join("gap.gz");
    common::gz(
        &gap,
        &[
            common::snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
            common::depth(2, 101, 105, "", ""),
            common::depth(3, 107, 110, "", ""),
        ]
        .join("\n"),
    );
    let o = flashmm(&[
        "--journal",
        j,
        "journal",
        "import",
        "--format",
        "binance",
        gap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("gap at line 3"), "{err}");
}
