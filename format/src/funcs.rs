//! The function index space, read in place: `.wasmc.funcs` (one fixed-size
//! record per function) and `.wasmc.names` (the name-section names).
//!
//! ```text
//! .wasmc.funcs (little-endian, 4-byte aligned)
//! +-----------+------------------------------------------+
//! | count u32 | records [FuncRecord; count], 16 B each    |
//! +-----------+------------------------------------------+
//! FuncRecord:
//! +----------------+-----------------+---------------+-----------------+
//! | type_index u32 | code_offset u32 | code_len u32  | wasm_offset u32 |
//! +----------------+-----------------+---------------+-----------------+
//!
//! .wasmc.names (little-endian, 4-byte aligned; may be empty: no names)
//! +-----------+----------------------------+--------------------+
//! | count u32 | ends [u32; count], rising  | UTF-8 bytes        |
//! +-----------+----------------------------+--------------------+
//! ```
//!
//! There is one record per function of the Wasm function index space,
//! imports first. An import's record has `code_offset` [`IMPORTED`] and zero
//! length and Wasm offset; a defined function's record gives its code range
//! in `.text` (defined functions are laid out in index order) and the byte
//! offset of its body in the Wasm module.
//!
//! Name `i` is `bytes[ends[i - 1]..ends[i]]` (`ends[-1]` = 0); an empty name
//! means the function has none.
//!
//! Loading must not cost time per function, so nothing here is decoded
//! whole: [`FuncTable::parse`] and [`NameTable::parse`] check only the
//! section length against the count, and every read checks the record it
//! reads (type index, code range against `.text`, import flag against the
//! index). A corrupted record is an error when it is read, never a panic.
//! [`FuncTable::validate`] checks every record at once, plus the code order,
//! in one pass; the loader runs it when it parses an artifact and
//! `wasmc inspect` reports what it finds.

use crate::bytes::{push_u32, read_u32, read_u32_at};
use crate::module_info::{CodeRange, DefinedFunc, FuncInfo, Import, ImportType};
use crate::FormatError;

/// `code_offset` of an imported function's record.
pub const IMPORTED: u32 = u32::MAX;

/// Size of one record of `.wasmc.funcs`.
pub const FUNC_RECORD_SIZE: usize = 16;

const FUNCS: &str = crate::sections::section_what!(funcs);
const NAMES: &str = crate::sections::section_what!(names);

fn invalid(what: &'static str, detail: String) -> FormatError {
    FormatError::Invalid { what, detail }
}

/// Encodes `.wasmc.funcs` for `funcs` (the whole index space, imports first).
pub fn encode_funcs(funcs: &[FuncInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + funcs.len() * FUNC_RECORD_SIZE);
    push_u32(&mut out, funcs.len() as u32);
    for f in funcs {
        push_u32(&mut out, f.type_index);
        match &f.code {
            Some(c) => {
                push_u32(&mut out, c.range.offset);
                push_u32(&mut out, c.range.len);
                push_u32(&mut out, c.wasm_offset);
            }
            None => {
                push_u32(&mut out, IMPORTED);
                push_u32(&mut out, 0);
                push_u32(&mut out, 0);
            }
        }
    }
    out
}

/// Encodes `.wasmc.names` for `funcs`; empty if no function has a name.
pub fn encode_names(funcs: &[FuncInfo]) -> Vec<u8> {
    if funcs
        .iter()
        .all(|f| f.name.as_deref().unwrap_or("").is_empty())
    {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    let mut out = Vec::with_capacity(4 + funcs.len() * 4);
    push_u32(&mut out, funcs.len() as u32);
    for f in funcs {
        bytes.extend_from_slice(f.name.as_deref().unwrap_or("").as_bytes());
        push_u32(&mut out, bytes.len() as u32);
    }
    out.extend_from_slice(&bytes);
    out
}

/// What a [`FuncTable`] checks its records against: facts of the module's
/// [`crate::ModuleInfo`] and the artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncTableLimits {
    /// Functions in the index space (`ModuleInfo::num_funcs`).
    pub num_funcs: u32,
    /// Imported functions (a prefix of the index space).
    pub num_imported: u32,
    /// Entries of the type section.
    pub num_types: u32,
    /// Length of `.text`.
    pub text_len: u64,
}

