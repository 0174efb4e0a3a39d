//! The `.wasmc.stackmaps` table: which stack slots hold live `externref`s at
//! each safepoint.
//!
//! A **safepoint** is a call instruction in a Wasm function. Its stack map is
//! keyed by the call's **return address** (the `.text` offset of the
//! instruction just after the call), because that is what a frame-pointer walk
//! finds on the stack. Lookups are by exact return address only: a PC that is
//! not a key has no stack map, and the collector treats that as a fatal
//! inconsistency rather than guessing from a neighbour.
//!
//! ```text
//! +-----------+---------------------------+----------------------------+------------+
//! | count u32 | return addrs [u32; count] | record offsets [u32; count]| records... |
//! |           | strictly increasing       | into the records area      |            |
//! +-----------+---------------------------+----------------------------+------------+
//! record: | frame_span u32 | slot count u32 | slot offsets [u32; slot count] |
//! ```
//!
//! `frame_span` is the distance in bytes from the frame's SP at the safepoint
//! up to its frame pointer, so `SP = FP - frame_span`. Each slot offset is a
//! byte offset from that SP of a pointer-sized slot holding a live reference
//! (possibly null):
//!
//! ```text
//!          | caller frame      |
//!          | return address    |
//!    FP -> | saved FP          |  -+
//!          | ...               |   | frame_span
//!          | live externref    |   |  <- SP + slot offset
//!    SP -> | outgoing args     |  -+
//! ```
//!
//! The compiler is responsible for spilling every live reference to a slot
//! that the stack map lists (Cranelift's user stack maps do this).

use crate::bytes::{push_u32, read_u32, read_u32_at, search_u32};
use crate::sections::ELF_WASMC_STACKMAPS;
use crate::FormatError;
use std::collections::HashMap;

/// Every frame span is a multiple of this: both the frame pointer and the
/// stack pointer at a call are 16-byte aligned on the targets wasmc supports
/// (x86-64 System V, AArch64 AAPCS64).
pub const FRAME_ALIGN: u32 = 16;

/// Builds a `.wasmc.stackmaps` section; identical records are stored once.
#[derive(Default, Debug)]
pub struct StackMapBuilder {
    entries: Vec<(u32, u32, Vec<u32>)>,
}

impl StackMapBuilder {
    /// Adds the stack map of the safepoint whose return address is at `.text`
    /// offset `return_addr`.
    pub fn push(&mut self, return_addr: u32, frame_span: u32, mut slots: Vec<u32>) {
        slots.sort_unstable();
        slots.dedup();
        self.entries.push((return_addr, frame_span, slots));
    }

    /// Encodes the table.
    ///
    /// # Panics
    /// If two stack maps share a return address (a compiler bug).
    pub fn finish(mut self) -> Vec<u8> {
        self.entries.sort_by_key(|e| e.0);
        for w in self.entries.windows(2) {
            assert!(
                w[0].0 < w[1].0,
                "two stack maps at return address {}",
                w[0].0
            );
        }
        let n = self.entries.len();
        let mut records = Vec::new();
        let mut seen: HashMap<(u32, &[u32]), u32> = HashMap::new();
        let mut offsets = Vec::with_capacity(n);
        for (_, span, slots) in &self.entries {
            let off = *seen.entry((*span, slots.as_slice())).or_insert_with(|| {
                let off = records.len() as u32;
                push_u32(&mut records, *span);
                push_u32(&mut records, slots.len() as u32);
                for s in slots {
                    push_u32(&mut records, *s);
                }
                off
            });
            offsets.push(off);
        }
        let mut out = Vec::with_capacity(4 + n * 8 + records.len());
        push_u32(&mut out, n as u32);
        for e in &self.entries {
            push_u32(&mut out, e.0);
        }
        for o in offsets {
            push_u32(&mut out, o);
        }
        out.extend_from_slice(&records);
        out
    }
}

/// One safepoint's stack map, read in place.
#[derive(Clone, Copy, Debug)]
pub struct StackMap<'a> {
    /// Bytes from SP up to FP at the safepoint.
    pub frame_span: u32,
    slots: &'a [u8],
}

