//! Blocks live in append-only segment files, `DIR/blocks/NNNNNNNN.seg`; sled's `events` tree
//! keeps only where each block is (a `Place`, 21 bytes). sled held whole blocks before, and
//! kept the nodes it stores as blob files outside its cache accounting, so every command's memory
//! grew with the journal; a segment is read with `pread` into one reused buffer instead.
//!
//! A record is `[magic "FMB1"][first seq: u64 LE][len: u32 LE][crc32 of the block: u32 LE]`
//! then the block (`codec`'s layout). The place in sled repeats the length and checksum, so a
//! damaged record is caught whichever copy was hit; the record's own header is what would let a
//! salvage find blocks without sled.
//!
//! Nothing in a segment is rewritten. A writer appends to the newest segment only if that file
//! ends exactly where its last indexed block does; otherwise (a torn write, bytes whose index
//! sled lost) it starts the next segment and leaves those bytes as they were, for a salvage.

use super::JournalError;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first byte of a sled value that is a `Place`; inline blocks start with their layout (2 or 3).
pub const POINTER: u8 = b'S';
const PLACE_LEN: usize = 21;
const MAGIC: [u8; 4] = *b"FMB1";
const RECORD_HEADER: usize = 20;
/// A segment is closed once it passes this; a block is never split across two.
pub const SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
/// A bound for a damaged length: the writer cuts blocks at 8 MiB, and one entry may be larger.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub segment: u32,
    /// Where the block's bytes start, after its record header.
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl Place {
    pub fn encode(&self) -> [u8; PLACE_LEN] {
        let mut v = [0u8; PLACE_LEN];
        v[0] = POINTER;
        v[1..5].copy_from_slice(&self.segment.to_le_bytes());
        v[5..13].copy_from_slice(&self.offset.to_le_bytes());
        v[13..17].copy_from_slice(&self.len.to_le_bytes());
        v[17..21].copy_from_slice(&self.crc.to_le_bytes());
        v
    }

    /// `None` for a value that is not a place (an inline block of an older journal).
    pub fn decode(v: &[u8]) -> Option<Place> {
        if v.len() != PLACE_LEN || v[0] != POINTER {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&v[5..13]);
        Some(Place {
            segment: u32_at(1),
            offset: u64::from_le_bytes(off),
            len: u32_at(13),
            crc: u32_at(17),
        })
    }

    /// The byte after the block: where the next record of its segment starts.
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }
}

pub fn blocks_dir(journal: &Path) -> PathBuf {
    journal.join("blocks")
}

pub fn path(journal: &Path, segment: u32) -> PathBuf {
    blocks_dir(journal).join(format!("{segment:08}.seg"))
}

