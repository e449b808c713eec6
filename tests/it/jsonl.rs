//! `journal export --format jsonl` / `journal import --format jsonl` through the CLI, on the
//! shipped recording: the export restores a journal byte for byte, every line (the first, with
//! the config, included) is held to its hash, a file cut short or edited is refused naming the
//! line, and a refused file leaves the journal exactly as it was.

use crate::common;

use flashmm_journal::codec::HASH_LEN;
use flashmm_journal::{Journal, Verified};
use std::path::{Path, PathBuf};
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

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `flashmm --journal DIR journal export --format jsonl [--session ID] OUT`.
fn export(dir: &Path, session: Option<u64>, out: &Path) {
    let id = session.map(|s| s.to_string());
    let mut a = vec![
        "--journal",
        s(dir),
        "journal",
        "export",
        "--format",
        "jsonl",
    ];
    if let Some(id) = &id {
        a.extend(["--session", id.as_str()]);
    }
    a.push(s(out));
    let o = flashmm(&a);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// `flashmm --journal DIR journal import --format jsonl [FLAGS] FILE`.
fn import(dir: &Path, flags: &[&str], file: &Path) -> Output {
    let mut a = vec![
        "--journal",
        s(dir),
        "journal",
        "import",
        "--format",
        "jsonl",
    ];
    a.extend(flags);
    a.push(s(file));
    flashmm(&a)
}

/// The error a refused import printed, which must name `line`.
fn refused(o: &Output, line: u64) -> String {
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(err.contains(&format!(": line {line}: ")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

type Raw = Vec<(u64, [u8; HASH_LEN], Vec<u8>)>;

/// Every stored entry, undecoded, and `verify`'s count and head.
fn stored(dir: &Path) -> (Raw, u64, [u8; HASH_LEN]) {
    let j = Journal::open(dir).unwrap();
    let mut raw = Vec::new();
    j.for_each_raw(0, &mut |r| {
        raw.push((r.seq, r.hash, r.bytes.to_vec()));
        Ok(true)
    })
    .unwrap();
    match j.verify().unwrap() {
        Verified::Intact { entries, head } => (raw, entries, head),
        b => panic!("{b:?}"),
    }
}

/// The shipped recording (sessions 1 and 2), as a directory no handle holds.
fn recorded() -> tempfile::TempDir {
    let (d, j) = common::recorded();
    drop(j);
    d
}

/// A journal holding what session 2 of `recorded()` continues: the same Binance import.
fn market_only() -> tempfile::TempDir {
    let (d, j, w) = common::imported();
    w.close().unwrap();
    drop(j);
    d
}

/// Session 2 of the recording, exported, as lines.
fn session_lines(src: &Path, at: &Path) -> (PathBuf, Vec<String>) {
    let f = at.join("s2.jsonl");
    export(src, Some(2), &f);
    let lines = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    (f, lines)
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut t: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if lines.is_empty() {
        t.clear();
    }
    std::fs::write(path, t).unwrap();
}

#[test]
fn a_whole_journal_export_restores_it_byte_for_byte_and_exports_the_same_bytes_again() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup.jsonl");
    export(src.path(), None, &backup);
    let restored = work.path().join("restored");
    let o = import(&restored, &[], &backup);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("imported 44908 entries"));
    assert!(text(&o.stderr).is_empty(), "{}", text(&o.stderr));
    let (raw, n, head) = stored(src.path());
    let (raw2, n2, head2) = stored(&restored);
    assert_eq!(n, 44908);
    assert_eq!((n2, head2), (n, head));
    assert!(raw == raw2, "the stored entries differ");
    let again = work.path().join("again.jsonl");
    export(&restored, None, &again);
    assert!(std::fs::read(&backup).unwrap() == std::fs::read(&again).unwrap());
    let ls = |d: &Path| text(&flashmm(&["--journal", s(d), "journal", "ls", "--json"]).stdout);
    assert_eq!(ls(&restored), ls(src.path()));
}

#[test]
fn a_session_export_imports_into_a_journal_holding_what_precedes_it() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let (file, lines) = session_lines(src.path(), work.path());
    assert!(lines[0].starts_with("{\"flashmm_export\":1,"));
    assert!(lines[0].contains("\"first_seq\":41249,"));
    assert!(lines
        .last()
        .unwrap()
        .starts_with("{\"flashmm_export_end\":{\"entries\":3659,\"last_seq\":44907,"));
    let dst = market_only();
    let o = import(dst.path(), &[], &file);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (raw, n, head) = stored(src.path());
    let (raw2, n2, head2) = stored(dst.path());
    assert_eq!((n2, head2), (n, head));
    assert!(raw == raw2);
    // Into an empty journal it does not continue anything.
    let empty = work.path().join("empty");
    let err = refused(&import(&empty, &[], &file), 1);
    assert!(
        err.contains("starts at seq 41249 but this journal's next seq is 0"),
        "{err}"
    );
    // Into a journal holding the same recording imported from another path (its session start
    // names the path), it names both heads and --rebase, which then takes it.
    let copy = work.path().join("copy.gz");
    std::fs::copy(common::fixture(), &copy).unwrap();
    let other = work.path().join("other");
    let o = flashmm(&[
        "--journal",
        s(&other),
        "journal",
        "import",
        "--format",
        "binance",
        s(&copy),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before = stored(&other);
    assert_eq!(before.1, 41249);
    let err = refused(&import(&other, &[], &file), 1);
    assert!(
        err.contains(&format!(
            "this journal's entry 41248 has hash {}",
            flashmm_journal::jsonl::to_hex(&before.2)
        )) && err.contains("--rebase"),
        "{err}"
    );
    assert!(stored(&other).0 == before.0);
    let o = import(&other, &["--rebase"], &file);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("note: --rebase"),
        "{}",
        text(&o.stderr)
    );
    let (_, n3, head3) = stored(&other);
    assert_eq!(n3, n);
    assert_ne!(head3, head);
}

/// (a) The first line's hash was never checked: an edit of the session start, the config
/// included, was accepted.
#[test]
fn an_edit_of_the_first_entrys_config_is_refused() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let (_, mut lines) = session_lines(src.path(), work.path());
    assert!(lines[1].contains("\"SessionStart\""));
    let from = r#"max_position = \"0.05\""#;
    assert!(lines[1].contains(from));
    lines[1] = lines[1].replacen(from, r#"max_position = \"5.00\""#, 1);
    let edited = work.path().join("edited.jsonl");
    write_lines(&edited, &lines);
    let dst = market_only();
    let before = stored(dst.path());
    let err = refused(&import(dst.path(), &[], &edited), 2);
    assert!(err.contains("hash mismatch at seq 41249"), "{err}");
    assert_eq!(stored(dst.path()).0, before.0);
    // Even with --rebase, which lets the header continue another journal, the first line is
    // held to the header's prev_hash and its own hash.
    let err = refused(&import(dst.path(), &["--rebase"], &edited), 2);
    assert!(err.contains("hash mismatch at seq 41249"), "{err}");
    // The same edit of a whole-journal backup's first line.
    let backup = work.path().join("backup.jsonl");
    export(src.path(), None, &backup);
    let t = std::fs::read_to_string(&backup).unwrap();
    let mut lines: Vec<String> = t.lines().map(String::from).collect();
    lines[1] = lines[1].replacen("binance import of", "binance import by", 1);
    write_lines(&backup, &lines);
    let empty = work.path().join("empty");
    let err = refused(&import(&empty, &[], &backup), 2);
    assert!(err.contains("hash mismatch at seq 0"), "{err}");
}

/// (b) Hashes were optional per line: an edited line without its hash was committed and
/// `verify` then said intact.
#[test]
fn an_edited_line_without_its_hash_is_refused_unless_unsigned() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let (_, mut lines) = session_lines(src.path(), work.path());
    let mut v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    v.as_object_mut().unwrap().remove("hash");
    v["ts_ns"] = (v["ts_ns"].as_i64().unwrap() + 1).into();
    lines[2] = v.to_string();
    let edited = work.path().join("edited.jsonl");
    write_lines(&edited, &lines);
    let dst = market_only();
    let before = stored(dst.path());
    let err = refused(&import(dst.path(), &[], &edited), 3);
    assert!(
        err.contains("the entry with seq 41250 has no hash") && err.contains("--unsigned"),
        "{err}"
    );
    assert_eq!(stored(dst.path()).0, before.0);
    // The last entry too, which no later line's hash covers (the tester's case: accepted, and
    // `verify` said intact).
    let (_, mut last) = session_lines(src.path(), work.path());
    let at = last.len() - 2;
    let mut v: serde_json::Value = serde_json::from_str(&last[at]).unwrap();
    v.as_object_mut().unwrap().remove("hash");
    v["body"]["SessionEnd"]["note"] = "edited".into();
    last[at] = v.to_string();
    let end = work.path().join("end.jsonl");
    write_lines(&end, &last);
    let err = refused(&import(dst.path(), &[], &end), at as u64 + 1);
    assert!(err.contains("seq 44907 has no hash"), "{err}");
    assert_eq!(stored(dst.path()).0, before.0);
    // Explicitly unsigned, it goes in, loudly.
    let o = import(dst.path(), &["--unsigned"], &edited);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let warn = text(&o.stderr);
    assert!(
        warn.contains("warning: --unsigned") && warn.contains("NOT checked against any hash chain"),
        "{warn}"
    );
    assert!(text(&o.stdout).contains("(unsigned: not checked against a hash chain)"));
    assert_eq!(stored(dst.path()).1, 44908);
}

/// (c) A file cut at a line boundary imported with exit 0.
#[test]
fn a_file_cut_at_a_line_boundary_is_refused() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let (_, lines) = session_lines(src.path(), work.path());
    let dst = market_only();
    let before = stored(dst.path());
    let cut = work.path().join("cut.jsonl");
    for keep in [lines.len() - 1, lines.len() - 2, 1000] {
        write_lines(&cut, &lines[..keep]);
        let err = refused(&import(dst.path(), &[], &cut), keep as u64);
        assert!(
            err.contains(&format!(
                "the file ends at line {keep} without the export's trailer"
            )) && err.contains("it was cut short"),
            "{err}"
        );
    }
    // Cut before the trailer's newline it is whole.
    let whole = lines.join("\n");
    std::fs::write(&cut, whole.as_bytes()).unwrap();
    assert_eq!(stored(dst.path()).0, before.0);
    let o = import(dst.path(), &[], &cut);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// (d) A failed import left a partial session that blocked importing the correct file ("entry
/// has seq 41249 but this journal's next seq is 42732").
#[test]
fn a_failed_import_leaves_no_partial_session_and_the_correct_file_then_imports() {
    let src = recorded();
    let work = tempfile::tempdir().unwrap();
    let (good, lines) = session_lines(src.path(), work.path());
    let dst = market_only();
    let ls = |d: &Path| text(&flashmm(&["--journal", s(d), "journal", "ls", "--json"]).stdout);
    let (before, n_before, head_before) = stored(dst.path());
    let sessions_before = ls(dst.path());
    // Bad near its end: an edit, then a wrong trailer, then something after the trailer.
    let bad = work.path().join("bad.jsonl");
    let mut edited = lines.clone();
    edited[3000] = edited[3000].replacen("\"ts_ns\":", "\"ts_ns\":1", 1);
    let mut trailer = lines.clone();
    let last = trailer.len() - 1;
    trailer[last] = trailer[last].replacen("\"entries\":3659", "\"entries\":3658", 1);
    let mut after = lines.clone();
    after.push(lines[5].clone());
    for (file, line) in [(edited, 3001), (trailer, 3661), (after, 3662)] {
        write_lines(&bad, &file);
        refused(&import(dst.path(), &[], &bad), line);
        let (now, n, head) = stored(dst.path());
        assert!(now == before, "a refused import wrote entries");
        assert_eq!((n, head), (n_before, head_before));
        assert_eq!(ls(dst.path()), sessions_before);
    }
    let o = import(dst.path(), &[], &good);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (raw, n, head) = stored(src.path());
    let (raw2, n2, head2) = stored(dst.path());
    assert_eq!((n2, head2), (n, head));
    assert!(raw == raw2);
}

#[test]
fn stdin_and_flags_that_do_not_apply_are_refused_and_help_names_the_flags() {
    let work = tempfile::tempdir().unwrap();
    let j = work.path().join("j");
    let o = import(&j, &[], Path::new("-"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cannot do that with stdin"),
        "{}",
        text(&o.stderr)
    );
    let o = flashmm(&[
        "--journal",
        s(&j),
        "journal",
        "import",
        "--format",
        "binance",
        "--unsigned",
        s(&common::fixture()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("apply to --format jsonl"));
    let o = import(&j, &["--unsigned", "--rebase"], Path::new("x.jsonl"));
    assert_eq!(o.status.code(), Some(2), "clap refuses the pair");
    let h = text(&flashmm(&["journal", "import", "--help"]).stdout);
    assert!(h.contains("--unsigned") && h.contains("--rebase"), "{h}");
    // Garbage, invalid UTF-8 included, is a line error, not a panic.
    let g = work.path().join("g.jsonl");
    std::fs::write(&g, b"\xff\xfe\x00garbage\n").unwrap();
    let err = refused(&import(&j, &[], &g), 1);
    assert!(err.contains("not the header of a flashmm export"), "{err}");
    let err = refused(&import(&j, &["--unsigned"], &g), 1);
    assert!(err.contains("not a journal entry"), "{err}");
}

#[test]
fn the_shipped_recording_is_a_signed_export() {
    let f = common::fixture().with_file_name(common::RECORDED_FIXTURE);
    let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap());
    let mut t = String::new();
    std::io::Read::read_to_string(&mut gz, &mut t).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 3659 + 2);
    assert!(lines[0].starts_with("{\"flashmm_export\":1,"));
    assert!(lines[1..3660].iter().all(|l| l.contains("\"hash\":\"")));
    assert!(lines[3660].starts_with("{\"flashmm_export_end\":{\"entries\":3659,"));
}
