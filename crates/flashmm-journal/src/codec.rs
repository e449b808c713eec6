//! On-disk encoding. A sled value in `events` is a block of consecutive entries. This release
//! writes layout 3, compressed; it still reads layout 2, which older releases wrote:
//!
//! ```text
//! 3: [3][count: u32 LE][hash before the block: 32][hash of its last entry: 32]
//!    [zstd frame, level 3, of: per entry [len: u32 LE][bincode Entry]]
//! 2: [2][count: u32 LE] then per entry: [len: u32 LE][chain hash: 32 bytes][bincode Entry]
//! ```
//!
//! The chain is over each entry's bincode bytes, whatever the layout, so an export's hashes and
//! a journal's head do not depend on it. Layout 3 keeps only the hashes at the block's edges
//! (32 bytes an entry do not compress, and were as much as the compressed entry); reading
//! recomputes each entry's hash from the one before the block and checks the block's last one,
//! so an altered entry is caught at its block. Packing entries per value is what lets a scan
//! approach the bincode decode rate instead of sled's per-value cost.

use super::JournalError;
use flashmm_core::event::Entry;

pub const HASH_LEN: usize = 32;
const ENTRY_HEADER: usize = 4 + HASH_LEN;
pub const BLOCK_HEADER: usize = 5;
/// Block layouts: 2 plain with every hash, 3 compressed with the edge hashes.
pub const PLAIN: u8 = 2;
pub const COMPRESSED: u8 = 3;
const COMPRESSED_HEADER: usize = BLOCK_HEADER + 2 * HASH_LEN;
/// zstd's level for blocks: at level 3 a block compresses at several million entries a second,
/// and higher levels gain under 7 % on market data (docs/journal.md has the figures).
pub const ZSTD_LEVEL: i32 = 3;
/// A block's entries decompressed may not exceed this (the writer cuts blocks at 512 KiB, and
/// one entry may be larger): a bound for a damaged length field.
const MAX_BLOCK_BYTES: usize = 256 * 1024 * 1024;

pub fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// The next link: blake3(previous hash || entry bytes).
pub fn chain(prev: &[u8; HASH_LEN], bytes: &[u8]) -> [u8; HASH_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(bytes);
    *h.finalize().as_bytes()
}

pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) -> Result<(), JournalError> {
    bincode::serde::encode_into_std_write(e, out, bincode_config())
        .map(|_| ())
        .map_err(|err| JournalError::Encode {
            seq: e.seq,
            detail: err.to_string(),
        })
}

pub fn decode_entry(seq: u64, bytes: &[u8]) -> Result<Entry, JournalError> {
    let (e, used): (Entry, usize) =
        bincode::serde::borrow_decode_from_slice(bytes, bincode_config()).map_err(|err| {
            JournalError::Corrupt {
                seq,
                detail: format!("entry does not decode: {err}"),
            }
        })?;
    if used != bytes.len() {
        return Err(JournalError::Corrupt {
            seq,
            detail: format!("{} trailing bytes after the entry", bytes.len() - used),
        });
    }
    if e.seq != seq {
        return Err(JournalError::Corrupt {
            seq,
            detail: format!("entry says it is seq {} but sits at seq {seq}", e.seq),
        });
    }
    Ok(e)
}

/// Builds one block; entries are appended already encoded and chained.
#[derive(Default)]
pub struct BlockBuilder {
    /// Per entry `[len][bincode]`, uncompressed.
    buf: Vec<u8>,
    count: u32,
    before: [u8; HASH_LEN],
    last: [u8; HASH_LEN],
    /// Kept from block to block: a fresh one allocates and clears its tables for every block.
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl BlockBuilder {
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn bytes_len(&self) -> usize {
        self.buf.len()
    }

    /// Encodes `e`, chains it to `prev`, and returns its hash.
    pub fn push(
        &mut self,
        e: &Entry,
        prev: &[u8; HASH_LEN],
    ) -> Result<[u8; HASH_LEN], JournalError> {
        if self.count == 0 {
            self.before = *prev;
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0u8; 4]);
        if let Err(err) = encode_entry(e, &mut self.buf) {
            self.buf.truncate(at);
            return Err(err);
        }
        let body = &self.buf[at + 4..];
        let len = body.len() as u32;
        let hash = chain(prev, body);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
        self.last = hash;
        Ok(hash)
    }

