//! The journal: encoding of every type, ordering and seeking, sessions, the hash chain, damage,
//! locking and versions.

use crate::common::*;
use flashmm_core::event::*;
use flashmm_journal::codec;
use flashmm_journal::{jsonl, Journal, JournalError, Verified};

fn entry(seq: u64, ts_ns: i64, session: u64, body: Body) -> Entry {
    Entry {
        seq,
        ts_ns,
        venue_ts_ns: Some(ts_ns - 5),
        session,
        cause: seq.checked_sub(1),
        body,
    }
}

#[test]
fn every_type_round_trips_through_bincode_and_json() {
    for (i, body) in every_body().into_iter().enumerate() {
        let e = entry(i as u64, 1_723_161_253_937_085_768, 2, body);
        let mut bytes = Vec::new();
        codec::encode_entry(&e, &mut bytes).unwrap();
        let back = codec::decode_entry(e.seq, &bytes).unwrap();
        assert_eq!(back, e, "bincode, {}", e.body.kind());
        // Re-encoding gives the same bytes: scales survive, so replay can compare bytes.
        let mut again = Vec::new();
        codec::encode_entry(&back, &mut again).unwrap();
        assert_eq!(again, bytes);
        let json = serde_json::to_string(&e).unwrap();
        let from_json: Entry = serde_json::from_str(&json).unwrap();
        assert_eq!(from_json, e, "json, {}", e.body.kind());
    }
}

#[test]
fn decimals_are_strings_in_json() {
    let t = Body::Input(Input::Trade(Trade {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        trade_id: 1,
        price: rust_decimal_macros::dec!(61686.00000000),
        qty: rust_decimal_macros::dec!(0.0014),
        aggressor: Side::Buy,
    }));
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains(r#""price":"61686.00000000""#), "{json}");
}

fn journal_with(bodies: usize) -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let start = SessionStart {
        mode: Mode::Live,
        version: "t".into(),
        config: String::new(),
        label: "t".into(),
        parent: None,
        source: None,
    };
    let id = w.begin(0, start).unwrap();
    for i in 0..bodies {
        let mut e = Entry {
            seq: 0,
            ts_ns: i as i64 * 250_000_000,
            venue_ts_ns: None,
            session: id,
            cause: None,
            body: Body::Input(Input::Timer),
        };
        w.append(&mut e).unwrap();
        assert_eq!(e.seq, i as u64 + 1);
    }
    w.end(
        id,
        bodies as i64 * 250_000_000,
        SessionStatus::Completed,
        String::new(),
    )
    .unwrap();
    w.close().unwrap();
    (dir, j)
}

#[test]
fn append_assigns_seqs_and_reads_back_in_order_across_blocks() {
    let (_d, j) = journal_with(5000);
    let seqs: Vec<u64> = j.read(0).unwrap().map(|e| e.unwrap().seq).collect();
    assert_eq!(seqs, (0..5002).collect::<Vec<_>>());
    let from: Vec<u64> = j
        .read(3000)
        .unwrap()
        .take(3)
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(from, [3000, 3001, 3002]);
    assert_eq!(j.get(4321).unwrap().unwrap().ts_ns, 4320 * 250_000_000);
    let s = j.session(1).unwrap();
    assert_eq!(
        (s.first_seq, s.last_seq, s.entries, s.first_ts, s.last_ts),
        (0, 5001, 5002, 0, 5000 * 250_000_000)
    );
    assert_eq!(s.status, Some(SessionStatus::Completed));
}

#[test]
fn time_seek_goes_through_the_index() {
    let (_d, j) = journal_with(5000);
    // 4 entries per second; second 100 starts at entry 400, seq 401.
    assert_eq!(j.seek_time(1, 100_000_000_000).unwrap(), Some(401));
    assert_eq!(
        j.seq_range(1, Some(100_100_000_000), Some(101_000_000_000))
            .unwrap(),
        Some((402, 405))
    );
    assert_eq!(j.seek_time(1, 10_000_000_000_000).unwrap(), None);
    assert_eq!(j.seek_time(2, 0).unwrap(), None);
}

#[test]
fn ended_sessions_refuse_appends() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path()).unwrap();
    let mut w = j.writer().unwrap();
    let start = SessionStart {
        mode: Mode::Live,
        version: "t".into(),
        config: String::new(),
        label: String::new(),
        parent: None,
        source: None,
    };
    let id = w.begin(0, start).unwrap();
    w.end(id, 1, SessionStatus::Completed, String::new())
        .unwrap();
    let mut e = Entry {
        seq: 0,
        ts_ns: 2,
        venue_ts_ns: None,
        session: id,
        cause: None,
        body: Body::Input(Input::Timer),
    };
    assert!(matches!(w.append(&mut e), Err(JournalError::NotOpen(_))));
}