/// One function's record, checked against the [`FuncTableLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncRecord {
    /// Type index (`< num_types`).
    pub type_index: u32,
    /// Code, for defined functions (inside `.text`); `None` for imports.
    pub code: Option<DefinedFunc>,
}

/// A `.wasmc.funcs` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct FuncTable<'a> {
    data: &'a [u8],
    limits: FuncTableLimits,
}

impl<'a> FuncTable<'a> {
    /// Checks the section's count against `limits.num_funcs` and its length
    /// against the count. O(1): records are checked when read.
    pub fn parse(data: &'a [u8], limits: FuncTableLimits) -> Result<Self, FormatError> {
        let count = read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
            what: FUNCS,
            detail: "no count".into(),
        })?;
        if count != limits.num_funcs {
            return Err(invalid(
                FUNCS,
                format!(
                    "{count} records for {} functions in the module info",
                    limits.num_funcs
                ),
            ));
        }
        if limits.num_imported > count {
            return Err(invalid(
                FUNCS,
                format!("{} imported functions of {count}", limits.num_imported),
            ));
        }
        let need = (count as usize)
            .checked_mul(FUNC_RECORD_SIZE)
            .and_then(|n| n.checked_add(4));
        if need != Some(data.len()) {
            return Err(invalid(
                FUNCS,
                format!("count {count} does not match section length {}", data.len()),
            ));
        }
        Ok(FuncTable { data, limits })
    }

    /// A table of `limits.num_funcs` functions whose every read fails with
    /// a truncation error: stands in for a section that no longer parses
    /// (a reader that parsed the section once need not handle that case).
    pub fn empty(limits: FuncTableLimits) -> Self {
        FuncTable { data: &[], limits }
    }

    /// Number of functions (imports included).
    pub fn len(&self) -> u32 {
        self.limits.num_funcs
    }

    /// True when the module has no functions.
    pub fn is_empty(&self) -> bool {
        self.limits.num_funcs == 0
    }

    /// Number of imported functions.
    pub fn num_imported(&self) -> u32 {
        self.limits.num_imported
    }

    fn field(&self, index: u32, field: usize) -> Result<u32, FormatError> {
        let at = (index as usize)
            .checked_mul(FUNC_RECORD_SIZE)
            .and_then(|n| n.checked_add(4 + field * 4));
        at.and_then(|at| read_u32(self.data, at))
            .ok_or_else(|| FormatError::Truncated {
                what: FUNCS,
                detail: format!("function {index}"),
            })
    }

    /// The record of function `index`, checked: `Err` if `index` is out of
    /// range or the record is inconsistent (type index out of range, code
    /// outside `.text`, import flag disagreeing with the index).
    pub fn get(&self, index: u32) -> Result<FuncRecord, FormatError> {
        let l = &self.limits;
        if index >= l.num_funcs {
            return Err(invalid(
                FUNCS,
                format!("function {index} of {}", l.num_funcs),
            ));
        }
        let type_index = self.field(index, 0)?;
        let offset = self.field(index, 1)?;
        let len = self.field(index, 2)?;
        let wasm_offset = self.field(index, 3)?;
        if type_index >= l.num_types {
            return Err(invalid(
                FUNCS,
                format!(
                    "function {index}: type index {type_index} of {}",
                    l.num_types
                ),
            ));
        }
        let is_import = index < l.num_imported;
        let code = match (offset == IMPORTED, is_import) {
            (true, true) => None,
            (false, false) => {
                let range = CodeRange { offset, len };
                if range.end() > l.text_len {
                    return Err(invalid(
                        FUNCS,
                        format!(
                            "function {index}: code range {offset}+{len} exceeds `.text` length {}",
                            l.text_len
                        ),
                    ));
                }
                Some(DefinedFunc { range, wasm_offset })
            }
            _ => {
                return Err(invalid(
                    FUNCS,
                    format!("function {index}: code presence disagrees with imports"),
                ))
            }
        };
        Ok(FuncRecord { type_index, code })
    }

    /// The type index and code of defined function `index`; `Err` for an
    /// import or as for [`Self::get`].
    pub fn defined(&self, index: u32) -> Result<(u32, DefinedFunc), FormatError> {
        let r = self.get(index)?;
        match r.code {
            Some(c) => Ok((r.type_index, c)),
            None => Err(invalid(
                FUNCS,
                format!("function {index} is imported, not defined"),
            )),
        }
    }

    /// The type index of function `index` (checked as by [`Self::get`]).
    pub fn type_index(&self, index: u32) -> Result<u32, FormatError> {
        Ok(self.get(index)?.type_index)
    }

    /// The defined function whose code contains `.text` offset `off`: a
    /// binary search over the defined functions, which are laid out in index
    /// order. The found record is checked; a corrupted table may make the
    /// search miss, never return a function whose code does not contain `off`.
    pub fn func_at(&self, off: u32) -> Option<u32> {
        let (mut lo, mut hi) = (self.limits.num_imported, self.limits.num_funcs);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.field(mid, 1).ok()? <= off {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        if i < self.limits.num_imported {
            return None;
        }
        let code = self.get(i).ok()?.code?;
        code.range.contains(off).then_some(i)
    }

    /// Checks that each function import's type (in `imports`, section
    /// order) is the type in its record. O(imports).
    pub fn check_imports(&self, imports: &[Import]) -> Result<(), FormatError> {
        let mut fi = 0u32;
        for (i, imp) in imports.iter().enumerate() {
            if let ImportType::Func(t) = imp.ty {
                if self.get(fi).ok().map(|r| r.type_index) != Some(t) {
                    return Err(invalid(
                        FUNCS,
                        format!("import {i}: type {t} disagrees with function {fi}"),
                    ));
                }
                fi += 1;
            }
        }
        Ok(())
    }

    /// Every record in index order, each checked as by [`Self::get`].
    pub fn iter(&self) -> impl Iterator<Item = Result<FuncRecord, FormatError>> + '_ {
        (0..self.limits.num_funcs).map(move |i| self.get(i))
    }

    /// Checks every record (as [`Self::get`] does) and that defined
    /// functions' code is in index order without overlap. O(functions), in
    /// one pass over the section; a wrong record is reported as `get` would
    /// report it, naming the function.
    pub fn validate(&self) -> Result<(), FormatError> {
        let l = &self.limits;
        let records = self.data.get(4..).unwrap_or_default();
        let mut prev_end = 0u64;
        for (i, r) in records
            .chunks_exact(FUNC_RECORD_SIZE)
            .take(l.num_funcs as usize)
            .enumerate()
        {
            let word = |k: usize| u32::from_le_bytes([r[k], r[k + 1], r[k + 2], r[k + 3]]);
            let (type_index, offset, len) = (word(0), word(4), word(8));
            let index = i as u32;
            let is_import = index < l.num_imported;
            let end = u64::from(offset) + u64::from(len);
            let ok = type_index < l.num_types
                && if is_import {
                    offset == IMPORTED
                } else {
                    offset != IMPORTED && end <= l.text_len
                };
            if !ok {
                // The per-record check names what is wrong.
                self.get(index)?;
            }
            if !is_import {
                if u64::from(offset) < prev_end {
                    return Err(invalid(
                        FUNCS,
                        format!("function {i}: code not in index order"),
                    ));
                }
                prev_end = end;
            }
        }
        // `parse` checked the length against the count; re-check in case
        // this table was built by `empty`.
        if records.len() / FUNC_RECORD_SIZE < l.num_funcs as usize {
            self.get(l.num_funcs - 1)?;
        }
        Ok(())
    }
}

