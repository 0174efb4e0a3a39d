//! The `.wasmc.addrmap` table: `.text` offset to Wasm bytecode offset.
//!
//! ```text
//! +-----------+------------------------------------+---------------------------+
//! | count u32 | code offsets [u32; count], sorted  | wasm offsets [u32; count] |
//! +-----------+------------------------------------+---------------------------+
//! ```
//!
//! Entry `i` says that the machine code from `code[i]` up to `code[i + 1]`
//! came from the Wasm instruction at byte offset `wasm[i]` of the module. A
//! lookup returns the entry at or before a PC. Wasm offset `u32::MAX` marks code
//! with no Wasm origin (prologues, trampolines).

use crate::bytes::{push_u32, read_u32, read_u32_at, search_u32};
use crate::sections::ELF_WASMC_ADDRMAP;
use crate::FormatError;

/// Wasm offset used for code that has no corresponding Wasm instruction.
pub const NO_WASM_OFFSET: u32 = u32::MAX;

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
                *self.wasm.last_mut().unwrap() = wasm_offset;
                return;
            }
        }
        self.code.push(code_offset);
        self.wasm.push(wasm_offset);
    }

    /// Encodes the table.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.code.len() * 8);
        push_u32(&mut out, self.code.len() as u32);
        for v in self.code.iter().chain(&self.wasm) {
            push_u32(&mut out, *v);
        }
        out
    }
}

/// A `.wasmc.addrmap` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct AddrMap<'a> {
    data: &'a [u8],
    count: usize,
}

const WHAT: &str = crate::sections::section_what!(addrmap);

impl<'a> AddrMap<'a> {
    /// Checks the section's size against its count.
    pub fn parse(data: &'a [u8]) -> Result<Self, FormatError> {
        if data.is_empty() {
            return Ok(AddrMap { data, count: 0 });
        }
        let count = read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
            what: WHAT,
            detail: "no count".into(),
        })? as usize;
        let need = count.checked_mul(8).and_then(|n| n.checked_add(4));
        if need != Some(data.len()) {
            return Err(FormatError::Invalid {
                what: WHAT,
                detail: format!("count {count} does not match section length {}", data.len()),
            });
        }
        Ok(AddrMap { data, count })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The Wasm offset of the code at `code_offset`: the entry at or before it.
    pub fn lookup(&self, code_offset: u32) -> Option<u32> {
        let i = match search_u32(self.data, 4, self.count, code_offset)? {
            Ok(i) => i,
            Err(0) => return None,
            Err(i) => i - 1,
        };
        let w = read_u32_at(self.data, 4 + self.count * 4, i)?;
        (w != NO_WASM_OFFSET).then_some(w)
    }
}

impl AddrMap<'_> {
    /// Entry `i`: (code offset, Wasm offset), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<(u32, u32)> {
        if i >= self.count {
            return None;
        }
        let code = read_u32_at(self.data, 4, i)?;
        let wasm = read_u32_at(self.data, 4 + self.count * 4, i)?;
        Some((code, wasm))
    }

    /// Checks every entry: code offsets in order (never decreasing) and at
    /// most `text_len`.
    pub fn validate(&self, text_len: u64) -> Result<(), FormatError> {
        // `parse` checked that the two arrays fill the section.
        let codes = self.data.get(4..4 + self.count * 4).unwrap_or_default();
        let mut prev = 0u32;
        let bad = codes.chunks_exact(4).position(|c| {
            let code = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let ok = code >= prev && u64::from(code) <= text_len;
            prev = code;
            !ok
        });
        if let Some(i) = bad {
            let code = read_u32_at(self.data, 4, i).unwrap_or(0);
            return Err(FormatError::Entry {
                section: ELF_WASMC_ADDRMAP,
                entry: i as u64,
                detail: format!(
                    "code offset {code:#x} out of order or past `.text` (length {text_len:#x})"
                ),
            });
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
    }

    #[test]
    fn truncated() {
        let mut b = AddrMapBuilder::default();
        b.push(0, 1);
        b.push(4, 2);
        let bytes = b.finish();
        for n in 1..bytes.len() {
            assert!(AddrMap::parse(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn validate_and_get() {
        let mut b = AddrMapBuilder::default();
        b.push(0, 1);
        b.push(4, 2);
        let bytes = b.finish();
        let m = AddrMap::parse(&bytes).unwrap();
        assert_eq!(m.get(1), Some((4, 2)));
        assert_eq!(m.get(2), None);
        m.validate(4).unwrap();
        let e = m.validate(3).unwrap_err();
        assert!(matches!(e, FormatError::Entry { entry: 1, .. }), "{e}");
        let mut bytes = bytes;
        bytes[4..8].copy_from_slice(&8u32.to_le_bytes());
        let e = AddrMap::parse(&bytes).unwrap().validate(100).unwrap_err();
        assert!(
            e.to_string()
                .contains("entry 1: code offset 0x4 out of order"),
            "{e}"
        );
    }
}
