//! The encoding the two per-PC tables (`.wasmc.traps`, `.wasmc.addrmap`)
//! share: entries sorted by `.text` offset, cut into blocks of
//! [`BLOCK_LEN`] entries, each block a run of LEB128 deltas, found through a
//! small index that is binary-searched in place.
//!
//! ```text
//! +-----------+------------+------------------------------------------+-------+
//! | count u32 | blocks u32 | index [(first offset u32, start u32)]    | body  |
//! +-----------+------------+------------------------------------------+-------+
//! ```
//!
//! Block `b` holds entries `b * BLOCK_LEN ..` (the last block may be
//! shorter); `blocks == count.div_ceil(BLOCK_LEN)`. Its index entry gives the
//! `.text` offset of its first entry and where its bytes start in the body;
//! they end where the next block's start (or at the end of the section).
//! What an entry's bytes say is the table's own business (`trap.rs`,
//! `addrmap.rs`); both store every offset after a block's first as
//! `delta - 1` from the previous one, so offsets are strictly increasing
//! inside a block by construction.
//!
//! Why this shape: the tables of a large module hold millions of entries
//! (esbuild.wasm: 0.66 million trap sites, 1.4 million address-map
//! entries). Fixed-width arrays took 5 and 8 bytes per entry, 14 MB of a
//! 41 MB artifact; deltas take one or two. A lookup stays in place and
//! cheap (a binary search over `count / 64` index entries, then at most 64
//! decoded entries, with no allocation, so the signal handler can do it),
//! and loading checks only the index (O(blocks)); every byte of a block is
//! bounds-checked when it is decoded, so a damaged body gives a wrong or
//! failed lookup, never a read outside the section.

use crate::bytes::read_u32;

/// Entries per block: the most a lookup decodes.
pub const BLOCK_LEN: usize = 64;

/// Bytes of the header (`count`, `blocks`).
const HEADER: usize = 8;
/// Bytes of one index entry.
const INDEX_ENTRY: usize = 8;

/// What is wrong with a blocked table, found without allocating (lookups
/// run in the trap handler); the tables turn it into a `FormatError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The section is shorter than its header and index say.
    Truncated,
    /// `blocks` is not `count.div_ceil(BLOCK_LEN)`.
    BlockCount {
        /// Entries, as the header says.
        count: u32,
        /// Blocks, as the header says.
        blocks: u32,
    },
    /// Index entry `block` starts its bytes before the previous block's or
    /// past the end of the body, or (block 0) not at the body's start.
    BlockStart {
        /// The block.
        block: usize,
    },
    /// Index entry `block`'s first offset is not above the previous
    /// block's first offset.
    BlockOrder {
        /// The block.
        block: usize,
        /// Its first offset.
        offset: u32,
    },
    /// Index entry `block`'s first offset is not inside the code.
    BlockOutside {
        /// The block.
        block: usize,
        /// Its first offset.
        offset: u32,
        /// The length of the code.
        limit: u64,
    },
    /// A block's bytes end in the middle of an entry, hold a number that
    /// does not fit in 32 bits, or an offset past `u32::MAX`.
    BadEntry {
        /// The entry (in table order).
        entry: usize,
    },
    /// A block's bytes do not end where its entries do.
    TrailingBytes {
        /// The block.
        block: usize,
    },
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            BlockError::Truncated => f.write_str("shorter than its header and index"),
            BlockError::BlockCount { count, blocks } => write!(
                f,
                "{blocks} blocks for {count} entries (want {})",
                (count as usize).div_ceil(BLOCK_LEN)
            ),
            BlockError::BlockStart { block } => {
                write!(f, "block {block}: its bytes start outside the body or before the previous block's")
            }
            BlockError::BlockOrder { block, offset } => write!(
                f,
                "block {block}: first offset {offset:#x} is not above the previous block's"
            ),
            BlockError::BlockOutside {
                block,
                offset,
                limit,
            } => write!(
                f,
                "block {block}: first offset {offset:#x} points outside `.text` (length {limit:#x})"
            ),
            BlockError::BadEntry { entry } => {
                write!(f, "entry {entry}: truncated or overflowing delta encoding")
            }
            BlockError::TrailingBytes { block } => {
                write!(f, "block {block}: bytes left over after its last entry")
            }
        }
    }
}

