//! kill -9 in the middle of writing: the journal must reopen, verify, and describe what survived.
//! (sled has open reports of corruption on open after an abrupt stop; this is where we find out.)

use crate::common;

use flashmm_journal::{Journal, Verified};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// The size of the segment files under `<journal>/blocks`, which only grow while an import
/// appends.
fn log_bytes(journal: &std::path::Path) -> u64 {
    std::fs::read_dir(journal.join("blocks")).map_or(0, |rd| {
        rd.filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

#[test]
fn a_journal_killed_mid_write_reopens_intact() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("long.gz");
    long_recording(&rec, 300_000);
    // Each trial kills the import once its segment files have grown to a mark. The journal is
    // locked while the child lives, so its files are all the test can watch. The writer appends a
    // block of 16,384 entries (about 100 KiB compressed) at a time, and this import ends with
    // about 1.9 MiB; marks from the first block to about three quarters of the way put every
    // kill at a point in the import rather than in time, so it lands mid-write on any machine.
    const KIB: u64 = 1024;
    let thresholds = [
        100 * KIB,
        300 * KIB,
        600 * KIB,
        900 * KIB,
        1200 * KIB,
        1500 * KIB,
    ];
    let deadline = Duration::from_secs(60);
    let mut partial = 0;
    let mut vanished = 0;
    let mut complete = 0;
    for (trial, &kill_at) in thresholds.iter().enumerate() {
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
        let started = Instant::now();
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if log_bytes(&j) >= kill_at {
                break None;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trial {trial}: after {deadline:?} the import had written {} bytes of log, short of {kill_at}",
                    log_bytes(&j)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(status) = exited {
            // Done before the log reached the mark: a complete import, checked like the rest.
            assert!(
                status.success(),
                "trial {trial}: the import failed: {status}"
            );
        }
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
            None => {
                assert_eq!(entries, 0, "trial {trial}: entries but no session record");
                // A Binance import is staged (docs/journal.md): killed before it ended, it
                // left its blocks unindexed, and the journal as it was before it.
                if exited.is_none() {
                    vanished += 1;
                }
            }
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
                eprintln!(
                    "trial {trial}: {} at {} KiB of log, {entries} entries survived, {}",
                    if exited.is_some() {
                        "exited before the kill"
                    } else {
                        "killed"
                    },
                    kill_at / KIB,
                    if s.status.is_none() {
                        "unfinished"
                    } else {
                        "complete"
                    }
                );
            }
        }
        // And it takes new writes after the crash.
        let mut w = journal.writer().unwrap();
        w.flush(true).unwrap();
    }
    assert!(
        partial + vanished > 0,
        "no trial was cut mid-write ({complete} imports completed before their kill)"
    );
    eprintln!(
        "{partial} partial, {vanished} rolled back and {complete} complete imports survived a kill -9"
    );
}

#[test]
fn a_full_disk_stops_the_import_with_advice_and_loses_nothing_written() {
    // RLIMIT_FSIZE makes writes past 300 KB per file fail (EFBIG) like a full disk would, with
    // no privileges needed; SIGXFSZ is ignored so the write returns the error. No reserve, so
    // sled meets the limit itself (tests/it/full_disk.rs has the reserve stop it first).
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let script = format!(
        "trap '' XFSZ; ulimit -f 300; exec timeout 120 {} --journal {} --min-free-mb 0 journal import --format binance {}",
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
                from_until: None,
                to: None,
                predictor: flashmm::mode::backtest::PredictorChoice::Rules,
                cfg: flashmm_core::config::Config::default(),
                market_keys: None,
                progress: false,
                what_if: None,
            },
        )
        .err()
        .expect("an unfinished import is not market data");
        assert!(e.to_string().contains("did not complete"), "{e}");
    }
}
