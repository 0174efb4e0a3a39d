//! Trap codes and the `.wasmc.traps` table.
//!
//! ```text
//! .wasmc.traps (little-endian, 4-byte aligned)
//! +-----------+------------------------------+---------------------+
//! | count u32 | offsets [u32; count], sorted | codes [u8; count]   |
//! +-----------+------------------------------+---------------------+
//! ```
//!
//! `offsets[i]` is the `.text` offset of an instruction that may trap (a
//! faulting load or store, a `ud2`/`udf`, a divide), `codes[i]` its
//! [`TrapCode`]. Offsets are strictly increasing. A PC is looked up by exact
//! match only: a fault at a PC that is not in the table is not a Wasm trap.
//! Codes are validated with [`TrapCode::from_u8`] on every read, never cast.

use crate::bytes::{push_u32, read_u32, search_u32};
use crate::sections::ELF_WASMC_TRAPS;
use crate::FormatError;

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
        let mut out = Vec::with_capacity(4 + self.entries.len() * 5);
        push_u32(&mut out, self.entries.len() as u32);
        for (off, _) in &self.entries {
            push_u32(&mut out, *off);
        }
        out.extend(self.entries.iter().map(|e| e.1 as u8));
        out
    }
}

/// A `.wasmc.traps` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct TrapTable<'a> {
    data: &'a [u8],
    count: usize,
}

const WHAT: &str = crate::sections::section_what!(traps);

impl<'a> TrapTable<'a> {
    /// Checks the section's size against its count. The codes are checked on
    /// every lookup, so a corrupted code byte is reported, never acted on.
    pub fn parse(data: &'a [u8]) -> Result<Self, FormatError> {
        if data.is_empty() {
            return Ok(TrapTable { data, count: 0 });
        }
        let count = read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
            what: WHAT,
            detail: "no count".into(),
        })? as usize;
        let need = count.checked_mul(5).and_then(|n| n.checked_add(4));
        if need != Some(data.len()) {
            return Err(FormatError::Invalid {
                what: WHAT,
                detail: format!("count {count} does not match section length {}", data.len()),
            });
        }
        Ok(TrapTable { data, count })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The trap code of the instruction at exactly `offset`. `Err` if the code
    /// byte stored there is not a known trap code.
    pub fn lookup(&self, offset: u32) -> Result<Option<TrapCode>, FormatError> {
        match search_u32(self.data, 4, self.count, offset) {
            Some(Ok(i)) => self.code_at(i).map(Some),
            _ => Ok(None),
        }
    }

    fn code_at(&self, i: usize) -> Result<TrapCode, FormatError> {
        let byte = self.data[4 + self.count * 4 + i];
        TrapCode::from_u8(byte).ok_or_else(|| FormatError::Invalid {
            what: WHAT,
            detail: format!("entry {i}: unknown trap code {byte}"),
        })
    }

    /// All entries in offset order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, TrapCode), FormatError>> + '_ {
        (0..self.count).map(move |i| {
            let off = read_u32(self.data, 4 + i * 4).ok_or_else(|| FormatError::Truncated {
                what: WHAT,
                detail: format!("entry {i}"),
            })?;
            Ok((off, self.code_at(i)?))
        })
    }
}