/// Appends `v` as unsigned LEB128.
pub fn push_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads an unsigned LEB128 `u32` at `*pos` of `data`, advancing `pos`;
/// `None` if it runs past `data` or does not fit in 32 bits.
#[inline]
pub fn read_leb(data: &[u8], pos: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *data.get(*pos)?;
        *pos += 1;
        let bits = u32::from(byte & 0x7f);
        if shift == 28 && bits > 0x0f {
            return None;
        }
        v |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends `field` and a `bits`-wide `low` as one LEB128 number,
/// `field << bits | low`, when `field` is small enough for that; otherwise
/// the field's all-ones value (an escape) followed by `field` on its own.
pub fn push_packed(out: &mut Vec<u8>, field: u32, low: u32, bits: u32) {
    debug_assert!(bits < 32 && low < (1 << bits));
    let esc = u32::MAX >> bits;
    if field < esc {
        push_leb(out, (field << bits) | low);
    } else {
        push_leb(out, (esc << bits) | low);
        push_leb(out, field);
    }
}

/// Reads what [`push_packed`] wrote: `(field, low)`.
#[inline]
pub fn read_packed(data: &[u8], pos: &mut usize, bits: u32) -> Option<(u32, u32)> {
    let v = read_leb(data, pos)?;
    let low = v & ((1 << bits) - 1);
    let mut field = v >> bits;
    if field == u32::MAX >> bits {
        field = read_leb(data, pos)?;
    }
    Some((field, low))
}

/// Builds a blocked table from entries already sorted by strictly
/// increasing offset; `encode` appends entry `i`'s bytes given its offset
/// delta (`None` for a block's first entry, else `delta - 1`).
pub fn encode<E>(offsets: &[u32], mut encode: E) -> Vec<u8>
where
    E: FnMut(&mut Vec<u8>, usize, Option<u32>),
{
    let count = offsets.len();
    let blocks = count.div_ceil(BLOCK_LEN);
    let mut body = Vec::with_capacity(count * 2);
    let mut index = Vec::with_capacity(blocks * INDEX_ENTRY);
    for (b, chunk) in offsets.chunks(BLOCK_LEN).enumerate() {
        index.extend_from_slice(&chunk[0].to_le_bytes());
        index.extend_from_slice(&(body.len() as u32).to_le_bytes());
        let mut prev = chunk[0];
        for (k, &off) in chunk.iter().enumerate() {
            let i = b * BLOCK_LEN + k;
            if k == 0 {
                encode(&mut body, i, None);
            } else {
                assert!(off > prev, "blocked table entries out of order");
                encode(&mut body, i, Some(off - prev - 1));
            }
            prev = off;
        }
    }
    let mut out = Vec::with_capacity(HEADER + index.len() + body.len());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(&(blocks as u32).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&body);
    out
}

/// A blocked table read in place. [`Blocks::parse`] is O(1);
/// [`Blocks::check_index`] is O(blocks); a full check decodes every block
/// (the tables' `validate`).
#[derive(Clone, Copy, Debug)]
pub struct Blocks<'a> {
    data: &'a [u8],
    count: usize,
    blocks: usize,
}

/// One block's bytes and where its entries are.
#[derive(Clone, Copy, Debug)]
pub struct Block<'a> {
    /// The block's bytes (up to the next block's start).
    pub bytes: &'a [u8],
    /// The `.text` offset of its first entry.
    pub first_offset: u32,
    /// The table index of its first entry.
    pub first_entry: usize,
    /// Its number of entries.
    pub len: usize,
}

