//! Damage sled would hide. When sled 0.34 opens a store with one damaged file it keeps what came
//! before the damage, deletes every blob written after it, and opens without an error, so one
//! flipped byte could silently cut a journal short. Two checks keep that loud:
//! - a small `head` file beside the store records how many entries were durable and the last
//!   one's chain hash; after sled opens, a journal shorter than that, or with another hash there,
//!   is refused;
//! - before sled opens, every blob's checksum is checked (sled's own format: a little-endian
//!   CRC-32 of the kind byte and the data, then the kind byte, then the data). A damaged blob is
//!   either the torn tail of a write that never became durable (a crash, a full disk), which sled
//!   rightly drops, or damage to what was durable. Which one, only the head file can tell after
//!   sled opens, so the damaged blob and every later one are first hard-linked aside: sled's
//!   deletions then lose nothing, and the links are removed once the head shows nothing durable
//!   went.

use super::codec::HASH_LEN;
use std::io::Read;
use std::path::{Path, PathBuf};

const HEAD_FILE: &str = "head";
const HEAD_MAGIC: &str = "flashmm journal head v1";

#[derive(Debug, PartialEq, Eq)]
pub struct DamagedBlob {
    pub path: PathBuf,
    pub why: String,
}

/// The first damaged blob under `db_dir/blobs`, in sled's order (by number), if any.
pub fn damaged_blob(db_dir: &Path) -> std::io::Result<Option<DamagedBlob>> {
    let blobs = db_dir.join("blobs");
    let entries = match std::fs::read_dir(&blobs) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut files: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries {
        let path = e?.path();
        // sled skips names it cannot parse, and so do we.
        if let Some(n) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
        {
            files.push((n, path));
        }
    }
    files.sort_unstable();
    let mut buf = Vec::new();
    for (_, path) in files {
        buf.clear();
        std::fs::File::open(&path)?.read_to_end(&mut buf)?;
        if let Some(why) = blob_fault(&buf) {
            return Ok(Some(DamagedBlob { path, why }));
        }
    }
    Ok(None)
}

fn blob_fault(b: &[u8]) -> Option<String> {
    if b.len() < 5 {
        return Some(format!("{} bytes, shorter than its 5-byte header", b.len()));
    }
    let want = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let got = crc32fast::hash(&b[4..]);
    (want != got).then(|| format!("its checksum is {got:08x}, but its header says {want:08x}"))
}

/// What sled 0.34 writes as its settings file for the settings `open_db` always uses.
const SLED_CONF: &[u8] = b"segment_size: 524288\nuse_compression: false\nversion: 0.34\n";

/// sled's settings file carries nothing of the journal's: it is fully determined by the settings
/// we open with. A damaged one (sled then refuses to open, blaming "a version earlier than 0.29"
/// or a missing parameter) is written again; `Some(why)` says it was.
pub fn repair_conf(db_dir: &Path) -> std::io::Result<Option<String>> {
    let path = db_dir.join("conf");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let sound = bytes.len() >= 4 && {
        let (text, crc) = bytes.split_at(bytes.len() - 4);
        crc32fast::hash(text).to_le_bytes() == crc
    };
    if sound {
        return Ok(None);
    }
    let mut good = SLED_CONF.to_vec();
    good.extend_from_slice(&crc32fast::hash(SLED_CONF).to_le_bytes());
    std::fs::rename(&path, db_dir.join("conf.damaged"))?;
    std::fs::write(&path, good)?;
    Ok(Some(format!(
        "sled's settings file {} was damaged; it holds only the settings flashmm always opens with, so it was written again (the damaged one is conf.damaged beside it)",
        path.display()
    )))
}

/// Hard-links `damaged` and every blob numbered after it into a new `discarded-N` directory
/// beside the store, and returns that directory.
pub fn preserve_from(dir: &Path, damaged: &Path) -> std::io::Result<PathBuf> {
    let number = |p: &Path| -> Option<u64> { p.file_name()?.to_str()?.parse().ok() };
    let from = number(damaged).unwrap_or(0);
    let mut n = 0;
    let keep = loop {
        let k = dir.join(format!("discarded-{n}"));
        if !k.exists() {
            break k;
        }
        n += 1;
    };
    std::fs::create_dir(&keep)?;
    let blobs = damaged.parent().unwrap_or(dir);
    for e in std::fs::read_dir(blobs)? {
        let p = e?.path();
        if number(&p).is_some_and(|b| b >= from) {
            if let Some(name) = p.file_name() {
                std::fs::hard_link(&p, keep.join(name))?;
            }
        }
    }
    Ok(keep)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub entries: u64,
    pub hash: [u8; HASH_LEN],
}

