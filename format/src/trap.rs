//! Trap codes and the `.wasmc.traps` table.
//!
//! The table lists every `.text` offset of an instruction that may trap (a
//! faulting load or store, a `ud2`/`udf`, a divide) with its [`TrapCode`],
//! in the blocked delta encoding of [`crate::blocks`]: each entry is one
//! LEB128 number, `(offset - previous offset - 1) << 1 | other`, and when
//! `other` is 1 a byte with the code; `other` 0 means the common code,
//! `MemoryOutOfBounds` (98% of the sites of a large module). A site within
//! 64 bytes of the previous one takes one byte. A block's first entry has 0
//! for its delta. A PC is looked up by exact match only: a fault at a PC
//! that is not in the table is not a Wasm trap. Codes are validated with
//! [`TrapCode::from_u8`] on every read, never cast.

use crate::blocks::{self, BlockCursor, BlockError, Blocks};
use crate::sections::ELF_WASMC_TRAPS;
use crate::FormatError;

/// The code an entry's number stands for without a code byte.
const COMMON_CODE: TrapCode = TrapCode::MemoryOutOfBounds;

macro_rules! trap_codes {
    ($($(#[$doc:meta])* $name:ident = $val:literal, $msg:literal;)*) => {
        /// Why Wasm code trapped. `Display` gives the text the spec testsuite's
        /// `assert_trap` expects.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum TrapCode {
            $($(#[$doc])* $name = $val,)*
        }

        impl TrapCode {
            /// Every trap code, in encoding order.
            pub const ALL: &'static [TrapCode] = &[$(TrapCode::$name,)*];

            /// Decodes a code read from an artifact; `None` for unknown bytes.
            pub fn from_u8(v: u8) -> Option<TrapCode> {
                match v {
                    $($val => Some(TrapCode::$name),)*
                    _ => None,
                }
            }

            /// The spec testsuite's message for this trap.
            pub fn message(self) -> &'static str {
                match self {
                    $(TrapCode::$name => $msg,)*
                }
            }

            /// The variant's name, for tools.
            pub fn name(self) -> &'static str {
                match self {
                    $(TrapCode::$name => stringify!($name),)*
                }
            }
        }
    };
}

trap_codes! {
    /// The Wasm stack exceeded its limit.
    StackOverflow = 0, "call stack exhausted";
    /// A load or store outside linear memory, or a bulk memory operation out of bounds.
    MemoryOutOfBounds = 1, "out of bounds memory access";
    /// A misaligned atomic access.
    HeapMisaligned = 2, "misaligned memory access";
    /// A table access outside the table, or a bulk table operation out of bounds.
    TableOutOfBounds = 3, "out of bounds table access";
    /// `call_indirect` found a null entry.
    IndirectCallToNull = 4, "uninitialized element";
    /// `call_indirect` found a function of another type.
    BadSignature = 5, "indirect call type mismatch";
    /// Signed division overflow (`INT_MIN / -1`).
    IntegerOverflow = 6, "integer overflow";
    /// Integer division or remainder by zero.
    IntegerDivisionByZero = 7, "integer divide by zero";
    /// A float-to-int conversion of NaN or an out-of-range value.
    BadConversionToInteger = 8, "invalid conversion to integer";
    /// The `unreachable` instruction.
    UnreachableCodeReached = 9, "unreachable";
    /// The store's epoch deadline was reached (epoch interruption).
    Interrupted = 10, "interrupt";
    /// A null reference was dereferenced.
    NullReference = 11, "null reference";
    /// `call_indirect` with an index outside the table.
    UndefinedElement = 12, "undefined element";
    /// The store ran out of fuel (fuel metering).
    OutOfFuel = 13, "all fuel consumed by WebAssembly";
}

impl core::fmt::Display for TrapCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// Builds a `.wasmc.traps` section. Entries may be added in any order.
#[derive(Default, Debug)]
pub struct TrapTableBuilder {
    entries: Vec<(u32, TrapCode)>,
}

impl TrapTableBuilder {
    /// Records that the instruction at `.text` offset `offset` traps with `code`.
    pub fn push(&mut self, offset: u32, code: TrapCode) {
        self.entries.push((offset, code));
    }

    /// Encodes the table. Duplicate offsets keep the first code pushed.
    pub fn finish(mut self) -> Vec<u8> {
        self.entries.sort_by_key(|e| e.0);
        self.entries.dedup_by_key(|e| e.0);
        let offsets: Vec<u32> = self.entries.iter().map(|e| e.0).collect();
        let entries = &self.entries;
        blocks::encode(&offsets, |out, i, delta_m1| {
            let code = entries[i].1;
            let other = code != COMMON_CODE;
            blocks::push_packed(out, delta_m1.unwrap_or(0), u32::from(other), 1);
            if other {
                out.push(code as u8);
            }
        })
    }
}

/// A `.wasmc.traps` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct TrapTable<'a> {
    blocks: Blocks<'a>,
}

