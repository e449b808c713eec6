//! On-disk encoding. A sled value in `events` is a block of consecutive entries:
//!
//! ```text
//! [format version: u8][count: u32 LE] then per entry: [len: u32 LE][chain hash: 32 bytes][bincode Entry]
//! ```
//!
//! Packing entries per value is what lets a scan approach the bincode decode rate instead of
//! sled's per-value cost. Each entry keeps its own chain hash so `verify` can name the first
//! broken link.

use super::JournalError;
use flashmm_core::event::{Entry, FORMAT_VERSION};

pub const HASH_LEN: usize = 32;
const ENTRY_HEADER: usize = 4 + HASH_LEN;
pub const BLOCK_HEADER: usize = 5;

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
    buf: Vec<u8>,
    count: u32,
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
        if self.buf.is_empty() {
            self.buf.push(FORMAT_VERSION);
            self.buf.extend_from_slice(&0u32.to_le_bytes());
        }
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0u8; ENTRY_HEADER]);
        if let Err(err) = encode_entry(e, &mut self.buf) {
            self.buf.truncate(at);
            return Err(err);
        }
        let body = &self.buf[at + ENTRY_HEADER..];
        let len = body.len() as u32;
        let hash = chain(prev, body);
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.buf[at + 4..at + ENTRY_HEADER].copy_from_slice(&hash);
        self.count += 1;
        self.buf[1..5].copy_from_slice(&self.count.to_le_bytes());
        Ok(hash)
    }

    pub fn take(&mut self) -> Vec<u8> {
        self.count = 0;
        std::mem::take(&mut self.buf)
    }
}

/// One entry of a block, still encoded.
pub struct RawEntry<'a> {
    pub seq: u64,
    pub hash: [u8; HASH_LEN],
    pub bytes: &'a [u8],
}

/// Splits a block into its entries without decoding them. `first_seq` is the block's key.
pub fn split_block(first_seq: u64, block: &[u8]) -> Result<Vec<RawEntry<'_>>, JournalError> {
    let corrupt = |seq: u64, detail: String| JournalError::Corrupt { seq, detail };
    let Some(&version) = block.first() else {
        return Err(corrupt(first_seq, "empty block".into()));
    };
    if version != FORMAT_VERSION {
        return Err(JournalError::Version {
            found: version,
            ours: FORMAT_VERSION,
        });
    }
    if block.len() < BLOCK_HEADER {
        return Err(corrupt(first_seq, "block header is truncated".into()));
    }
    let count = u32::from_le_bytes([block[1], block[2], block[3], block[4]]) as usize;
    let mut out = Vec::with_capacity(count);
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
        let Some(bytes) = block.get(start..start + len) else {
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

pub fn decode_block(
    first_seq: u64,
    block: &[u8],
    out: &mut Vec<Entry>,
) -> Result<(), JournalError> {
    for raw in split_block(first_seq, block)? {
        out.push(decode_entry(raw.seq, raw.bytes)?);
    }
    Ok(())
}