/// A `.wasmc.names` section, read in place.
#[derive(Clone, Copy, Debug)]
pub struct NameTable<'a> {
    data: &'a [u8],
    count: u32,
}

impl<'a> NameTable<'a> {
    /// Checks the count against `num_funcs` (an empty section has no names)
    /// and that the `ends` array fits. O(1): names are checked when read.
    pub fn parse(data: &'a [u8], num_funcs: u32) -> Result<Self, FormatError> {
        if data.is_empty() {
            return Ok(NameTable { data, count: 0 });
        }
        let count = read_u32(data, 0).ok_or_else(|| FormatError::Truncated {
            what: NAMES,
            detail: "no count".into(),
        })?;
        if count != num_funcs {
            return Err(invalid(
                NAMES,
                format!("{count} names for {num_funcs} functions"),
            ));
        }
        let need = (count as usize)
            .checked_mul(4)
            .and_then(|n| n.checked_add(4));
        if need.is_none_or(|n| n > data.len()) {
            return Err(FormatError::Truncated {
                what: NAMES,
                detail: format!("{count} name ends do not fit in {} bytes", data.len()),
            });
        }
        Ok(NameTable { data, count })
    }

    /// The name of function `index`: `Ok(None)` if it has none (or the
    /// section is empty), `Err` if the entry is out of bounds or not UTF-8.
    pub fn get(&self, index: u32) -> Result<Option<&'a str>, FormatError> {
        if index >= self.count {
            return Ok(None);
        }
        let bytes_at = 4 + self.count as usize * 4;
        let bad = || FormatError::Truncated {
            what: NAMES,
            detail: format!("name {index}"),
        };
        let start = match index {
            0 => 0,
            i => read_u32_at(self.data, 4, i as usize - 1).ok_or_else(bad)?,
        };
        let end = read_u32_at(self.data, 4, index as usize).ok_or_else(bad)?;
        let (s, e) = (
            (start as usize).saturating_add(bytes_at),
            (end as usize).saturating_add(bytes_at),
        );
        let bytes = (s <= e)
            .then(|| self.data.get(s..e))
            .flatten()
            .ok_or_else(|| {
                invalid(
                    NAMES,
                    format!("name {index}: bytes {start}..{end} out of bounds"),
                )
            })?;
        let s = core::str::from_utf8(bytes)
            .map_err(|_| invalid(NAMES, format!("name {index}: not UTF-8")))?;
        Ok((!s.is_empty()).then_some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<FuncInfo> {
        let def = |ty, offset, len, name: Option<&str>| FuncInfo {
            type_index: ty,
            name: name.map(str::to_string),
            code: Some(DefinedFunc {
                range: CodeRange { offset, len },
                wasm_offset: 100 + offset,
            }),
        };
        vec![
            FuncInfo {
                type_index: 1,
                name: Some("imp".into()),
                code: None,
            },
            def(0, 0, 16, Some("a")),
            def(1, 16, 8, None),
            def(0, 32, 32, Some("ünïcode")),
        ]
    }

    fn limits() -> FuncTableLimits {
        FuncTableLimits {
            num_funcs: 4,
            num_imported: 1,
            num_types: 2,
            text_len: 64,
        }
    }

    #[test]
    fn round_trip() {
        let funcs = sample();
        let bytes = encode_funcs(&funcs);
        let t = FuncTable::parse(&bytes, limits()).unwrap();
        t.validate().unwrap();
        assert_eq!(t.len(), 4);
        for (i, f) in funcs.iter().enumerate() {
            let r = t.get(i as u32).unwrap();
            assert_eq!(r.type_index, f.type_index);
            assert_eq!(r.code, f.code);
        }
        assert_eq!(t.func_at(0), Some(1));
        assert_eq!(t.func_at(15), Some(1));
        assert_eq!(t.func_at(16), Some(2));
        assert_eq!(t.func_at(24), None, "padding between functions");
        assert_eq!(t.func_at(63), Some(3));
        assert_eq!(t.func_at(64), None);
        assert!(t.get(4).is_err());

        let names = encode_names(&funcs);
        let n = NameTable::parse(&names, 4).unwrap();
        assert_eq!(n.get(0).unwrap(), Some("imp"));
        assert_eq!(n.get(1).unwrap(), Some("a"));
        assert_eq!(n.get(2).unwrap(), None);
        assert_eq!(n.get(3).unwrap(), Some("ünïcode"));
        assert_eq!(n.get(4).unwrap(), None);

        let unnamed: Vec<FuncInfo> = funcs
            .into_iter()
            .map(|f| FuncInfo { name: None, ..f })
            .collect();
        let names = encode_names(&unnamed);
        assert!(names.is_empty());
        assert_eq!(NameTable::parse(&names, 4).unwrap().get(1).unwrap(), None);
    }

    #[test]
    fn truncated_input_is_refused() {
        let bytes = encode_funcs(&sample());
        for n in 0..bytes.len() {
            assert!(FuncTable::parse(&bytes[..n], limits()).is_err(), "len {n}");
        }
        let names = encode_names(&sample());
        for n in 1..names.len() {
            if let Ok(t) = NameTable::parse(&names[..n], 4) {
                // The ends fit but the bytes are cut: the last name fails.
                assert!(t.get(3).is_err(), "len {n}");
            }
        }
        assert!(NameTable::parse(&names[..7], 4).is_err());
    }

    #[test]
    fn corrupted_records_are_errors() {
        let good = encode_funcs(&sample());
        let record = |i: usize, field: usize| 4 + i * FUNC_RECORD_SIZE + field * 4;
        let patch = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            b
        };
        // Count disagreeing with the module info, and a huge count.
        assert!(FuncTable::parse(&patch(0, 3), limits()).is_err());
        assert!(FuncTable::parse(&patch(0, u32::MAX), limits()).is_err());
        let huge = FuncTableLimits {
            num_funcs: u32::MAX,
            ..limits()
        };
        assert!(FuncTable::parse(&patch(0, u32::MAX), huge).is_err());
        // Type index out of range.
        let b = patch(record(2, 0), 2);
        let t = FuncTable::parse(&b, limits()).unwrap();
        assert!(t.get(2).unwrap_err().to_string().contains("type index"));
        assert!(t.validate().is_err());
        // Code past `.text`, also by overflow.
        for (field, v) in [(1, 60), (2, 1000), (1, u32::MAX - 1)] {
            let b = patch(record(3, field), v);
            let t = FuncTable::parse(&b, limits()).unwrap();
            assert!(t.get(3).is_err(), "field {field} = {v}");
            assert_eq!(
                t.validate().unwrap_err().to_string(),
                t.get(3).unwrap_err().to_string()
            );
            assert_eq!(t.func_at(40), None);
        }
        // A defined function marked as an import and the reverse.
        let b = patch(record(1, 1), IMPORTED);
        assert!(FuncTable::parse(&b, limits()).unwrap().get(1).is_err());
        assert!(FuncTable::parse(&b, limits()).unwrap().validate().is_err());
        let b = patch(record(0, 1), 0);
        assert!(FuncTable::parse(&b, limits()).unwrap().get(0).is_err());
        assert!(FuncTable::parse(&b, limits()).unwrap().validate().is_err());
        assert!(FuncTable::empty(limits()).validate().is_err());
        // Out of order: each record is fine, `validate` sees the order, and
        // lookups never name a function whose code does not contain the PC.
        let b = patch(record(2, 1), 0);
        let t = FuncTable::parse(&b, limits()).unwrap();
        assert!(t.get(2).is_ok());
        assert!(t.validate().unwrap_err().to_string().contains("order"));
        for off in 0..70 {
            if let Some(i) = t.func_at(off) {
                assert!(t.get(i).unwrap().code.unwrap().range.contains(off));
            }
        }

        // Names: ends out of bounds, decreasing, and bad UTF-8.
        let names = encode_names(&sample());
        let mut b = names.clone();
        b[4 + 4..4 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let t = NameTable::parse(&b, 4).unwrap();
        assert!(t.get(1).is_err());
        assert!(t.get(2).is_err());
        let mut b = names.clone();
        b[4..8].copy_from_slice(&3u32.to_le_bytes()); // ends 3, 1: name 1 runs backwards
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert!(NameTable::parse(&b, 4).unwrap().get(1).is_err());
        let mut b = names.clone();
        let first_byte = 4 + 4 * 4;
        b[first_byte] = 0xff;
        assert!(NameTable::parse(&b, 4).unwrap().get(0).is_err());
        assert!(NameTable::parse(&names, 5).is_err());
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let funcs = encode_funcs(&sample());
        let names = encode_names(&sample());
        for i in 0..funcs.len() {
            let mut b = funcs.clone();
            b[i] ^= 0x81;
            if let Ok(t) = FuncTable::parse(&b, limits()) {
                let _ = t.validate();
                for off in 0..70 {
                    let _ = t.func_at(off);
                }
            }
        }
        for i in 0..names.len() {
            let mut b = names.clone();
            b[i] ^= 0x81;
            if let Ok(t) = NameTable::parse(&b, 4) {
                for f in 0..5 {
                    let _ = t.get(f);
                }
            }
        }
    }
}