const WHAT: &str = crate::sections::section_what!(traps);

fn block_error(e: BlockError) -> FormatError {
    match e {
        BlockError::BadEntry { entry } => FormatError::Entry {
            section: ELF_WASMC_TRAPS,
            entry: entry as u64,
            detail: e.to_string(),
        },
        _ => FormatError::Invalid {
            what: WHAT,
            detail: e.to_string(),
        },
    }
}

/// Decodes one entry: `(delta - 1, code byte)`.
#[inline]
fn entry(data: &[u8], pos: &mut usize, _first: bool) -> Option<(u32, u32)> {
    let (delta_m1, other) = blocks::read_packed(data, pos, 1)?;
    if other == 0 {
        return Some((delta_m1, COMMON_CODE as u32));
    }
    let code = *data.get(*pos)?;
    *pos += 1;
    Some((delta_m1, u32::from(code)))
}

impl<'a> TrapTable<'a> {
    /// Checks the section's header and index size against its length (O(1)).
    pub fn parse(data: &'a [u8]) -> Result<Self, FormatError> {
        Ok(TrapTable {
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

    /// The trap code of the instruction at exactly `offset`, if the table
    /// lists it. A damaged entry or code on the way is `None`: this runs in
    /// the trap handler, which must not allocate an error, and
    /// [`Self::validate`] reports it.
    pub fn lookup(&self, offset: u32) -> Option<TrapCode> {
        let mut c = BlockCursor::new(self.blocks.block_for(offset)?);
        while let Some((_, off, code)) = c.next_with(entry).ok()? {
            if off == offset {
                return TrapCode::from_u8(u8::try_from(code).ok()?);
            }
            if off > offset {
                return None;
            }
        }
        None
    }

    /// All entries in offset order; stops at the first damaged one.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, TrapCode), FormatError>> + 'a {
        let blocks = self.blocks;
        let mut b = 0;
        let mut cursor: Option<BlockCursor<'a>> = None;
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed {
                return None;
            }
            let r = loop {
                if let Some(c) = cursor.as_mut() {
                    match c.next_with(entry) {
                        Ok(Some(e)) => break Ok(e),
                        Ok(None) => cursor = None,
                        Err(e) => break Err(block_error(e)),
                    }
                }
                if b >= blocks.blocks() {
                    return None;
                }
                match blocks.block(b) {
                    Some(block) => cursor = Some(BlockCursor::new(block)),
                    None => break Err(block_error(BlockError::BlockStart { block: b })),
                }
                b += 1;
            };
            let r = r.and_then(|(i, off, code)| Ok((off, known_code(i, code)?)));
            failed = r.is_err();
            Some(r)
        })
    }

    /// Checks the index (O(blocks), what loading runs): blocks in order,
    /// their bytes inside the section, first offsets inside `.text`
    /// (`text_len` bytes).
    pub fn check_index(&self, text_len: u64) -> Result<(), FormatError> {
        self.blocks.check_index(text_len).map_err(block_error)
    }
}

/// The trap code of entry `i`, or an error naming it.
fn known_code(i: usize, code: u32) -> Result<TrapCode, FormatError> {
    u8::try_from(code)
        .ok()
        .and_then(TrapCode::from_u8)
        .ok_or_else(|| FormatError::Entry {
            section: ELF_WASMC_TRAPS,
            entry: i as u64,
            detail: format!("unknown trap code {code}"),
        })
}