impl<'a> StackMap<'a> {
    /// Number of live reference slots.
    pub fn len(&self) -> usize {
        self.slots.len() / 4
    }

    /// True when no reference is live.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// SP-relative byte offsets of the live slots.
    pub fn slots(&self) -> impl Iterator<Item = u32> + 'a {
        let s = self.slots;
        (0..s.len() / 4).filter_map(move |i| read_u32_at(s, 0, i))
    }
}

/// A `.wasmc.stackmaps` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct StackMapSection<'a> {
    data: &'a [u8],
    count: usize,
}

const WHAT: &str = crate::sections::section_what!(stackmaps);

impl<'a> StackMapSection<'a> {
    /// Checks that the key and offset arrays fit. Records are checked on lookup.
    pub fn parse(data: &'a [u8]) -> Result<Self, FormatError> {
        if data.is_empty() {
            return Ok(StackMapSection { data, count: 0 });
        }
        let count = read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
            what: WHAT,
            detail: "no count".into(),
        })? as usize;
        let need = count.checked_mul(8).and_then(|n| n.checked_add(4));
        match need {
            Some(n) if n <= data.len() => Ok(StackMapSection { data, count }),
            _ => Err(FormatError::Truncated {
                what: WHAT,
                detail: format!("count {count} exceeds section length {}", data.len()),
            }),
        }
    }

    /// Number of safepoints.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no safepoints.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The stack map whose return address is exactly `return_addr`.
    /// `Ok(None)` if there is none; `Err` if its record is malformed.
    pub fn lookup(&self, return_addr: u32) -> Result<Option<StackMap<'a>>, FormatError> {
        match search_u32(self.data, 4, self.count, return_addr) {
            Some(Ok(i)) => self.record(i).map(Some),
            _ => Ok(None),
        }
    }

    /// The `i`th safepoint: return address and stack map.
    pub fn get(&self, i: usize) -> Result<(u32, StackMap<'a>), FormatError> {
        let key = read_u32_at(self.data, 4, i).ok_or_else(|| FormatError::Truncated {
            what: WHAT,
            detail: format!("entry {i}"),
        })?;
        Ok((key, self.record(i)?))
    }

    /// All safepoints in return-address order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(u32, StackMap<'a>), FormatError>> + '_ {
        (0..self.count).map(move |i| self.get(i))
    }

    fn record(&self, i: usize) -> Result<StackMap<'a>, FormatError> {
        let bad = |detail: String| FormatError::Invalid { what: WHAT, detail };
        let records = 4 + self.count * 8;
        let rel = read_u32_at(self.data, 4 + self.count * 4, i)
            .ok_or_else(|| bad(format!("entry {i}: no record offset")))?;
        let at = records
            .checked_add(rel as usize)
            .ok_or_else(|| bad(format!("entry {i}: record offset {rel} overflows")))?;
        let span = read_u32(self.data, at)
            .ok_or_else(|| bad(format!("entry {i}: record offset {rel} out of bounds")))?;
        let n = read_u32(self.data, at + 4)
            .ok_or_else(|| bad(format!("entry {i}: record at {rel} truncated")))?;
        let start = at + 8;
        let end = (n as usize)
            .checked_mul(4)
            .and_then(|b| b.checked_add(start))
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad(format!("entry {i}: {n} slots exceed section length")))?;
        Ok(StackMap {
            frame_span: span,
            slots: &self.data[start..end],
        })
    }
}

