//! The `.wasmc.addrmap` table: `.text` offset to Wasm bytecode offset.
//!
//! Entry `i` says that the machine code from its offset up to the next
//! entry's came from the Wasm instruction at byte offset `wasm` of the
//! module. A lookup returns the entry at or before a PC. Wasm offset
//! `u32::MAX` ([`NO_WASM_OFFSET`]) marks code with no Wasm origin
//! (prologues, trampolines).
//!
//! The table is in the blocked delta encoding of [`crate::blocks`]. With
//! `Δcode` an entry's code offset minus the previous entry's (taken as 1
//! for a block's first entry, whose offset is in the index) and `Δwasm` the
//! wrapping difference of `wasm + 1` (so that "no origin" is 0) from the
//! previous entry's (0 before a block's first entry), an entry's first byte
//! `b` says:
//!
//! - `b < 240`: `Δcode = b / 15 + 1` (1 to 16), `Δwasm = b % 15 + 1` (1 to
//!   15): straight-line code, the common case, one byte per entry;
//! - `240 <= b < 255`: `Δcode = b - 240 + 1` (1 to 15), then `zigzag(Δwasm)`
//!   as LEB128;
//! - `b == 255`: `Δcode - 1` and `zigzag(Δwasm)` as LEB128.
//!
//! (esbuild.wasm's 1.4 million entries take 1.7 bytes each.)

use crate::blocks::{self, Block, BlockCursor, BlockDecoder, BlockError, Blocks};
use crate::sections::ELF_WASMC_ADDRMAP;
use crate::FormatError;

/// Wasm offset used for code that has no corresponding Wasm instruction.
pub const NO_WASM_OFFSET: u32 = u32::MAX;

/// First bytes below this hold both deltas.
const SHORT: u8 = 240;
/// `Δwasm` values (1 to 15) a short first byte holds.
const SHORT_WASM: u32 = 15;
/// The first byte that puts both deltas in LEB128 numbers.
const LONG: u8 = 255;

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Builds a `.wasmc.addrmap` section; entries must be pushed in code order.
#[derive(Default, Debug)]
pub struct AddrMapBuilder {
    code: Vec<u32>,
    wasm: Vec<u32>,
}

impl AddrMapBuilder {
    /// Records that code from `code_offset` on came from `wasm_offset`.
    /// Consecutive entries with the same Wasm offset are merged.
    pub fn push(&mut self, code_offset: u32, wasm_offset: u32) {
        if let Some(&last) = self.code.last() {
            assert!(code_offset >= last, "addrmap entries out of order");
            if self.wasm.last() == Some(&wasm_offset) {
                return;
            }
            if last == code_offset {
                if let Some(w) = self.wasm.last_mut() {
                    *w = wasm_offset;
                }
                return;
            }
        }
        self.code.push(code_offset);
        self.wasm.push(wasm_offset);
    }

    /// Encodes the table.
    pub fn finish(self) -> Vec<u8> {
        let wasm = &self.wasm;
        let mut prev = 0u32;
        blocks::encode(&self.code, |out, i, delta_m1| {
            let w = wasm[i].wrapping_add(1);
            if delta_m1.is_none() {
                prev = 0;
            }
            let dw = w.wrapping_sub(prev);
            prev = w;
            let dc = delta_m1.unwrap_or(0);
            if dc < 16 && (1..=SHORT_WASM).contains(&dw) {
                out.push((dc * SHORT_WASM + dw - 1) as u8);
            } else if dc < u32::from(LONG - SHORT) {
                out.push(SHORT + dc as u8);
                blocks::push_leb(out, zigzag(dw as i32));
            } else {
                out.push(LONG);
                blocks::push_leb(out, dc);
                blocks::push_leb(out, zigzag(dw as i32));
            }
        })
    }
}

/// A `.wasmc.addrmap` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct AddrMap<'a> {
    blocks: Blocks<'a>,
}

const WHAT: &str = crate::sections::section_what!(addrmap);

