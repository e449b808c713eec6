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
    settle(d, j)
}

/// The same, written as releases before segment files wrote it: the blocks inside sled, which
/// keeps them as blob files. This release still reads such journals, and guards them.
fn pristine_inline() -> (tempfile::TempDir, PathBuf, u64, [u8; 32]) {
    let d = tempfile::tempdir().unwrap();
    let j = Journal::open(d.path()).unwrap().with_inline_blocks();
    let mut w = j.writer().unwrap();
    flashmm_journal::binance::import(&mut w, &fixture(), &Default::default()).unwrap();
    w.close().unwrap();
    settle(d, j)
}

fn settle(d: tempfile::TempDir, j: Journal) -> (tempfile::TempDir, PathBuf, u64, [u8; 32]) {
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
    let (mut named, mut harmless, mut in_blocks) = (0, 0, 0);
    for trial in 0..60 {
        let dir = work.path().join(format!("t{trial}"));
        copy_dir(&src, &dir);
        // Every other flip lands in the blocks, where every byte is meaningful and must be found.
        let pick = match trial % 2 {
            0 => all
                .iter()
                .position(|p| p.starts_with(src.join("blocks")))
                .unwrap(),
            _ => (next() % all.len() as u64) as usize,
        };
        let rel = all[pick].strip_prefix(&src).unwrap().to_path_buf();
        let path = dir.join(&rel);
        let mut bytes = std::fs::read(&path).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let at = (next() % bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(&path, &bytes).unwrap();
        let what = format!("trial {trial}: byte {at} of {}", rel.display());
        let found = match Journal::open(&dir).and_then(|j| j.verify()) {
            Ok(Verified::Intact {
                entries: n,
                head: h,
            }) => {
                assert_eq!((n, h), (entries, head), "{what}: intact but not as written");
                harmless += 1;
                false
            }
            Ok(Verified::Broken { seq, detail, .. }) => {
                assert!(seq < entries, "{what}: {detail}");
                named += 1;
                true
            }
            Err(e @ JournalError::Lost { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains(dir.to_str().unwrap()) && m.contains("Recovery"),
                    "{what}: {m}"
                );
                named += 1;
                true
            }
            Err(e @ (JournalError::Open { .. } | JournalError::Corrupt { .. })) => {
                let m = e.to_string();
                assert!(
                    m.contains(dir.to_str().unwrap()) || m.contains("seq"),
                    "{what}: {m}"
                );
                named += 1;
                true
            }
            Err(other) => panic!("{what}: {other}"),
        };
        if rel.starts_with("blocks") {
            assert!(found, "{what}: a flipped byte in a block went unnoticed");
            in_blocks += 1;
        }
    }
    eprintln!("{named} flips named ({in_blocks} in blocks), {harmless} harmless");
    assert!(in_blocks >= 30, "only {in_blocks} flips landed in blocks");
}

#[test]
fn a_damaged_blob_mid_journal_is_refused_and_what_sled_dropped_is_kept() {
    let (_d, src, entries, _) = pristine_inline();
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
fn a_damaged_block_mid_journal_is_named_and_every_other_block_still_reads() {
    let (_d, src, entries, _) = pristine();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("j");
    copy_dir(&src, &dir);
    let seg = dir.join("blocks/00000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    let j = Journal::open(&dir).unwrap();
    let Verified::Broken {
        seq,
        detail,
        checked,
    } = j.verify().unwrap()
    else {
        panic!("a flipped byte mid-segment verified as intact")
    };
    assert!(
        seq > 0 && seq < entries && checked == seq,
        "{seq} {checked}: {detail}"
    );
    assert!(
        detail.contains(seg.to_str().unwrap()) && detail.contains("checksum"),
        "{detail}"
    );
    // Only that block is lost to a reader: what comes before and after it reads.
    let before = j.read(0).unwrap().take_while(|e| e.is_ok()).count() as u64;
    assert_eq!(before, seq);
    let next_block = {
        let tree = j.raw_events();
        let (k, _) = tree
            .range((seq + 1).to_be_bytes()..)
            .next()
            .unwrap()
            .unwrap();
        u64::from_be_bytes(k.as_ref().try_into().unwrap())
    };
    let after = j
        .read(next_block)
        .unwrap()
        .try_fold(0u64, |n, e| e.map(|_| n + 1))
        .unwrap();
    assert_eq!(after, entries - next_block);
}

#[test]
fn a_block_torn_by_power_loss_after_its_index_is_dropped_when_it_was_never_durable() {
    let (_d, src, entries, _) = pristine();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("j");
    copy_dir(&src, &dir);
    let last_block = {
        let j = Journal::open(&dir).unwrap();
        let (k, _) = j.raw_events().last().unwrap().unwrap();
        u64::from_be_bytes(k.as_ref().try_into().unwrap())
    };
    let seg = dir.join("blocks/00000000.seg");
    let len = std::fs::metadata(&seg).unwrap().len();
    let cut = |head_entries: u64| {
        let d = work.path().join(format!("cut{head_entries}"));
        copy_dir(&dir, &d);
        std::fs::OpenOptions::new()
            .write(true)
            .open(d.join("blocks/00000000.seg"))
            .unwrap()
            .set_len(len - 7)
            .unwrap();
        let hash = {
            let j = Journal::open(&dir).unwrap();
            let mut hash = None;
            j.for_each_raw(head_entries - 1, &mut |raw| {
                hash = Some(raw.hash);
                Ok(false)
            })
            .unwrap();
            hash.unwrap()
        };
        let head = flashmm_journal::integrity::Head {
            entries: head_entries,
            hash,
        };
        flashmm_journal::integrity::write_head(&d, head).unwrap();
        d
    };
    // The head file shows the last block was never flushed: its index goes, with a note.
    let d = cut(last_block);
    let j = Journal::open(&d).unwrap();
    assert_eq!(j.repairs().len(), 1, "{:?}", j.repairs());
    assert!(
        j.repairs()[0].contains(&format!("seq {last_block}")),
        "{:?}",
        j.repairs()
    );
    assert!(matches!(j.verify().unwrap(), Verified::Intact { entries: n, .. } if n == last_block));
    // Written on after the repair, it continues in a new segment and verifies.
    let mut w = j.writer().unwrap();
    let start = flashmm_core::event::SessionStart {
        mode: flashmm_core::event::Mode::Live,
        version: "t".into(),
        config: String::new(),
        label: "after the repair".into(),
        parent: None,
        source: None,
    };
    let s = w.begin(1, start).unwrap();
    w.end(
        s,
        2,
        flashmm_core::event::SessionStatus::Completed,
        String::new(),
    )
    .unwrap();
    w.close().unwrap();
    assert!(d.join("blocks/00000001.seg").exists());
    assert!(
        matches!(j.verify().unwrap(), Verified::Intact { entries: n, .. } if n == last_block + 2)
    );
    drop(j);
    // When the head says it was durable, nothing is dropped: opening refuses, naming the file.
    let d = cut(entries);
    match Journal::open(&d) {
        Err(e) => assert!(
            e.to_string().contains("00000000.seg") && e.to_string().contains("truncated"),
            "{e}"
        ),
        Ok(_) => panic!("opened a journal whose durable last block is cut short"),
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