/// The segment numbers present, in order.
pub fn segments(journal: &Path) -> std::io::Result<Vec<u32>> {
    let rd = match std::fs::read_dir(blocks_dir(journal)) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let name = e?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The size of the largest segment: what a file-size limit (`ulimit -f`) leaves room for.
pub fn largest(journal: &Path) -> u64 {
    let Ok(all) = segments(journal) else { return 0 };
    all.into_iter()
        .filter_map(|s| std::fs::metadata(path(journal, s)).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// A position in the segments, for `Appender::rollback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    segment: u32,
    len: u64,
}

/// Appends records to the newest segment. Owned by the journal's writer thread.
pub struct Appender {
    journal: PathBuf,
    segment: u32,
    file: File,
    len: u64,
    /// Whether the file was created since the last sync: its directory entry needs a sync too.
    fresh: bool,
    /// `SEGMENT_BYTES`, but for tests.
    limit: u64,
}

impl Appender {
    /// `last`: the place of the journal's last indexed block, if it is in a segment.
    pub fn open(journal: &Path, last: Option<Place>) -> std::io::Result<Appender> {
        Appender::open_with_limit(journal, last, SEGMENT_BYTES)
    }

    fn open_with_limit(
        journal: &Path,
        last: Option<Place>,
        limit: u64,
    ) -> std::io::Result<Appender> {
        std::fs::create_dir_all(blocks_dir(journal))?;
        let newest = segments(journal)?.last().copied();
        if let Some(n) = newest {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(path(journal, n))?;
            let len = file.metadata()?.len();
            let named = last.filter(|p| p.segment == n);
            // An empty newest segment (a writer that wrote nothing) is taken over, not skipped.
            if named.map_or(len == 0, |p| len == p.end()) {
                return Ok(Appender {
                    journal: journal.to_path_buf(),
                    segment: n,
                    file,
                    len,
                    fresh: false,
                    limit,
                });
            }
        }
        let next = match (newest, last) {
            (Some(n), _) => n.saturating_add(1),
            (None, Some(p)) => p.segment.saturating_add(1),
            (None, None) => 0,
        };
        Appender::create(journal, next, limit)
    }

    fn create(journal: &Path, segment: u32, limit: u64) -> std::io::Result<Appender> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path(journal, segment))?;
        Ok(Appender {
            journal: journal.to_path_buf(),
            segment,
            file,
            len: 0,
            fresh: true,
            limit,
        })
    }

    /// Writes one block as a record and returns its place. A record that fails part way is cut
    /// off again where that is possible; if not, the next writer starts a new segment after it.
    pub fn append(&mut self, first_seq: u64, block: &[u8]) -> std::io::Result<Place> {
        let len = u32::try_from(block.len())
            .ok()
            .filter(|n| *n <= MAX_RECORD)
            .ok_or_else(|| {
                std::io::Error::other(format!("a block of {} bytes is too large", block.len()))
            })?;
        if self.len > 0 && self.len + (RECORD_HEADER + block.len()) as u64 > self.limit {
            self.sync()?;
            *self = Appender::create(&self.journal, self.segment.saturating_add(1), self.limit)?;
        }
        let crc = crc32fast::hash(block);
        let mut header = [0u8; RECORD_HEADER];
        header[..4].copy_from_slice(&MAGIC);
        header[4..12].copy_from_slice(&first_seq.to_le_bytes());
        header[12..16].copy_from_slice(&len.to_le_bytes());
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        let written = self
            .file
            .write_all(&header)
            .and_then(|()| self.file.write_all(block));
        if let Err(e) = written {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        let place = Place {
            segment: self.segment,
            offset: self.len + RECORD_HEADER as u64,
            len,
            crc,
        };
        self.len = place.end();
        Ok(place)
    }

    /// Where the next record would go: what `rollback` cuts back to.
    pub fn mark(&self) -> Mark {
        Mark {
            segment: self.segment,
            len: self.len,
        }
    }

    /// Removes every record appended since `m`: the segments begun since are deleted and the
    /// one that was newest is cut back to its length then, so the files are as they were.
    pub fn rollback(&mut self, m: Mark) -> std::io::Result<()> {
        if self.segment != m.segment {
            for s in m.segment.saturating_add(1)..=self.segment {
                match std::fs::remove_file(path(&self.journal, s)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            self.file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .open(path(&self.journal, m.segment))?;
            self.segment = m.segment;
        }
        self.file.set_len(m.len)?;
        self.len = m.len;
        Ok(())
    }

    /// Makes the records durable against power loss, before sled's index that names them.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        if self.fresh {
            File::open(blocks_dir(&self.journal))?.sync_all()?;
            self.fresh = false;
        }
        Ok(())
    }
}

/// Reads blocks from segments, keeping the last segment opened.
pub struct Segments {
    journal: PathBuf,
    open: Option<(u32, File)>,
}

impl Segments {
    pub fn new(journal: &Path) -> Segments {
        Segments {
            journal: journal.to_path_buf(),
            open: None,
        }
    }

    /// The block a sled value names: itself when inline, else read from its segment into `buf`.
    pub fn block<'a>(
        &mut self,
        first_seq: u64,
        value: &'a [u8],
        buf: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], JournalError> {
        match Place::decode(value) {
            None => Ok(value),
            Some(p) => {
                self.read(first_seq, p, buf)?;
                Ok(buf)
            }
        }
    }

    fn read(&mut self, first_seq: u64, p: Place, buf: &mut Vec<u8>) -> Result<(), JournalError> {
        let file_path = path(&self.journal, p.segment);
        let corrupt = |detail: String| JournalError::Corrupt {
            seq: first_seq,
            detail: format!(
                "the block at byte {} of {} {detail}",
                p.offset,
                file_path.display()
            ),
        };
        if p.len > MAX_RECORD || p.offset < RECORD_HEADER as u64 {
            return Err(corrupt("has an impossible place in the index".into()));
        }
        let file = match &self.open {
            Some((n, f)) if *n == p.segment => f,
            _ => {
                let f =
                    File::open(&file_path).map_err(|e| corrupt(format!("cannot be read: {e}")))?;
                &self.open.insert((p.segment, f)).1
            }
        };
        let mut header = [0u8; RECORD_HEADER];
        buf.clear();
        buf.resize(p.len as usize, 0);
        file.read_exact_at(&mut header, p.offset - RECORD_HEADER as u64)
            .and_then(|()| file.read_exact_at(buf, p.offset))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => corrupt(format!(
                    "is missing: the file ends before its {} bytes (truncated)",
                    p.len
                )),
                _ => corrupt(format!("cannot be read: {e}")),
            })?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&header[4..12]);
        let fields_agree = header[..4] == MAGIC
            && u64::from_le_bytes(seq) == first_seq
            && header[12..16] == p.len.to_le_bytes()
            && header[16..20] == p.crc.to_le_bytes();
        if !fields_agree {
            return Err(corrupt(
                "has a damaged record header, or the index names the wrong place".into(),
            ));
        }
        if crc32fast::hash(buf) != p.crc {
            return Err(corrupt(
                "is damaged: its checksum does not match (a flipped byte on disk)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(s: &mut Segments, first: u64, p: Place) -> Result<Vec<u8>, JournalError> {
        let mut buf = Vec::new();
        let v = p.encode();
        s.block(first, &v, &mut buf).map(|b| b.to_vec())
    }

    #[test]
    fn a_place_round_trips_and_an_inline_block_is_not_one() {
        let p = Place {
            segment: 7,
            offset: 1 << 40,
            len: 12345,
            crc: 0xdead_beef,
        };
        assert_eq!(Place::decode(&p.encode()), Some(p));
        assert_eq!(Place::decode(&[3, 0, 0, 0, 0]), None);
        assert_eq!(Place::decode(&p.encode()[..20]), None);
        assert_eq!(p.end(), (1 << 40) + 12345);
    }

    #[test]
    fn blocks_read_back_and_any_damage_is_named_with_the_file_and_seq() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut a = Appender::open(d.path(), None).expect("open");
        let p1 = a.append(0, b"\x03first block").expect("append");
        let p2 = a.append(100, b"\x03second").expect("append");
        a.sync().expect("sync");
        assert_eq!((p1.segment, p1.offset), (0, 20));
        assert_eq!(p2.offset, p1.end() + 20);
        let mut s = Segments::new(d.path());
        assert_eq!(read(&mut s, 0, p1).expect("read"), b"\x03first block");
        assert_eq!(read(&mut s, 100, p2).expect("read"), b"\x03second");
        // The wrong seq for a place, a flipped byte, a truncated file: each an error naming both.
        let e = read(&mut s, 1, p1).expect_err("wrong seq");
        assert!(
            e.to_string().contains("seq 1") && e.to_string().contains("00000000.seg"),
            "{e}"
        );
        let f = path(d.path(), 0);
        let mut bytes = std::fs::read(&f).expect("read");
        bytes[25] ^= 1;
        std::fs::write(&f, &bytes).expect("write");
        let e = read(&mut Segments::new(d.path()), 0, p1).expect_err("flip");
        assert!(e.to_string().contains("checksum"), "{e}");
        assert_eq!(
            read(&mut Segments::new(d.path()), 100, p2).expect("other block"),
            b"\x03second"
        );
        std::fs::write(&f, &bytes[..bytes.len() - 2]).expect("write");
        let e = read(&mut Segments::new(d.path()), 100, p2).expect_err("cut");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn a_full_segment_is_closed_and_blocks_read_back_from_either() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut a = Appender::open_with_limit(d.path(), None, 64).expect("open");
        // 20 + 20 bytes fit in 64; a second such record would end at 80.
        let p1 = a.append(0, &[3u8; 20]).expect("append");
        let p2 = a.append(10, &[4u8; 20]).expect("append");
        let p3 = a.append(20, &[5u8; 4]).expect("append");
        assert_eq!((p1.segment, p2.segment, p3.segment), (0, 1, 1));
        assert_eq!(
            (p2.offset, p3.offset),
            (20, 60),
            "a record ending at 64 still fits"
        );
        let p4 = a.append(30, &[6u8; 1]).expect("append");
        assert_eq!((p4.segment, p4.offset), (2, 20));
        // A block larger than a segment still goes in whole, alone.
        let p5 = a.append(40, &[7u8; 100]).expect("append");
        assert_eq!((p5.segment, p5.offset), (3, 20));
        let mut s = Segments::new(d.path());
        for (first, p, b) in [
            (10, p2, 4u8),
            (0, p1, 3),
            (20, p3, 5),
            (40, p5, 7),
            (0, p1, 3),
        ] {
            let got = read(&mut s, first, p).expect("read");
            assert!(
                got.len() == p.len as usize && got.iter().all(|x| *x == b),
                "{first}"
            );
        }
        assert_eq!(largest(d.path()), 120);
        assert_eq!(segments(d.path()).expect("list"), vec![0, 1, 2, 3]);
        // Into an empty segment, even an oversized block goes without closing it first.
        let e = tempfile::tempdir().expect("tempdir");
        let mut a = Appender::open_with_limit(e.path(), None, 64).expect("open");
        assert_eq!(a.append(0, &[3u8; 100]).expect("append").segment, 0);
        assert_eq!(segments(e.path()).expect("list"), vec![0]);
    }

    #[test]
    fn an_impossible_place_and_a_missing_directory_are_errors_or_empty_not_panics() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut a = Appender::open(d.path(), None).expect("open");
        let p = a.append(0, b"\x03abc").expect("append");
        let mut s = Segments::new(d.path());
        for bad in [
            Place { offset: 19, ..p },
            Place {
                len: MAX_RECORD + 1,
                ..p
            },
            Place { segment: 9, ..p },
        ] {
            let e = read(&mut s, 0, bad).expect_err("impossible");
            assert!(e.to_string().contains("seq 0"), "{e}");
        }
        assert!(read(&mut s, 0, Place { offset: 20, ..p }).is_ok());
        let none = d.path().join("nothing here");
        assert_eq!(
            segments(&none).expect("a missing directory has no segments"),
            Vec::<u32>::new()
        );
        assert_eq!(largest(&none), 0);
        std::fs::write(d.path().join("file"), b"x").expect("write");
        assert!(segments(&d.path().join("file")).is_err(), "not a directory");
    }

    #[test]
    fn a_writer_appends_only_where_the_index_ends_and_otherwise_starts_a_new_segment() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = {
            let mut a = Appender::open(d.path(), None).expect("open");
            a.append(0, b"\x03one").expect("append")
        };
        let q = Appender::open(d.path(), Some(p))
            .expect("reopen")
            .append(5, b"\x03two")
            .expect("append");
        assert_eq!(
            (q.segment, q.offset),
            (0, p.end() + 20),
            "continues the segment"
        );
        // Bytes after the last indexed block (a torn write): left alone, and a new segment starts.
        let r = Appender::open(d.path(), Some(p))
            .expect("reopen")
            .append(5, b"\x03two")
            .expect("append");
        assert_eq!((r.segment, r.offset), (1, 20));
        assert_eq!(segments(d.path()).expect("list"), vec![0, 1]);
        assert_eq!(
            std::fs::metadata(path(d.path(), 0)).expect("stat").len(),
            q.end()
        );
        assert_eq!(largest(d.path()), q.end());
        // A writer that wrote nothing leaves an empty segment, which the next one takes over.
        drop(Appender::open(d.path(), Some(r)).expect("reopen"));
        let e = tempfile::tempdir().expect("tempdir");
        drop(Appender::open(e.path(), None).expect("open"));
        let s = Appender::open(e.path(), None)
            .expect("reopen")
            .append(0, b"\x03x")
            .expect("append");
        assert_eq!((s.segment, s.offset), (0, 20));
        assert_eq!(segments(e.path()).expect("list"), vec![0]);
    }
}