#[test]
fn verify_accepts_an_intact_journal() {
    let (_d, j) = journal_with(3000);
    match j.verify().unwrap() {
        Verified::Intact { entries, .. } => assert_eq!(entries, 3002),
        other => panic!("{other:?}"),
    }
}

/// Rewrites the block holding `seq` with `edit` applied to that entry's encoded bytes, keeping
/// the stored hashes: what an attacker or a bad disk would leave behind. `plain` writes it in
/// layout 2 (every entry's hash stored, as older releases wrote), otherwise in layout 3
/// (compressed, the hashes at the block's edges).
fn tamper_as(j: &Journal, seq: u64, plain: bool, edit: impl Fn(&mut Vec<u8>)) {
    let tree = j.raw_events();
    let (k, v) = tree
        .range(..=seq.to_be_bytes())
        .next_back()
        .unwrap()
        .unwrap();
    let first = u64::from_be_bytes(k.as_ref().try_into().unwrap());
    let v = j.raw_block(first, &v).unwrap();
    let mut scratch = Vec::new();
    let raws = codec::split_block(first, &v, &mut scratch).unwrap();
    let mut block = vec![if plain {
        codec::PLAIN
    } else {
        codec::COMPRESSED
    }];
    block.extend_from_slice(&(raws.len() as u32).to_le_bytes());
    if !plain {
        block.extend_from_slice(&v[codec::BLOCK_HEADER..codec::BLOCK_HEADER + 64]);
    }
    let mut body = Vec::new();
    for r in &raws {
        let mut bytes = r.bytes.to_vec();
        if r.seq == seq {
            edit(&mut bytes);
        }
        body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        if plain {
            body.extend_from_slice(&r.hash);
        }
        body.extend_from_slice(&bytes);
    }
    if plain {
        block.extend_from_slice(&body);
    } else {
        block.extend_from_slice(&zstd::bulk::compress(&body, 3).unwrap());
    }
    tree.insert(k, block).unwrap();
}

fn tamper(j: &Journal, seq: u64, edit: impl Fn(&mut Vec<u8>)) {
    tamper_as(j, seq, true, edit)
}