fn block_error(e: BlockError) -> FormatError {
    e.in_section(ELF_WASMC_ADDRMAP, WHAT)
}

/// A block's entries with their Wasm offsets (the decoder keeps the
/// running `wasm + 1`).
struct Entries<'a> {
    cursor: BlockCursor<'a>,
    wasm: u32,
}

impl<'a> BlockDecoder<'a> for Entries<'a> {
    /// The Wasm offset.
    type Payload = u32;

    fn start(block: Block<'a>) -> Self {
        Entries {
            cursor: BlockCursor::new(block),
            wasm: 0,
        }
    }

    #[inline]
    fn next(&mut self) -> Result<Option<(usize, u32, u32)>, BlockError> {
        let e = self.cursor.next_with(|data, pos, _first| {
            let b = *data.get(*pos)?;
            *pos += 1;
            Some(match b {
                ..SHORT => {
                    let b = u32::from(b);
                    (b / SHORT_WASM, b % SHORT_WASM + 1)
                }
                SHORT..LONG => {
                    let dw = unzigzag(blocks::read_leb(data, pos)?) as u32;
                    (u32::from(b - SHORT), dw)
                }
                LONG => {
                    let dc = blocks::read_leb(data, pos)?;
                    (dc, unzigzag(blocks::read_leb(data, pos)?) as u32)
                }
            })
        })?;
        Ok(e.map(|(i, code, dw)| {
            self.wasm = self.wasm.wrapping_add(dw);
            (i, code, self.wasm.wrapping_sub(1))
        }))
    }

    fn finished_exactly(&self) -> bool {
        self.cursor.finished_exactly()
    }
}