impl<'a> Blocks<'a> {
    /// Checks the header against the section's length. An empty section is
    /// an empty table.
    pub fn parse(data: &'a [u8]) -> Result<Self, BlockError> {
        if data.is_empty() {
            return Ok(Blocks {
                data,
                count: 0,
                blocks: 0,
            });
        }
        let count = read_u32(data, 0).ok_or(BlockError::Truncated)?;
        let blocks = read_u32(data, 4).ok_or(BlockError::Truncated)?;
        if blocks as usize != (count as usize).div_ceil(BLOCK_LEN) {
            return Err(BlockError::BlockCount { count, blocks });
        }
        let index_end = (blocks as usize)
            .checked_mul(INDEX_ENTRY)
            .and_then(|n| n.checked_add(HEADER))
            .ok_or(BlockError::Truncated)?;
        if index_end > data.len() {
            return Err(BlockError::Truncated);
        }
        Ok(Blocks {
            data,
            count: count as usize,
            blocks: blocks as usize,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    fn body(&self) -> &'a [u8] {
        // `parse` checked that the index fits.
        self.data
            .get(HEADER + self.blocks * INDEX_ENTRY..)
            .unwrap_or_default()
    }

    fn index(&self, b: usize) -> Option<(u32, u32)> {
        let at = HEADER + b * INDEX_ENTRY;
        Some((read_u32(self.data, at)?, read_u32(self.data, at + 4)?))
    }

    /// Block `b`, or `None` past the end or when its start is outside the
    /// body or after its end (checked here, so a lookup needs no
    /// [`Self::check_index`]).
    pub fn block(&self, b: usize) -> Option<Block<'a>> {
        if b >= self.blocks {
            return None;
        }
        let body = self.body();
        let (first_offset, start) = self.index(b)?;
        let end = match self.index(b + 1) {
            Some((_, next)) if b + 1 < self.blocks => next as usize,
            _ => body.len(),
        };
        let bytes = body.get(start as usize..end)?;
        let first_entry = b * BLOCK_LEN;
        Some(Block {
            bytes,
            first_offset,
            first_entry,
            len: (self.count - first_entry).min(BLOCK_LEN),
        })
    }

    /// The block that would hold `offset`: the last whose first offset is
    /// at or below it; `None` if `offset` is below every block.
    pub fn block_for(&self, offset: u32) -> Option<Block<'a>> {
        let (mut lo, mut hi) = (0usize, self.blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.index(mid)?.0 <= offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.block(lo.checked_sub(1)?)
    }

    /// Checks the index: block 0 starts the body, every block's bytes
    /// start inside the body and not before the previous block's, and
    /// first offsets strictly increase and stay below `limit` (the code's
    /// length, or one more where an offset may point at its end).
    /// O(blocks); loading runs it.
    pub fn check_index(&self, limit: u64) -> Result<(), BlockError> {
        let body_len = self.body().len() as u64;
        let mut prev: Option<(u32, u32)> = None;
        for b in 0..self.blocks {
            let (first, start) = self.index(b).ok_or(BlockError::Truncated)?;
            let start_ok = match prev {
                None => start == 0,
                Some((_, p)) => start >= p && u64::from(start) <= body_len,
            };
            if !start_ok {
                return Err(BlockError::BlockStart { block: b });
            }
            if prev.is_some_and(|(p, _)| first <= p) {
                return Err(BlockError::BlockOrder {
                    block: b,
                    offset: first,
                });
            }
            if u64::from(first) >= limit {
                return Err(BlockError::BlockOutside {
                    block: b,
                    offset: first,
                    limit,
                });
            }
            prev = Some((first, start));
        }
        Ok(())
    }
}

/// Decodes a block's entries one by one: each step reads the offset delta
/// (for all but the first entry) through `next`, which gets the bytes, the
/// position and whether this is the block's first entry, and returns the
/// `delta - 1` it read (0 for the first) with the entry's payload.
pub struct BlockCursor<'a> {
    block: Block<'a>,
    pos: usize,
    k: usize,
    offset: u32,
}

impl<'a> BlockCursor<'a> {
    /// A cursor before the block's first entry.
    pub fn new(block: Block<'a>) -> Self {
        BlockCursor {
            block,
            pos: 0,
            k: 0,
            offset: block.first_offset,
        }
    }

    /// The next entry: its table index, `.text` offset and what `payload`
    /// decoded; `Ok(None)` after the last. `payload` reads the entry's bytes
    /// at `pos` and returns `(delta - 1 or 0 for the first entry, payload)`.
    #[inline]
    pub fn next_with<P, F>(&mut self, mut payload: F) -> Result<Option<(usize, u32, P)>, BlockError>
    where
        F: FnMut(&[u8], &mut usize, bool) -> Option<(u32, P)>,
    {
        if self.k >= self.block.len {
            return Ok(None);
        }
        let entry = self.block.first_entry + self.k;
        let first = self.k == 0;
        let (delta_m1, p) = payload(self.block.bytes, &mut self.pos, first)
            .ok_or(BlockError::BadEntry { entry })?;
        if !first {
            self.offset = self
                .offset
                .checked_add(delta_m1)
                .and_then(|o| o.checked_add(1))
                .ok_or(BlockError::BadEntry { entry })?;
        }
        self.k += 1;
        Ok(Some((entry, self.offset, p)))
    }

