//! The per-PC tables: the trap table and the stack maps, each entry located
//! in the code, and a summary of the address map.
//!
//! [`ParsedArtifact::validate_tables`] has checked every entry (sorted,
//! inside `.text`, known trap codes, slots inside their frames); the readers
//! here still return errors rather than trusting that.

use super::super::InspectError;
use super::code_map::CodeMap;
use super::count;
use super::schema::{AddrMapReport, StackMapReport, TrapReport};
use wasmc_format::addrmap::NO_WASM_OFFSET;
use wasmc_loader::artifact::ParsedArtifact;

/// The trap table, in code order.
pub(super) fn traps(
    a: &ParsedArtifact<'_>,
    code_map: &CodeMap,
) -> Result<Vec<TrapReport>, InspectError> {
    let addrmap = a.addr_map()?;
    let mut traps = Vec::new();
    for entry in a.trap_table()?.iter() {
        let (off, code) = entry?;
        traps.push(TrapReport {
            code_offset: off,
            location: code_map.locate(off),
            kind: code.name().to_string(),
            message: code.message().to_string(),
            wasm_offset: addrmap.lookup(off),
        });
    }
    Ok(traps)
}

/// The stack maps, in return-address order.
pub(super) fn stack_maps(
    a: &ParsedArtifact<'_>,
    code_map: &CodeMap,
) -> Result<Vec<StackMapReport>, InspectError> {
    let mut stack_maps = Vec::new();
    for entry in a.stack_maps()?.iter() {
        let (ret, map) = entry?;
        stack_maps.push(StackMapReport {
            return_offset: ret,
            location: code_map.locate_return(ret),
            frame_span: map.frame_span,
            slots: map.slots().collect(),
        });
    }
    Ok(stack_maps)
}

/// How much of `.text` the address map attributes to Wasm instructions.
/// Entry `i` covers the code from its offset up to the next entry's (the
/// last one up to the end of `.text`).
pub(super) fn addrmap_summary(a: &ParsedArtifact<'_>) -> Result<AddrMapReport, InspectError> {
    let text_len = a.text().len() as u64;
    let map = a.addr_map()?;
    let n = map.len();
    let mut report = AddrMapReport {
        entries: count(n),
        mapped_entries: 0,
        mapped_code_bytes: 0,
        unmapped_code_bytes: 0,
        wasm_offset_min: None,
        wasm_offset_max: None,
    };
    let mut entries = map.iter().peekable();
    // The code before the first entry has no Wasm origin.
    report.unmapped_code_bytes = match entries.peek() {
        Some(Ok((first, _))) => u64::from(*first).min(text_len),
        _ => text_len,
    };
    while let Some(entry) = entries.next() {
        let (code, wasm) = entry?;
        let end = match entries.peek() {
            Some(Ok((next, _))) => u64::from(*next).min(text_len),
            _ => text_len,
        };
        let span = end.saturating_sub(u64::from(code));
        if wasm == NO_WASM_OFFSET {
            report.unmapped_code_bytes += span;
        } else {
            report.mapped_entries += 1;
            report.mapped_code_bytes += span;
            report.wasm_offset_min = Some(report.wasm_offset_min.map_or(wasm, |m| m.min(wasm)));
            report.wasm_offset_max = Some(report.wasm_offset_max.map_or(wasm, |m| m.max(wasm)));
        }
    }
    Ok(report)
}