impl<'a> AddrMap<'a> {
    /// Checks the section's header and index size against its length (O(1)).
    pub fn parse(data: &'a [u8]) -> Result<Self, FormatError> {
        Ok(AddrMap {
            blocks: Blocks::parse(data).map_err(block_error)?,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The Wasm offset of the code at `code_offset`: the entry at or before
    /// it. `None` for code with no Wasm origin, before the first entry, or
    /// when the block on the way is damaged.
    pub fn lookup(&self, code_offset: u32) -> Option<u32> {
        let mut entries = Entries::start(self.blocks.block_for(code_offset)?);
        let mut found = None;
        while let Some((_, code, wasm)) = entries.next().ok()? {
            if code > code_offset {
                break;
            }
            found = Some(wasm);
        }
        found.filter(|&w| w != NO_WASM_OFFSET)
    }

    /// All entries in code order, `(code offset, Wasm offset)`; stops at
    /// the first damaged one.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, u32), FormatError>> + 'a {
        blocks::entries::<Entries<'a>>(self.blocks)
            .map(|e| e.map(|(_, code, wasm)| (code, wasm)).map_err(block_error))
    }

    /// Checks every entry: the index, every block decoding to exactly its
    /// entries, code offsets strictly increasing and at most `text_len`.
    pub fn validate(&self, text_len: u64) -> Result<(), FormatError> {
        self.blocks
            .check_index(text_len.saturating_add(1))
            .map_err(block_error)?;
        let mut prev: Option<u32> = None;
        for e in blocks::entries::<Entries<'_>>(self.blocks) {
            let (i, code, _) = e.map_err(block_error)?;
            if prev.is_some_and(|p| code <= p) || u64::from(code) > text_len {
                return Err(FormatError::Entry {
                    section: ELF_WASMC_ADDRMAP,
                    entry: i as u64,
                    detail: format!(
                        "code offset {code:#x} out of order or past `.text` (length {text_len:#x})"
                    ),
                });
            }
            prev = Some(code);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut b = AddrMapBuilder::default();
        b.push(0, NO_WASM_OFFSET);
        b.push(8, 100);
        b.push(12, 100);
        b.push(16, 104);
        let bytes = b.finish();
        let m = AddrMap::parse(&bytes).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.lookup(3), None);
        assert_eq!(m.lookup(8), Some(100));
        assert_eq!(m.lookup(15), Some(100));
        assert_eq!(m.lookup(1000), Some(104));
        let all: Vec<_> = m.iter().map(Result::unwrap).collect();
        assert_eq!(all, [(0, NO_WASM_OFFSET), (8, 100), (16, 104)]);
    }

    /// Many entries over several blocks: code gaps of every size (one
    /// number, two, big), Wasm offsets going up, down and to "no origin".
    #[test]
    fn many_entries_round_trip() {
        let mut want = Vec::new();
        let mut b = AddrMapBuilder::default();
        let (mut code, mut wasm) = (0u32, 1000u32);
        for i in 0..2000u32 {
            code += [1, 2, 15, 16, 17, 300, 1 << 22, 4, 5][i as usize % 9];
            wasm = match i % 11 {
                0 => NO_WASM_OFFSET,
                5 => 7,
                7 => u32::MAX - 1,
                _ => (wasm % 1_000_000).wrapping_add([1, 3, 15, 16, 200, 100_000][i as usize % 6]),
            };
            b.push(code, wasm);
            want.push((code, wasm));
        }
        let bytes = b.finish();
        let m = AddrMap::parse(&bytes).unwrap();
        m.validate(u64::from(code)).unwrap();
        assert_eq!(m.iter().map(Result::unwrap).collect::<Vec<_>>(), want);
        for (k, &(c, w)) in want.iter().enumerate() {
            let expect = (w != NO_WASM_OFFSET).then_some(w);
            assert_eq!(m.lookup(c), expect, "entry {k}");
            if let Some(&(next, _)) = want.get(k + 1) {
                assert_eq!(m.lookup(next - 1), expect, "entry {k}, last byte");
            }
        }
        // Straight-line code: one byte per entry.
        let mut b = AddrMapBuilder::default();
        for i in 0..128u32 {
            b.push(i * 5, 1000 + i * 2);
        }
        let bytes = b.finish();
        assert!(bytes.len() <= 8 + 2 * 8 + 128 + 2 * 3, "{}", bytes.len());
        // Every first byte decodes: each of the 256 values, with LEB128
        // continuations where it needs them.
        for first in 0..=255u8 {
            let mut b = AddrMapBuilder::default();
            b.push(0, 10);
            b.push(1, 11);
            let mut bytes = b.finish();
            bytes.pop();
            bytes.extend([first, 4, 4]);
            bytes[0] = 2; // entries, one block
            let m = AddrMap::parse(&bytes).unwrap();
            let (code, wasm) = m.iter().nth(1).unwrap().unwrap();
            assert!(code > 0 && wasm != 0, "{first}");
        }
    }

    #[test]
    fn truncated() {
        let mut b = AddrMapBuilder::default();
        b.push(0, 1);
        b.push(4, 2);
        let bytes = b.finish();
        for n in 1..16 {
            assert!(AddrMap::parse(&bytes[..n]).is_err());
        }
        let m = AddrMap::parse(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(m.lookup(4), None);
        assert!(m.validate(100).is_err());
    }

    #[test]
    fn validate_and_iter() {
        let mut b = AddrMapBuilder::default();
        b.push(0, 1);
        b.push(4, 2);
        let bytes = b.finish();
        let m = AddrMap::parse(&bytes).unwrap();
        assert_eq!(m.iter().nth(1).unwrap().unwrap(), (4, 2));
        assert_eq!(m.iter().count(), 2);
        m.validate(4).unwrap();
        let e = m.validate(3).unwrap_err();
        assert!(matches!(e, FormatError::Entry { entry: 1, .. }), "{e}");
        // A first offset past `.text`.
        let mut bytes = bytes;
        bytes[8..12].copy_from_slice(&800u32.to_le_bytes());
        let e = AddrMap::parse(&bytes).unwrap().validate(100).unwrap_err();
        assert!(
            e.to_string()
                .contains("block 0: first offset 0x320 points outside `.text` (length 0x65)"),
            "{e}"
        );
    }
}