impl TrapTable<'_> {
    /// Checks every entry: offsets strictly increasing and inside `.text`
    /// (`text_len` bytes), codes known. A table that passes cannot make a
    /// lookup return a site outside the code.
    pub fn validate(&self, text_len: u64) -> Result<(), FormatError> {
        // `parse` checked that the offsets and codes fill the section. One
        // branch-light pass finds the first wrong entry; `entry_error` then
        // says what is wrong with it.
        let n = self.count;
        let offsets = self.data.get(4..4 + n * 4).unwrap_or_default();
        let codes = self.data.get(4 + n * 4..).unwrap_or_default();
        let mut prev: i64 = -1;
        let bad = offsets.chunks_exact(4).zip(codes).position(|(o, &c)| {
            let off = i64::from(u32::from_le_bytes([o[0], o[1], o[2], o[3]]));
            let ok = off > prev && (off as u64) < text_len && TrapCode::from_u8(c).is_some();
            prev = off;
            !ok
        });
        match bad {
            None => Ok(()),
            Some(i) => Err(self.entry_error(i, text_len)),
        }
    }

    /// What is wrong with entry `i`, which [`Self::validate`] found wrong.
    #[cold]
    fn entry_error(&self, i: usize, text_len: u64) -> FormatError {
        let entry = |detail: String| FormatError::Entry {
            section: ELF_WASMC_TRAPS,
            entry: i as u64,
            detail,
        };
        let at = |i: usize| read_u32(self.data, 4 + i * 4);
        let Some(off) = at(i) else {
            return entry("truncated".to_string());
        };
        if let Err(e) = self.code_at(i) {
            return e;
        }
        if i > 0 && at(i - 1).is_some_and(|p| off <= p) {
            return entry(format!("offset {off:#x} is not above the previous one"));
        }
        entry(format!(
            "offset {off:#x} points outside `.text` (length {text_len:#x})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut b = TrapTableBuilder::default();
        b.push(30, TrapCode::IntegerDivisionByZero);
        b.push(10, TrapCode::MemoryOutOfBounds);
        b.push(20, TrapCode::UnreachableCodeReached);
        let bytes = b.finish();
        let t = TrapTable::parse(&bytes).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.lookup(10).unwrap(), Some(TrapCode::MemoryOutOfBounds));
        assert_eq!(t.lookup(30).unwrap(), Some(TrapCode::IntegerDivisionByZero));
        assert_eq!(t.lookup(11).unwrap(), None);
        let all: Vec<_> = t.iter().map(|e| e.unwrap().0).collect();
        assert_eq!(all, [10, 20, 30]);
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
        let mut b = TrapTableBuilder::default();
        b.push(4, TrapCode::StackOverflow);
        b.push(8, TrapCode::BadSignature);
        let bytes = b.finish();
        for n in 1..bytes.len() {
            assert!(TrapTable::parse(&bytes[..n]).is_err(), "len {n}");
        }
        let mut bad = bytes.clone();
        *bad.last_mut().unwrap() = 0xee;
        let t = TrapTable::parse(&bad).unwrap();
        assert!(t.lookup(8).is_err());
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(TrapTable::parse(&huge).is_err());
    }

    /// A table with the given raw offsets and one code for all.
    fn raw(offsets: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        push_u32(&mut out, offsets.len() as u32);
        for o in offsets {
            push_u32(&mut out, *o);
        }
        out.extend(offsets.iter().map(|_| TrapCode::MemoryOutOfBounds as u8));
        out
    }

    #[test]
    fn validate_names_the_entry() {
        let ok = raw(&[0, 4, 15]);
        TrapTable::parse(&ok).unwrap().validate(16).unwrap();
        let e = TrapTable::parse(&ok).unwrap().validate(15).unwrap_err();
        assert_eq!(
            e.to_string(),
            "section `.wasmc.traps`: entry 2: offset 0xf points outside `.text` (length 0xf)"
        );
        let unsorted = raw(&[0, 8, 4]);
        let e = TrapTable::parse(&unsorted)
            .unwrap()
            .validate(16)
            .unwrap_err();
        assert!(matches!(e, FormatError::Entry { entry: 2, .. }), "{e}");
        let dup = raw(&[4, 4]);
        assert!(TrapTable::parse(&dup).unwrap().validate(16).is_err());
        let mut bad_code = raw(&[1]);
        *bad_code.last_mut().unwrap() = 0xee;
        let e = TrapTable::parse(&bad_code)
            .unwrap()
            .validate(16)
            .unwrap_err();
        assert!(e.to_string().contains("unknown trap code 238"), "{e}");
        TrapTable::parse(&[]).unwrap().validate(0).unwrap();
    }
}