impl StackMapSection<'_> {
    /// Checks every entry: return addresses strictly increasing and inside
    /// `.text` (`0 < ret <= text_len`: a call may end the code), every record
    /// readable, and every slot (`pointer_bytes` wide) inside its frame
    /// (`slot + pointer_bytes <= frame_span`), so that a collector following
    /// a validated map reads only the frame it describes.
    pub fn validate(&self, text_len: u64, pointer_bytes: u32) -> Result<(), FormatError> {
        let entry = |i: usize, detail: String| FormatError::Entry {
            section: ELF_WASMC_STACKMAPS,
            entry: i as u64,
            detail,
        };
        let mut prev: Option<u32> = None;
        for (i, e) in self.iter().enumerate() {
            let (ret, map) = e?;
            if prev.is_some_and(|p| ret <= p) {
                return Err(entry(
                    i,
                    format!("return address {ret:#x} is not above the previous one"),
                ));
            }
            if ret == 0 || u64::from(ret) > text_len {
                return Err(entry(
                    i,
                    format!(
                        "return address {ret:#x} points outside `.text` (length {text_len:#x})"
                    ),
                ));
            }
            for slot in map.slots() {
                if pointer_bytes > 0 && !slot.is_multiple_of(pointer_bytes) {
                    return Err(entry(
                        i,
                        format!("slot offset {slot:#x} is not aligned to {pointer_bytes} bytes"),
                    ));
                }
                if u64::from(slot) + u64::from(pointer_bytes) > u64::from(map.frame_span) {
                    return Err(entry(
                        i,
                        format!(
                            "slot offset {slot:#x} is outside the frame (span {:#x})",
                            map.frame_span
                        ),
                    ));
                }
            }
            prev = Some(ret);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = StackMapBuilder::default();
        b.push(40, 32, vec![16, 8]);
        b.push(12, 32, vec![8, 16]);
        b.push(90, 64, vec![]);
        b.finish()
    }

    #[test]
    fn round_trip_and_dedup() {
        let bytes = sample();
        let s = StackMapSection::parse(&bytes).unwrap();
        assert_eq!(s.len(), 3);
        let m = s.lookup(40).unwrap().unwrap();
        assert_eq!(m.frame_span, 32);
        assert_eq!(m.slots().collect::<Vec<_>>(), [8, 16]);
        assert!(s.lookup(41).unwrap().is_none());
        assert!(s.lookup(39).unwrap().is_none());
        assert!(s.lookup(90).unwrap().unwrap().is_empty());
        // 12 and 40 share one record.
        assert_eq!(bytes.len(), 4 + 3 * 8 + 16 + 8);
    }

    #[test]
    fn truncated_and_corrupt_never_panic() {
        let bytes = sample();
        for n in 0..bytes.len() {
            if let Ok(s) = StackMapSection::parse(&bytes[..n]) {
                for k in [12, 40, 90] {
                    let _ = s.lookup(k);
                }
                let _ = s.iter().count();
            }
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                if let Ok(s) = StackMapSection::parse(&b) {
                    for k in [12, 40, 90, 0, u32::MAX] {
                        let _ = s.lookup(k);
                    }
                    for (_, m) in s.iter().flatten() {
                        let _ = m.slots().count();
                    }
                }
            }
        }
    }

    #[test]
    fn validate_names_the_entry() {
        let bytes = sample();
        let s = StackMapSection::parse(&bytes).unwrap();
        s.validate(90, 8).unwrap();
        let e = s.validate(89, 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "section `.wasmc.stackmaps`: entry 2: return address 0x5a points outside `.text` (length 0x59)"
        );
        // Slot 16 of 8 bytes does not fit a 20-byte frame.
        let mut b = StackMapBuilder::default();
        b.push(4, 24, vec![16]);
        b.push(8, 20, vec![8, 16]);
        let bytes = b.finish();
        let e = StackMapSection::parse(&bytes)
            .unwrap()
            .validate(100, 8)
            .unwrap_err();
        assert!(matches!(e, FormatError::Entry { entry: 1, .. }), "{e}");
        assert!(e.to_string().contains("slot offset 0x10"), "{e}");
        // A zero return address cannot follow a call.
        let mut b = StackMapBuilder::default();
        b.push(0, 8, vec![]);
        let bytes = b.finish();
        assert!(StackMapSection::parse(&bytes)
            .unwrap()
            .validate(100, 8)
            .is_err());
        // Keys out of order (the builder sorts, so swap them by hand).
        let mut bytes = sample();
        bytes[4..8].copy_from_slice(&50u32.to_le_bytes());
        let e = StackMapSection::parse(&bytes)
            .unwrap()
            .validate(100, 8)
            .unwrap_err();
        assert!(matches!(e, FormatError::Entry { entry: 1, .. }), "{e}");
        StackMapSection::parse(&[]).unwrap().validate(0, 8).unwrap();
    }
}