pub fn read_head(dir: &Path) -> Option<Head> {
    let text = std::fs::read_to_string(dir.join(HEAD_FILE)).ok()?;
    let mut lines = text.lines();
    if lines.next()? != HEAD_MAGIC {
        return None;
    }
    let entries = lines.next()?.strip_prefix("entries ")?.parse().ok()?;
    let hash = super::jsonl::from_hex(lines.next()?.strip_prefix("hash ")?)?;
    Some(Head { entries, hash })
}

/// Replaces the head file (write, then rename, so a reader never sees half of one).
pub fn write_head(dir: &Path, head: Head) -> std::io::Result<()> {
    let tmp = dir.join("head.tmp");
    let text = format!(
        "{HEAD_MAGIC}\nentries {}\nhash {}\n",
        head.entries,
        super::binance::hex(&head.hash)
    );
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(HEAD_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(data: &[u8]) -> Vec<u8> {
        let mut b = crc32fast::hash(data).to_le_bytes().to_vec();
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn a_sound_blob_passes_and_any_flipped_bit_is_found() {
        let good = blob(b"\x01some block bytes");
        assert_eq!(blob_fault(&good), None);
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(blob_fault(&bad).is_some(), "byte {i} bit {bit}");
            }
        }
        assert!(blob_fault(&good[..4]).is_some());
    }

    #[test]
    fn the_first_damaged_blob_is_named_in_sleds_order() {
        let d = tempfile::tempdir().expect("tempdir");
        let blobs = d.path().join("blobs");
        std::fs::create_dir(&blobs).expect("mkdir");
        assert_eq!(damaged_blob(d.path()).expect("scan"), None);
        std::fs::write(blobs.join("10"), blob(b"\x01a")).expect("write");
        std::fs::write(blobs.join("9"), blob(b"\x01b")).expect("write");
        assert_eq!(damaged_blob(d.path()).expect("scan"), None);
        let mut bad = blob(b"\x01c");
        bad[5] ^= 4;
        std::fs::write(blobs.join("100"), &bad).expect("write");
        std::fs::write(blobs.join("11"), &bad).expect("write");
        let found = damaged_blob(d.path()).expect("scan").expect("damage");
        assert_eq!(found.path, blobs.join("11"));
    }

    #[test]
    fn a_damaged_settings_file_is_rewritten_as_sled_would_and_a_sound_one_is_left() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(repair_conf(d.path()).expect("repair"), None, "no file");
        let mut good = SLED_CONF.to_vec();
        good.extend_from_slice(&crc32fast::hash(SLED_CONF).to_le_bytes());
        std::fs::write(d.path().join("conf"), &good).expect("write");
        assert_eq!(repair_conf(d.path()).expect("repair"), None, "sound");
        let mut bad = good.clone();
        bad[31] ^= 4;
        std::fs::write(d.path().join("conf"), &bad).expect("write");
        assert!(repair_conf(d.path()).expect("repair").is_some());
        assert_eq!(std::fs::read(d.path().join("conf")).expect("read"), good);
        assert_eq!(
            std::fs::read(d.path().join("conf.damaged")).expect("read"),
            bad
        );
    }

    #[test]
    fn the_head_round_trips_and_garbage_reads_as_none() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_head(d.path()), None);
        let h = Head {
            entries: 41_249,
            hash: [0xab; HASH_LEN],
        };
        write_head(d.path(), h).expect("write");
        assert_eq!(read_head(d.path()), Some(h));
        std::fs::write(
            d.path().join(HEAD_FILE),
            "flashmm journal head v1\nentries x\n",
        )
        .expect("write");
        assert_eq!(read_head(d.path()), None);
    }
}