    /// True when every entry was read and no bytes are left.
    pub fn finished_exactly(&self) -> bool {
        self.k >= self.block.len && self.pos == self.block.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_round_trip_and_bounds() {
        for v in [0u32, 1, 127, 128, 300, 1 << 21, u32::MAX] {
            let mut b = Vec::new();
            push_leb(&mut b, v);
            let mut pos = 0;
            assert_eq!(read_leb(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
            for n in 0..b.len() {
                assert_eq!(read_leb(&b[..n], &mut 0), None, "{v} cut at {n}");
            }
        }
        // Five bytes whose last carries bits past 32, and six bytes.
        assert_eq!(read_leb(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut 0), None);
        assert_eq!(
            read_leb(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut 0),
            None
        );
    }

    fn table(offsets: &[u32]) -> Vec<u8> {
        encode(offsets, |out, _, d| push_leb(out, d.unwrap_or(0)))
    }

    fn decode_all(t: &Blocks<'_>) -> Result<Vec<u32>, BlockError> {
        let mut out = Vec::new();
        for b in 0..t.blocks() {
            let mut c = BlockCursor::new(t.block(b).ok_or(BlockError::Truncated)?);
            while let Some((i, off, ())) = c.next_with(|d, pos, _| Some((read_leb(d, pos)?, ())))? {
                assert_eq!(i, out.len());
                out.push(off);
            }
        }
        Ok(out)
    }

    #[test]
    fn packed_round_trip() {
        for field in [
            0u32,
            1,
            7,
            8,
            1000,
            (u32::MAX >> 4) - 1,
            u32::MAX >> 4,
            u32::MAX,
        ] {
            for low in [0u32, 5, 15] {
                let mut b = Vec::new();
                push_packed(&mut b, field, low, 4);
                let mut pos = 0;
                assert_eq!(read_packed(&b, &mut pos, 4), Some((field, low)));
                assert_eq!(pos, b.len());
            }
        }
        let mut b = Vec::new();
        push_packed(&mut b, 3, 9, 4);
        assert_eq!(b, [0x39]);
    }

    #[test]
    fn blocks_round_trip_and_search() {
        let n = 3 * BLOCK_LEN as u32 + 4;
        let offsets: Vec<u32> = (0..n).map(|i| i * 7 + (i % 3)).collect();
        let bytes = table(&offsets);
        let t = Blocks::parse(&bytes).unwrap();
        assert_eq!(t.len(), n as usize);
        assert_eq!(t.blocks(), 4);
        t.check_index(10_000).unwrap();
        assert_eq!(decode_all(&t).unwrap(), offsets);
        assert!(t.block_for(offsets[0]).is_some());
        let b = BLOCK_LEN;
        assert_eq!(t.block_for(offsets[b + 1]).unwrap().first_entry, b);
        assert_eq!(t.block_for(offsets[b] - 1).unwrap().first_entry, 0);
        assert_eq!(t.block(3).unwrap().len, 4);
        assert!(Blocks::parse(&table(&[5])).unwrap().block_for(4).is_none());
        assert!(Blocks::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn damaged_headers_and_index() {
        // Three blocks, the last holding 6 entries.
        let offsets: Vec<u32> = (0..2 * BLOCK_LEN as u32 + 6).map(|i| i * 3).collect();
        let bytes = table(&offsets);
        for n in 1..HEADER + 3 * INDEX_ENTRY {
            assert!(Blocks::parse(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut b = bytes.clone();
        b[4] = 2;
        assert!(matches!(
            Blocks::parse(&b),
            Err(BlockError::BlockCount { .. })
        ));
        // Block 2 starting before block 1, then past the body.
        let mut b = bytes.clone();
        b[HEADER + 2 * INDEX_ENTRY + 4..][..4].copy_from_slice(&0u32.to_le_bytes());
        let t = Blocks::parse(&b).unwrap();
        assert_eq!(
            t.check_index(1000),
            Err(BlockError::BlockStart { block: 2 })
        );
        let mut b = bytes.clone();
        b[HEADER + 2 * INDEX_ENTRY + 4..][..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let t = Blocks::parse(&b).unwrap();
        assert!(t.check_index(1000).is_err());
        assert!(t.block(2).is_none());
        // First offsets out of order, or past the limit.
        let mut b = bytes.clone();
        b[HEADER + INDEX_ENTRY..][..4].copy_from_slice(&0u32.to_le_bytes());
        let t = Blocks::parse(&b).unwrap();
        assert!(matches!(
            t.check_index(1000),
            Err(BlockError::BlockOrder { block: 1, .. })
        ));
        let third = 2 * BLOCK_LEN as u32 * 3;
        assert_eq!(
            Blocks::parse(&bytes).unwrap().check_index(u64::from(third)),
            Err(BlockError::BlockOutside {
                block: 2,
                offset: third,
                limit: u64::from(third)
            })
        );
    }

    #[test]
    fn damaged_bodies_never_read_out_of_bounds() {
        let offsets: Vec<u32> = (0..BLOCK_LEN as u32 + 20).map(|i| i * 300).collect();
        let bytes = table(&offsets);
        // Every single-byte change and every truncation of the body decodes
        // to an error or to some offsets, never panics.
        for at in 0..bytes.len() {
            for v in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] = v;
                if let Ok(t) = Blocks::parse(&b) {
                    let _ = decode_all(&t);
                    let _ = t.block_for(1000);
                }
            }
        }
        for n in 0..bytes.len() {
            if let Ok(t) = Blocks::parse(&bytes[..n]) {
                let _ = decode_all(&t);
            }
        }
    }
}