impl TrapTable<'_> {
    /// Checks every entry: the index ([`Self::check_index`]), every block
    /// decoding to exactly its entries, offsets strictly increasing across
    /// blocks and inside `.text` (`text_len` bytes), codes known. A table
    /// that passes cannot make a lookup return a site outside the code.
    pub fn validate(&self, text_len: u64) -> Result<(), FormatError> {
        self.check_index(text_len)?;
        let mut prev: Option<u32> = None;
        for b in 0..self.blocks.blocks() {
            let block = self
                .blocks
                .block(b)
                .ok_or_else(|| block_error(BlockError::BlockStart { block: b }))?;
            let mut c = BlockCursor::new(block);
            while let Some((i, off, code)) = c.next_with(entry).map_err(block_error)? {
                let e = |detail: String| FormatError::Entry {
                    section: ELF_WASMC_TRAPS,
                    entry: i as u64,
                    detail,
                };
                known_code(i, code)?;
                if prev.is_some_and(|p| off <= p) {
                    return Err(e(format!("offset {off:#x} is not above the previous one")));
                }
                if u64::from(off) >= text_len {
                    return Err(e(format!(
                        "offset {off:#x} points outside `.text` (length {text_len:#x})"
                    )));
                }
                prev = Some(off);
            }
            if !c.finished_exactly() {
                return Err(block_error(BlockError::TrailingBytes { block: b }));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(u32, TrapCode)]) -> Vec<u8> {
        let mut b = TrapTableBuilder::default();
        for (o, c) in entries {
            b.push(*o, *c);
        }
        b.finish()
    }

    #[test]
    fn round_trip() {
        let bytes = table(&[
            (30, TrapCode::IntegerDivisionByZero),
            (10, TrapCode::MemoryOutOfBounds),
            (20, TrapCode::UnreachableCodeReached),
        ]);
        let t = TrapTable::parse(&bytes).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(10), Some(TrapCode::MemoryOutOfBounds));
        assert_eq!(t.lookup(30), Some(TrapCode::IntegerDivisionByZero));
        assert_eq!(t.lookup(11), None);
        assert_eq!(t.lookup(9), None);
        assert_eq!(t.lookup(31), None);
        let all: Vec<_> = t.iter().map(|e| e.unwrap().0).collect();
        assert_eq!(all, [10, 20, 30]);
        t.validate(31).unwrap();
    }

    /// Many entries over several blocks, with small and large gaps: every
    /// site is found with its code, no other offset is.
    #[test]
    fn many_entries_round_trip() {
        let mut entries = Vec::new();
        let mut off = 3u32;
        for i in 0..1000u32 {
            off += [1, 3, 8, 9, 200, 5000, 1 << 20][i as usize % 7];
            entries.push((off, TrapCode::ALL[i as usize % TrapCode::ALL.len()]));
        }
        let bytes = table(&entries);
        let t = TrapTable::parse(&bytes).unwrap();
        t.validate(u64::from(off) + 1).unwrap();
        for (o, c) in &entries {
            assert_eq!(t.lookup(*o), Some(*c));
            assert_eq!(
                t.lookup(o - 1).is_some(),
                entries.iter().any(|e| e.0 == o - 1)
            );
        }
        let all: Vec<_> = t.iter().map(Result::unwrap).collect();
        assert_eq!(all, entries);
        // Dense: one byte per entry within 64 bytes of the previous one,
        // two with a code other than the common one.
        let dense: Vec<_> = (0..128).map(|i| (i * 60, COMMON_CODE)).collect();
        assert_eq!(table(&dense).len(), 8 + 2 * 8 + 128);
        let dense: Vec<_> = (0..128).map(|i| (i * 4, TrapCode::StackOverflow)).collect();
        assert_eq!(table(&dense).len(), 8 + 2 * 8 + 2 * 128);
    }

    #[test]
    fn codes_round_trip() {
        for c in TrapCode::ALL {
            assert_eq!(TrapCode::from_u8(*c as u8), Some(*c));
        }
        assert_eq!(TrapCode::from_u8(200), None);
    }

    #[test]
    fn truncated_and_corrupt() {
        let bytes = table(&[(4, TrapCode::StackOverflow), (8, TrapCode::BadSignature)]);
        for n in 1..16 {
            assert!(TrapTable::parse(&bytes[..n]).is_err(), "len {n}");
        }
        // A cut body: the lookup fails, validate says where.
        let t = TrapTable::parse(&bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(t.lookup(8), None);
        assert!(t.validate(16).is_err());
        // An unknown code.
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 0xee;
        let t = TrapTable::parse(&bad).unwrap();
        assert_eq!(t.lookup(8), None);
        let e = t.validate(16).unwrap_err();
        assert!(
            e.to_string().contains("entry 1: unknown trap code 238"),
            "{e}"
        );
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(TrapTable::parse(&huge).is_err());
    }

    #[test]
    fn validate_names_the_entry() {
        let ok = table(&[
            (0, TrapCode::MemoryOutOfBounds),
            (4, TrapCode::MemoryOutOfBounds),
            (15, TrapCode::MemoryOutOfBounds),
        ]);
        TrapTable::parse(&ok).unwrap().validate(16).unwrap();
        let e = TrapTable::parse(&ok).unwrap().validate(15).unwrap_err();
        assert_eq!(
            e.to_string(),
            "section `.wasmc.traps`: entry 2: offset 0xf points outside `.text` (length 0xf)"
        );
        // Two blocks whose entries overlap: the second block's first offset
        // is above the first block's first but not its last.
        let n = blocks::BLOCK_LEN as u32 + 8;
        let entries: Vec<_> = (0..n).map(|i| (i * 10, TrapCode::StackOverflow)).collect();
        let mut two = table(&entries);
        two[16..20].copy_from_slice(&100u32.to_le_bytes());
        let t = TrapTable::parse(&two).unwrap();
        t.check_index(10_000).unwrap();
        let e = t.validate(10_000).unwrap_err();
        let want = format!(
            "entry {}: offset 0x64 is not above the previous one",
            blocks::BLOCK_LEN
        );
        assert!(e.to_string().contains(&want), "{e}");
        TrapTable::parse(&[]).unwrap().validate(0).unwrap();
    }
}