#[test]
fn a_rewritten_entry_in_a_compressed_block_breaks_the_chain_at_its_block() {
    let (_d, j) = journal_with(3000);
    let mut forged = j.get(1234).unwrap().unwrap();
    forged.ts_ns += 1;
    tamper_as(&j, 1234, false, |bytes| {
        bytes.clear();
        codec::encode_entry(&forged, bytes).unwrap();
    });
    let first_of_block = {
        let tree = j.raw_events();
        let (k, _) = tree
            .range(..=1234u64.to_be_bytes())
            .next_back()
            .unwrap()
            .unwrap();
        u64::from_be_bytes(k.as_ref().try_into().unwrap())
    };
    match j.verify().unwrap() {
        Verified::Broken { seq, detail, .. } => {
            assert_eq!(seq, first_of_block, "{detail}");
            assert!(
                detail.contains("altered") && detail.contains(&format!("{first_of_block}..=")),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Reading it is an error too, never the forged entry.
    assert!(j.read(0).unwrap().any(|e| e.is_err()));
}

#[test]
fn a_rewritten_entry_breaks_the_chain_at_its_seq() {
    let (_d, j) = journal_with(3000);
    // Replace entry 1234 by a valid, different entry: it decodes, but the chain catches it.
    let mut forged = j.get(1234).unwrap().unwrap();
    forged.ts_ns += 1;
    tamper(&j, 1234, |bytes| {
        bytes.clear();
        codec::encode_entry(&forged, bytes).unwrap();
    });
    assert_eq!(j.get(1234).unwrap().unwrap().ts_ns, forged.ts_ns);
    match j.verify().unwrap() {
        Verified::Broken { seq, checked, .. } => assert_eq!((seq, checked), (1234, 1234)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_corrupt_entry_is_an_error_with_its_seq_not_a_panic() {
    let (_d, j) = journal_with(3000);
    tamper(&j, 2100, |bytes| bytes.iter_mut().for_each(|b| *b = 0xff));
    let err = j.read(2000).unwrap().find_map(|e| e.err()).unwrap();
    match &err {
        JournalError::Corrupt { seq, .. } => assert_eq!(*seq, 2100),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("seq 2100"));
    assert!(matches!(
        j.verify().unwrap(),
        Verified::Broken { seq: 2100, .. }
    ));
}

#[test]
fn a_truncated_block_is_an_error_with_a_seq() {
    let (_d, j) = journal_with(100);
    let tree = j.raw_events();
    let (k, v) = tree.first().unwrap().unwrap();
    let v = j.raw_block(0, &v).unwrap();
    tree.insert(k, &v[..v.len() - 10]).unwrap();
    let err = j.read(0).unwrap().find_map(|e| e.err()).unwrap();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn a_locked_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _j = Journal::open(dir.path()).unwrap();
    let err = Journal::open(dir.path()).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("another flashmm process")
            && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("--journal"), "{msg}");
}

#[test]
fn an_unknown_format_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", &[99u8])
            .unwrap();
        db.flush().unwrap();
    }
    let err = Journal::open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("format version 99")
            && msg.contains(&format!("format version {FORMAT_VERSION}")),
        "{msg}"
    );
}

#[test]
fn jsonl_export_import_export_is_byte_identical() {
    let (_d, j) = imported_small();
    let mut first = Vec::new();
    let n = jsonl::export(&j, None, &mut first).unwrap();
    assert!(n > 10);
    let dir2 = tempfile::tempdir().unwrap();
    let j2 = Journal::open(dir2.path()).unwrap();
    let mut w2 = j2.writer().unwrap();
    assert_eq!(
        jsonl::import(&mut w2, || Ok(first.as_slice()), &Default::default())
            .unwrap()
            .entries,
        n
    );
    w2.close().unwrap();
    let mut second = Vec::new();
    jsonl::export(&j2, None, &mut second).unwrap();
    assert_eq!(
        String::from_utf8(first.clone()).unwrap(),
        String::from_utf8(second).unwrap()
    );
    assert_eq!(j2.sessions().unwrap(), j.sessions().unwrap());
    // An edited line is caught by its hash.
    let text = String::from_utf8(first)
        .unwrap()
        .replacen("\"Timer\"", "\"Timer\" ", 1);
    let edited = text.replacen("\"ts_ns\":250000000", "\"ts_ns\":250000001", 1);
    let dir3 = tempfile::tempdir().unwrap();
    let j3 = Journal::open(dir3.path()).unwrap();
    let mut w3 = j3.writer().unwrap();
    let err = jsonl::import(&mut w3, || Ok(edited.as_bytes()), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("hash mismatch at seq 2"), "{err}");
}

fn imported_small() -> (tempfile::TempDir, Journal) {
    journal_with(50)
}

#[test]
fn an_unknown_block_layout_is_refused_naming_both() {
    let (_d, j) = journal_with(100);
    let tree = j.raw_events();
    let (k, v) = tree.first().unwrap().unwrap();
    let mut b = j.raw_block(0, &v).unwrap();
    b[0] = 9;
    tree.insert(k, b).unwrap();
    let err = j.read(0).unwrap().find_map(|e| e.err()).unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("format version 9") && msg.contains(&format!("version {}", codec::COMPRESSED)),
        "{msg}"
    );
}

/// Issue 11, defect 8: sled kept whole blocks (as blob files its cache did not count), so memory
/// followed the journal. Now sled holds only each block's place, and the bytes are in segments.
#[test]
fn sled_holds_only_the_places_of_blocks_and_the_segments_hold_the_bytes() {
    let (d, j, w) = crate::common::imported();
    w.close().unwrap();
    let mut blocks = 0;
    for kv in j.raw_events().iter() {
        let (k, v) = kv.unwrap();
        let place = flashmm_journal::segment::Place::decode(&v)
            .unwrap_or_else(|| panic!("a value of {} bytes is not a place", v.len()));
        let first = u64::from_be_bytes(k.as_ref().try_into().unwrap());
        assert_eq!(j.raw_block(first, &v).unwrap().len(), place.len as usize);
        blocks += 1;
    }
    assert!(blocks >= 2, "{blocks}");
    let seg_bytes: u64 = flashmm_journal::segment::segments(d.path())
        .unwrap()
        .into_iter()
        .map(|s| {
            std::fs::metadata(flashmm_journal::segment::path(d.path(), s))
                .unwrap()
                .len()
        })
        .sum();
    assert!(seg_bytes > 1_000_000, "{seg_bytes}");
    assert!(
        !d.path().join("db/blobs").read_dir().unwrap().any(|_| true),
        "sled wrote blobs"
    );
}
