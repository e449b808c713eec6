//! kill -9 in the middle of writing: the journal must reopen, verify, and describe what survived.
//! (sled has open reports of corruption on open after an abrupt stop; this is where we find out.)

use crate::common;

use flashmm_journal::{Journal, Verified};
use std::process::Command;
use std::time::Duration;

fn long_recording(path: &std::path::Path, trades: u64) {
    let mut lines = vec![common::snapshot(
        1_000,
        100,
        r#"["10.0","1"]"#,
        r#"["11.0","1"]"#,
    )];
    for i in 0..trades {
        lines.push(common::trade(
            2_000 + i * 1_000_000,
            i,
            "10.5",
            "0.01",
            i % 2 == 0,
        ));
    }
    common::gz(path, &lines.join("\n"));
}

#[test]
fn a_journal_killed_mid_write_reopens_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("long.gz");
    long_recording(&rec, 300_000);
    let mut partial = 0;
    let mut complete = 0;
    for (trial, delay_ms) in [300u64, 600, 900, 1200, 1600, 2000, 2500, 3000, 4000]
        .iter()
        .enumerate()
    {
        let j = dir.path().join(format!("j{trial}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .args([
                "--journal",
                j.to_str().unwrap(),
                "journal",
                "import",
                "--format",
                "binance",
                rec.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !j.join("db").exists() {
            continue;
        }
        let journal =
            Journal::open(&j).unwrap_or_else(|e| panic!("trial {trial}: reopen failed: {e}"));
        let entries = match journal.verify().unwrap() {
            Verified::Intact { entries, .. } => entries,
            other => panic!("trial {trial}: {other:?}"),
        };
        let sessions = journal.sessions().unwrap();
        let read = journal
            .read(0)
            .unwrap()
            .try_fold(0u64, |n, e| e.map(|_| n + 1))
            .unwrap();
        assert_eq!(read, entries);
        match sessions.first() {
            None => assert_eq!(entries, 0, "trial {trial}: entries but no session record"),
            Some(s) => {
                // The session record matches what survived, even if the crash came between the
                // block and its record.
                assert_eq!(
                    (s.first_seq, s.last_seq + 1, s.entries),
                    (0, entries, entries),
                    "trial {trial}"
                );
                if s.status.is_none() {
                    partial += 1;
                } else {
                    complete += 1;
                }
            }
        }
        // And it takes new writes after the crash.
        let mut w = journal.writer().unwrap();
        w.flush(true).unwrap();
    }
    assert!(partial + complete > 0, "no trial got as far as writing");
    eprintln!("{partial} partial and {complete} complete imports survived a kill -9");
}

#[test]
fn a_full_disk_stops_the_import_with_advice_and_loses_nothing_written() {
    // RLIMIT_FSIZE makes writes past 1.1 MB per file fail (EFBIG) like a full disk would, with
    // no privileges needed; SIGXFSZ is ignored so the write returns the error.
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let script = format!(
        "trap '' XFSZ; ulimit -f 1100; exec timeout 120 {} --journal {} journal import --format binance {}",
        env!("CARGO_BIN_EXE_flashmm"),
        j.display(),
        common::fixture().display()
    );
    let o = Command::new("bash").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a clean failure, got {:?}: {err}",
        o.status
    );
    assert!(
        err.contains("journal write failed") && err.contains("free space"),
        "{err}"
    );
    // What reached the disk is intact, and the half-written import cannot feed a backtest.
    let journal = Journal::open(&j).unwrap();
    let Verified::Intact { entries, .. } = journal.verify().unwrap() else {
        panic!("chain broken after a full disk")
    };
    assert!(entries < 41_249, "{entries}");
    if let Some(s) = journal.sessions().unwrap().first() {
        assert_eq!(s.status, None);
        let mut w = journal.writer().unwrap();
        let e = flashmm::mode::backtest::run(
            &mut w,
            flashmm::mode::backtest::BacktestArgs {
                data: flashmm::mode::backtest::Data::Journal(Some(s.id)),
                from: None,
                to: None,
                predictor: flashmm::mode::backtest::PredictorChoice::Rules,
                cfg: flashmm_core::config::Config::default(),
                progress: false,
                what_if: None,
            },
        )
        .err()
        .expect("an unfinished import is not market data");
        assert!(e.to_string().contains("did not complete"), "{e}");
    }
}