    /// Drops the entries pushed since the last `take`.
    pub fn clear(&mut self) {
        self.count = 0;
        self.buf.clear();
    }

    /// The block, compressed; the builder is empty again.
    pub fn take(&mut self) -> Result<Vec<u8>, JournalError> {
        let raw = self.take_raw();
        raw.compress(&mut self.zstd)
    }

    /// The block not yet compressed, for compressing elsewhere (the journal's writer thread
    /// does, while the caller builds the next block); the builder is empty again.
    pub fn take_raw(&mut self) -> RawBlock {
        let next = Vec::with_capacity(self.buf.len());
        let raw = RawBlock {
            entries: std::mem::replace(&mut self.buf, next),
            count: self.count,
            before: self.before,
            last: self.last,
        };
        self.count = 0;
        raw
    }
}

/// A block's entries, `[len][bincode]` each, with its count and edge hashes.
pub struct RawBlock {
    entries: Vec<u8>,
    count: u32,
    before: [u8; HASH_LEN],
    last: [u8; HASH_LEN],
}

impl RawBlock {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stored block, layout 3. `zstd` is a compressor kept from block to block (a fresh one
    /// allocates and clears its tables every time); `None` makes one.
    pub fn compress(
        &self,
        zstd: &mut Option<zstd::bulk::Compressor<'static>>,
    ) -> Result<Vec<u8>, JournalError> {
        let err = |e: std::io::Error| JournalError::Encode {
            seq: 0,
            detail: format!("cannot compress a block: {e}"),
        };
        let zstd = match zstd {
            Some(z) => z,
            None => zstd.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(err)?),
        };
        let z = zstd.compress(&self.entries).map_err(err)?;
        let mut out = Vec::with_capacity(COMPRESSED_HEADER + z.len());
        out.push(COMPRESSED);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.before);
        out.extend_from_slice(&self.last);
        out.extend_from_slice(&z);
        Ok(out)
    }
}

/// One entry of a block, still encoded.
pub struct RawEntry<'a> {
    pub seq: u64,
    pub hash: [u8; HASH_LEN],
    pub bytes: &'a [u8],
}

/// Splits a block into its entries without decoding them. `first_seq` is the block's key; a
/// compressed block is decompressed into `scratch`, which the entries then borrow.
pub fn split_block<'a>(
    first_seq: u64,
    block: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<Vec<RawEntry<'a>>, JournalError> {
    let corrupt = |seq: u64, detail: String| JournalError::Corrupt { seq, detail };
    let Some(&version) = block.first() else {
        return Err(corrupt(first_seq, "empty block".into()));
    };
    if block.len() < BLOCK_HEADER {
        return Err(corrupt(first_seq, "block header is truncated".into()));
    }
    let count = u32::from_le_bytes([block[1], block[2], block[3], block[4]]) as usize;
    match version {
        PLAIN => split_plain(first_seq, count, block),
        COMPRESSED => split_compressed(first_seq, count, block, scratch),
        found => Err(JournalError::Version {
            found,
            ours: COMPRESSED,
        }),
    }
}

fn split_plain(
    first_seq: u64,
    count: usize,
    block: &[u8],
) -> Result<Vec<RawEntry<'_>>, JournalError> {
    let corrupt = |seq: u64, detail: String| JournalError::Corrupt { seq, detail };
    let mut out = Vec::with_capacity(count.min(block.len() / ENTRY_HEADER));
    let mut at = BLOCK_HEADER;
    for i in 0..count {
        let seq = first_seq + i as u64;
        if block.len() < at + ENTRY_HEADER {
            return Err(corrupt(
                seq,
                format!("block ends inside the header of entry {} of {count}", i + 1),
            ));
        }
        let len =
            u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]) as usize;
        let mut hash = [0u8; HASH_LEN];
        hash.copy_from_slice(&block[at + 4..at + ENTRY_HEADER]);
        let start = at + ENTRY_HEADER;
        let Some(bytes) = block.get(start..start.saturating_add(len)) else {
            return Err(corrupt(
                seq,
                format!(
                    "entry is truncated: {len} bytes declared, {} present",
                    block.len() - start
                ),
            ));
        };
        out.push(RawEntry { seq, hash, bytes });
        at = start + len;
    }
    if at != block.len() {
        return Err(corrupt(
            first_seq + count as u64,
            format!(
                "{} unexpected bytes after the last entry of the block",
                block.len() - at
            ),
        ));
    }
    Ok(out)
}

