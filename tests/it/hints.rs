//! Errors that name a flag name one the command has, and a `--from` that no data covers is an
//! error naming the date, the range the data does cover, and the flag.

use crate::common::*;
use std::process::{Command, Output};

fn flashmm(journal: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .arg("--journal")
        .arg(journal)
        .args(args)
        .output()
        .expect("run flashmm")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn import_fixture(journal: &std::path::Path) {
    let f = fixture();
    let o = flashmm(
        journal,
        &[
            "journal",
            "import",
            "--format",
            "binance",
            f.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn backtest_data_with_a_gap_points_to_journal_import_for_allow_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gap.gz");
    let text = [
        snapshot(1, 100, r#"["10.0","1"]"#, r#"["11.0","1"]"#),
        depth(2, 101, 105, r#"["10.0","2"]"#, ""),
        depth(3, 115, 120, "", ""),
    ]
    .join("\n")
        + "\n";
    gz(&file, &text);
    let o = flashmm(
        &dir.path().join("journal"),
        &["backtest", "--data", file.to_str().unwrap()],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("update-id gap at line 3"), "{e}");
    assert!(
        e.contains("run `flashmm journal import --format binance --allow-gaps")
            && e.contains("pass the session it prints to --session"),
        "{e}"
    );
    // Not offered as a flag of backtest itself.
    assert!(!e.contains("pass --allow-gaps"), "{e}");
    let o = flashmm(&dir.path().join("journal"), &["backtest", "--allow-gaps"]);
    assert!(!o.status.success());
}

#[test]
fn backtest_from_a_date_before_the_data_names_the_date_the_range_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal");
    import_fixture(&j);
    for args in [
        vec!["backtest", "--from", "2024-06-01"],
        vec!["backtest", "--session", "1", "--from", "2024-06-01"],
        vec!["backtest", "--from", "2024-08-09T00:00:00Z"],
    ] {
        let o = flashmm(&j, &args);
        assert!(!o.status.success(), "{args:?} ran");
        let e = stderr(&o);
        let asked = args.last().unwrap();
        let asked = asked.trim_end_matches("T00:00:00Z");
        assert!(e.contains(&format!("--from {asked}")), "{args:?}: {e}");
        assert!(
            e.contains("covers 2024-08-08T") && e.contains("(session 1)"),
            "{args:?}: {e}"
        );
        assert!(
            e.contains("Pass a --from within that range"),
            "{args:?}: {e}"
        );
    }
    // The day the data is on is covered, though the data starts after its midnight.
    let o = flashmm(
        &j,
        &[
            "backtest",
            "--from",
            "2024-08-08",
            "--to",
            "2024-08-08T23:56:00Z",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn backtest_data_from_a_date_before_the_file_names_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture();
    let o = flashmm(
        &dir.path().join("journal"),
        &[
            "backtest",
            "--data",
            f.to_str().unwrap(),
            "--from",
            "2024-06-01",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--from 2024-06-01: the market data of session 1 does not cover it"),
        "{e}"
    );
}

#[test]
fn replay_from_a_date_before_every_session_names_the_date_the_ranges_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal");
    // An empty journal is seeded with the shipped recording and its recorded session.
    let o = flashmm(&j, &["replay", "--from", "2024-06-01"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(
            "--from 2024-06-01: no session with decisions covers it; the data covers 2024-08-08T"
        ),
        "{e}"
    );
    assert!(e.contains("--from within that range"), "{e}");
    let o = flashmm(&j, &["replay", "--session", "2", "--from", "2024-06-01"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--from 2024-06-01: session 2 does not cover it"),
        "{}",
        stderr(&o)
    );
}
