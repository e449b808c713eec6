//! One damaged byte (issue 11, defect 7): wherever it lands in the journal's files, opening and
//! verifying either show every entry as written, or stop with a message that names the damaged
//! file or the seq. Never a panic, and never "intact" with entries missing: sled, left alone,
//! drops everything after a damaged blob and opens as if nothing happened.

use crate::common::*;
use flashmm_journal::{Journal, JournalError, Verified};
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if !p.ends_with("flashmm.lock") {
            out.push(p);
        }
    }
    out.sort();
}

/// The shipped recording, imported and closed, as a pristine directory.
fn pristine() -> (tempfile::TempDir, PathBuf, u64, [u8; 32]) {
    let (d, j, w) = imported();
    w.close().unwrap();
    let Verified::Intact { entries, head } = j.verify().unwrap() else {
        panic!("fixture journal broken")
    };
    let path = j.dir().to_path_buf();
    drop(j);
    (d, path, entries, head)
}

#[test]
fn a_flipped_bit_anywhere_is_named_or_harmless_never_silent() {
    let (_d, src, entries, head) = pristine();
    let mut all = Vec::new();
    files(&src, &mut all);
    let work = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut named, mut harmless) = (0, 0);
    for trial in 0..60 {
        let dir = work.path().join(format!("t{trial}"));
        copy_dir(&src, &dir);
        let rel = all[(next() % all.len() as u64) as usize]
            .strip_prefix(&src)
            .unwrap()
            .to_path_buf();
        let path = dir.join(&rel);
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let at = (next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(&path, &bytes).unwrap();
        let what = format!("trial {trial}: byte {at} of {}", rel.display());
        match Journal::open(&dir).and_then(|j| j.verify()) {
            Ok(Verified::Intact {
                entries: n,
                head: h,
            }) => {
                assert_eq!((n, h), (entries, head), "{what}: intact but not as written");
                harmless += 1;
            }
            Ok(Verified::Broken { seq, detail, .. }) => {
                assert!(seq < entries, "{what}: {detail}");
                named += 1;
            }
            Err(e @ JournalError::Lost { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains(dir.to_str().unwrap()) && m.contains("Recovery"),
                    "{what}: {m}"
                );
                named += 1;
            }
            Err(e @ (JournalError::Open { .. } | JournalError::Corrupt { .. })) => {
                let m = e.to_string();
                assert!(
                    m.contains(dir.to_str().unwrap()) || m.contains("seq"),
                    "{what}: {m}"
                );
                named += 1;
            }
            Err(other) => panic!("{what}: {other}"),
        }
    }
    eprintln!("{named} flips named, {harmless} harmless");
    assert!(named > 30, "only {named} of 60 flips were found");
}

#[test]
fn a_damaged_blob_mid_journal_is_refused_and_what_sled_dropped_is_kept() {
    let (_d, src, entries, _) = pristine();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("j");
    copy_dir(&src, &dir);
    let mut blobs = Vec::new();
    files(&dir.join("db/blobs"), &mut blobs);
    let number = |p: &Path| -> u64 { p.file_name().unwrap().to_str().unwrap().parse().unwrap() };
    blobs.sort_by_key(|p| number(p));
    let victim = blobs[blobs.len() / 3].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();
    let later: Vec<(PathBuf, Vec<u8>)> = blobs
        .iter()
        .filter(|p| number(p) >= number(&victim))
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    match Journal::open(&dir) {
        Err(JournalError::Lost {
            found,
            expected,
            detail,
            ..
        }) => {
            assert_eq!(expected, entries);
            assert!(found < entries);
            assert!(detail.contains(victim.to_str().unwrap()), "{detail}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened a journal that sled cut short"),
    }
    // Every blob sled dropped is kept, byte for byte, for a salvage.
    let kept = dir.join("discarded-0");
    for (p, b) in &later {
        let k = kept.join(p.file_name().unwrap());
        assert_eq!(&std::fs::read(&k).unwrap(), b, "{}", k.display());
    }
}

#[test]
fn a_damaged_settings_file_is_repaired_and_every_entry_is_kept() {
    let (_d, src, entries, head) = pristine();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("j");
    copy_dir(&src, &dir);
    let conf = dir.join("db/conf");
    let good = std::fs::read(&conf).unwrap();
    let mut bad = good.clone();
    bad[31] ^= 4;
    std::fs::write(&conf, &bad).unwrap();
    let j = Journal::open(&dir).unwrap();
    assert_eq!(j.repairs().len(), 1, "{:?}", j.repairs());
    assert_eq!(j.verify().unwrap(), Verified::Intact { entries, head });
    assert_eq!(
        std::fs::read(&conf).unwrap(),
        good,
        "rewritten as sled wrote it"
    );
}

#[test]
fn a_store_that_lost_entries_is_refused_not_shown_short() {
    let (_d, src, entries, _) = pristine();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("j");
    copy_dir(&src, &dir);
    // What sled does after damage to its log: the newest blocks are gone, without an error.
    {
        let j = Journal::open(&dir).unwrap();
        let last = j.raw_events().last().unwrap().unwrap().0;
        j.raw_events().remove(last).unwrap();
        j.raw_events().flush().unwrap();
    }
    match Journal::open(&dir) {
        Err(JournalError::Lost {
            found, expected, ..
        }) => {
            assert_eq!(expected, entries);
            assert!(found < entries);
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a journal missing its last block opened"),
    }
}