fn split_compressed<'a>(
    first_seq: u64,
    count: usize,
    block: &[u8],
    scratch: &'a mut Vec<u8>,
) -> Result<Vec<RawEntry<'a>>, JournalError> {
    let last_seq = first_seq + count.saturating_sub(1) as u64;
    let corrupt = |detail: String| JournalError::Corrupt {
        seq: first_seq,
        detail,
    };
    if block.len() < COMPRESSED_HEADER {
        return Err(corrupt("block header is truncated".into()));
    }
    let mut prev = [0u8; HASH_LEN];
    prev.copy_from_slice(&block[BLOCK_HEADER..BLOCK_HEADER + HASH_LEN]);
    let mut want_last = [0u8; HASH_LEN];
    want_last.copy_from_slice(&block[BLOCK_HEADER + HASH_LEN..COMPRESSED_HEADER]);
    let z = &block[COMPRESSED_HEADER..];
    let size = zstd::zstd_safe::get_frame_content_size(z)
        .ok()
        .flatten()
        .filter(|n| *n as usize <= MAX_BLOCK_BYTES)
        .ok_or_else(|| corrupt("the compressed block has no valid size".into()))?;
    scratch.clear();
    scratch.reserve(size as usize);
    zstd::bulk::Decompressor::new()
        .and_then(|mut d| d.decompress_to_buffer(z, scratch))
        .map_err(|e| {
            corrupt(format!(
                "the block does not decompress (truncated or damaged): {e}"
            ))
        })?;
    let data: &'a [u8] = scratch;
    let mut out = Vec::with_capacity(count.min(data.len() / 4));
    let mut at = 0usize;
    for i in 0..count {
        let seq = first_seq + i as u64;
        let Some(len) = data.get(at..at + 4) else {
            return Err(JournalError::Corrupt {
                seq,
                detail: format!("block ends inside the length of entry {} of {count}", i + 1),
            });
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(bytes) = data.get(at + 4..(at + 4).saturating_add(len)) else {
            return Err(JournalError::Corrupt {
                seq,
                detail: format!("entry is truncated: {len} bytes declared"),
            });
        };
        prev = chain(&prev, bytes);
        out.push(RawEntry {
            seq,
            hash: prev,
            bytes,
        });
        at += 4 + len;
    }
    if at != data.len() {
        return Err(corrupt(format!(
            "{} unexpected bytes after the last entry of the block",
            data.len() - at
        )));
    }
    if count > 0 && prev != want_last {
        return Err(corrupt(format!(
            "one of entries {first_seq}..={last_seq} was altered: they no longer chain to the hash the block stores for its last entry"
        )));
    }
    Ok(out)
}

pub fn decode_block(
    first_seq: u64,
    block: &[u8],
    out: &mut Vec<Entry>,
) -> Result<(), JournalError> {
    let mut scratch = Vec::new();
    for raw in split_block(first_seq, block, &mut scratch)? {
        out.push(decode_entry(raw.seq, raw.bytes)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flashmm_core::event::{Body, FeedState, FeedStatus, Input, Symbol};

    #[test]
    fn a_kept_compressor_writes_the_bytes_a_fresh_one_does() {
        let mut b = BlockBuilder::default();
        let mut h = [0u8; HASH_LEN];
        for block in 0..3u64 {
            for i in 0..500u64 {
                let e = Entry {
                    seq: block * 500 + i,
                    ts_ns: 1_700_000_000_000_000_000 + (i * i) as i64,
                    venue_ts_ns: None,
                    session: 1,
                    cause: None,
                    body: Body::Input(Input::FeedStatus(FeedStatus {
                        symbol: Symbol::new("BTCUSDT").expect("symbol"),
                        state: FeedState::Gap,
                        detail: format!("line {}", i * 7919 % 1000),
                    })),
                };
                h = b.push(&e, &h).expect("push");
            }
            let raw = b.buf.clone();
            let got = b.take().expect("take");
            let fresh = zstd::bulk::compress(&raw, ZSTD_LEVEL).expect("compress");
            assert_eq!(&got[COMPRESSED_HEADER..], &fresh[..], "block {block}");
        }
    }
}
