//! A full disk and a file-size limit (issue 11, defects 1 and 2): the journal refuses to open or
//! stops writing before sled runs out of room, read-only commands return at once with a message,
//! and every session committed before is intact afterwards, byte for byte.

use crate::common::*;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs flashmm, failing the test if it does not end within two minutes (the defect was a hang).
fn flashmm_bounded(args: &[&str], fsize_limit: Option<u64>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashmm"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(limit) = fsize_limit {
        // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn flashmm");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flashmm {args:?} hung for two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A tmpfs of `mb` megabytes, unmounted when dropped; `None` (with the reason printed) where
/// this process may not mount.
struct Tmpfs(PathBuf, tempfile::TempDir);

impl Tmpfs {
    fn mount(mb: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.path().to_path_buf(), dir)),
            Ok(o) => {
                println!(
                    "skipped: cannot mount a tmpfs here ({}); run as root to test a full disk",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: no mount command ({e})");
                None
            }
        }
    }

    fn free_mb(&self) -> u64 {
        flashmm_journal::space::room(&self.0)
            .expect("statvfs")
            .bytes
            / (1024 * 1024)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn export_session(journal: &Path, session: &str, out: &Path) -> Vec<u8> {
    let o = flashmm_bounded(
        &[
            "journal",
            "export",
            "--journal",
            journal.to_str().unwrap(),
            "--min-free-mb",
            "1",
            "--session",
            session,
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(out).unwrap()
}

#[test]
fn a_full_disk_stops_the_import_and_keeps_the_earlier_session() {
    let Some(fs) = Tmpfs::mount(48) else { return };
    let j = fs.0.join("journal");
    let js = j.to_str().unwrap();
    let data = fixture();
    let data = data.to_str().unwrap();
    let import = |extra: &[&str]| {
        let mut a = vec!["journal", "import", "--journal", js, "--format", "binance"];
        a.extend_from_slice(extra);
        a.push(data);
        flashmm_bounded(&a, None)
    };
    let o = import(&["--min-free-mb", "8"]);
    assert!(o.status.success(), "{}", text(&o));
    let outside = tempfile::tempdir().unwrap();
    let before = export_session(&j, "1", &outside.path().join("before.jsonl"));

    // Leave the reserve and 1 MB: the second copy of the recording needs about 2 MB.
    let filler = fs.0.join("filler");
    let fill = fs.free_mb().saturating_sub(9);
    std::fs::write(&filler, vec![0u8; (fill * 1024 * 1024) as usize]).unwrap();
    let o = import(&["--min-free-mb", "8", "--force"]);
    let t = text(&o);
    assert!(!o.status.success(), "the import claimed success: {t}");
    assert!(
        t.contains("below the reserve of 8 MB (--min-free-mb)") && t.contains("Stopped writing"),
        "{t}"
    );
    assert!(!t.contains("panicked"), "{t}");

    // Defect 2: a read-only command on a nearly full disk (2 MB left) returns at once with a
    // message.
    let filler2 = fs.0.join("filler2");
    let fill2 = fs.free_mb().saturating_sub(2);
    std::fs::write(&filler2, vec![0u8; (fill2 * 1024 * 1024) as usize]).unwrap();
    let o = flashmm_bounded(
        &["journal", "verify", "--journal", js, "--min-free-mb", "8"],
        None,
    );
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("Refused to open it"),
        "{t}"
    );

    // Defect 1: with room again, the journal opens and the first session is intact.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&filler2).unwrap();
    let o = flashmm_bounded(
        &["journal", "verify", "--journal", js, "--min-free-mb", "8"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("is intact"), "{}", text(&o));
    let after = export_session(&j, "1", &outside.path().join("after.jsonl"));
    assert!(before == after, "session 1 changed across the full disk");
    let o = flashmm_bounded(
        &["journal", "ls", "--journal", js, "--min-free-mb", "8"],
        None,
    );
    let ls = text(&o);
    let row = |id: &str| {
        ls.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no session {id} in {ls}"))
            .to_string()
    };
    assert!(row("1").contains("completed"), "{ls}");
    // Imports are atomic (issue 11, defect 9's one pass): the stopped one left no session.
    assert!(
        ls.lines().all(|l| l.split_whitespace().next() != Some("2")),
        "{ls}"
    );
}

#[test]
fn a_file_size_limit_refuses_to_start_or_stops_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("journal");
    let js = j.to_str().unwrap();
    let data = fixture();
    let data = data.to_str().unwrap();
    let args = |reserve: &'static str| {
        vec![
            "journal",
            "import",
            "--journal",
            js,
            "--format",
            "binance",
            "--min-free-mb",
            reserve,
            data,
        ]
    };
    // A 1 MB limit is below a 4 MB reserve: refused before sled opens.
    let o = flashmm_bounded(&args("4"), Some(1024 * 1024));
    let t = text(&o);
    assert_eq!(o.status.signal(), None, "killed by a signal: {t}");
    assert!(!o.status.success() && t.contains("ulimit -f"), "{t}");
    // Without a reserve sled meets the limit itself: SIGXFSZ is ignored, so the write fails and
    // the error says so instead of the process dying silently.
    let o = flashmm_bounded(&args("0"), Some(300 * 1024));
    let t = text(&o);
    assert_eq!(o.status.signal(), None, "killed by a signal: {t}");
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("File too large") || t.contains("ulimit -f"),
        "{t}"
    );
    // Without the limit the journal opens, verifies and imports.
    let o = flashmm_bounded(
        &["journal", "verify", "--journal", js, "--min-free-mb", "1"],
        None,
    );
    assert!(
        o.status.success() && text(&o).contains("is intact"),
        "{}",
        text(&o)
    );
    let o = flashmm_bounded(&args("1"), None);
    assert!(o.status.success(), "{}", text(&o));
}
