//! The inspection report: one serializable value describing everything an
//! artifact holds, built from a [`ParsedArtifact`].
//!
//! [`Report::build`] reads the parsed metadata and walks the per-PC tables
//! once. The report is plain data (serde), so the text renderer
//! (`inspect::text`) and `--json` show exactly the same facts; the JSON field
//! names and meanings are the stable schema documented in
//! `docs/inspect-json.md` (version [`SCHEMA_VERSION`]). Any change to a field
//! here must be reflected there, and a removal or change of meaning bumps the
//! version.
//!
//! Everything comes from an untrusted file: every offset is looked up through
//! checked readers, and a table that disagrees with the code it describes
//! (unsorted keys, offsets past `.text`, unknown trap codes) is an error
//! naming the section and the entry, never a panic.

use super::InspectError;
use serde::Serialize;
use wasmc_format::addrmap::NO_WASM_OFFSET;
use wasmc_format::builtins::Builtin;
use wasmc_format::bytes::read_u32_at;
use wasmc_format::header::FORMAT_VERSION;
use wasmc_format::sections::{
    func_symbol, ELF_WASMC_ADDRMAP, ELF_WASMC_DATA, ELF_WASMC_FUNCS, ELF_WASMC_META,
    ELF_WASMC_NAMES, ELF_WASMC_STACKMAPS, ELF_WASMC_TRAPS,
};
use wasmc_format::{
    ConstExpr, ConstOp, DataMode, ElementItems, ElementMode, FormatError, FuncInfo, ImportType,
    MemoryStrategy, ModuleInfo,
};
use wasmc_loader::artifact::ParsedArtifact;
use wasmc_loader::LoadError;

/// Version of the JSON schema described in `docs/inspect-json.md`. Adding a
/// field keeps the version; removing or changing the meaning of one bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `wasmc inspect` reports about one artifact.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The file as a whole.
    pub file: FileReport,
    /// The artifact header.
    pub header: HeaderReport,
    /// Whether this host can load the artifact.
    pub host: HostReport,
    /// Every ELF section, in file order.
    pub sections: Vec<SectionReport>,
    /// Module-level facts.
    pub module: ModuleReport,
    /// The type section.
    pub types: Vec<TypeReport>,
    /// Imports, in section order.
    pub imports: Vec<ImportReport>,
    /// Exports, in section order.
    pub exports: Vec<ExportReport>,
    /// The function index space (imports first).
    pub functions: Vec<FunctionReport>,
    /// Trampolines: builtin, then entry and host per type.
    pub trampolines: Vec<TrampolineReport>,
    /// Tables.
    pub tables: Vec<TableReport>,
    /// Memories.
    pub memories: Vec<MemoryReport>,
    /// Globals.
    pub globals: Vec<GlobalReport>,
    /// The trap table, in code order.
    pub traps: Vec<TrapReport>,
    /// The stack maps, in return-address order.
    pub stack_maps: Vec<StackMapReport>,
    /// Summary of the code-to-Wasm address map.
    pub addrmap: AddrMapReport,
    /// Every relocation in the file.
    pub relocations: Vec<RelocationReport>,
    /// Data segments.
    pub data_segments: Vec<DataSegmentReport>,
    /// Element segments.
    pub element_segments: Vec<ElementSegmentReport>,
    /// Sizes and counts.
    pub totals: Totals,
}

/// The file as a whole.
#[derive(Clone, Debug, Serialize)]
pub struct FileReport {
    /// Path given on the command line, if any.
    pub path: Option<String>,
    /// File size in bytes.
    pub size: u64,
}

/// The artifact header.
#[derive(Clone, Debug, Serialize)]
pub struct HeaderReport {
    /// Artifact format version (always the one this build reads).
    pub format_version: u32,
    /// `wasmc` version that wrote the artifact.
    pub compiler_version: String,
    /// Target triple.
    pub triple: String,
    /// Architecture (Rust's name).
    pub arch: String,
    /// Operating system (Rust's name).
    pub os: String,
    /// Pointer width in bytes.
    pub pointer_bytes: u8,
    /// CPU model the code was compiled for (`baseline`, `native`, a list).
    pub cpu: String,
    /// CPU features the code uses (Rust target-feature names).
    pub cpu_features: Vec<String>,
    /// Cranelift optimization level.
    pub opt_level: String,
    /// Memory bounds strategy.
    pub memory_strategy: MemoryStrategyReport,
    /// Every Cranelift shared flag as `name=value`.
    pub cranelift_flags: Vec<String>,
    /// Enabled Wasm proposals.
    pub wasm_features: Vec<String>,
    /// SHA-256 content hash recorded in the header, lowercase hex.
    pub content_hash: String,
}

/// How memory accesses are kept in bounds.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MemoryStrategyReport {
    /// Reservation plus guard pages, no explicit checks.
    Guard {
        /// Bytes reserved per memory.
        reservation: u64,
        /// Guard bytes after the reservation.
        guard: u64,
    },
    /// Explicit bounds checks.
    Explicit,
}

/// Whether this host can load the artifact, and why not.
#[derive(Clone, Debug, Serialize)]
pub struct HostReport {
    /// True when there is no mismatch, no unsupported relocation and the
    /// content hash matches.
    pub loadable: bool,
    /// This host's architecture.
    pub arch: String,
    /// This host's operating system.
    pub os: String,
    /// Every header field that does not fit this host.
    pub mismatches: Vec<MismatchReport>,
    /// The first relocation the loader would refuse, as its error message.
    pub relocation_error: Option<String>,
    /// Whether the recomputed content hash equals the header's.
    pub content_hash_ok: bool,
}

impl HostReport {
    /// Every reason the artifact cannot be loaded here, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .mismatches
            .iter()
            .map(|m| {
                format!(
                    "{}: artifact needs {}, host has {}",
                    m.field, m.artifact, m.host
                )
            })
            .collect();
        if let Some(e) = &self.relocation_error {
            out.push(e.clone());
        }
        if !self.content_hash_ok {
            out.push(
                "content hash mismatch: the artifact was modified after compilation".to_string(),
            );
        }
        out
    }
}

/// One field in which the artifact does not fit the host.
#[derive(Clone, Debug, Serialize)]
pub struct MismatchReport {
    /// Header field.
    pub field: String,
    /// What the artifact needs.
    pub artifact: String,
    /// What the host has.
    pub host: String,
}

/// One ELF section.
#[derive(Clone, Debug, Serialize)]
pub struct SectionReport {
    /// Section name (empty for the null section).
    pub name: String,
    /// File offset of its bytes.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Alignment.
    pub align: u64,
}

/// Module-level facts.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleReport {
    /// Name-section module name.
    pub name: Option<String>,
    /// Start function index.
    pub start: Option<u32>,
}

/// One function type.
#[derive(Clone, Debug, Serialize)]
pub struct TypeReport {
    /// Type index.
    pub index: u32,
    /// Parameter types.
    pub params: Vec<String>,
    /// Result types.
    pub results: Vec<String>,
    /// `(i32, i32) -> (i64)`.
    pub signature: String,
}

/// One import.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    /// Position in the import section.
    pub index: u32,
    /// Module name.
    pub module: String,
    /// Field name.
    pub field: String,
    /// `func`, `table`, `memory` or `global`.
    pub kind: String,
    /// The imported entity's type, as text.
    #[serde(rename = "type")]
    pub ty: String,
}

/// One export.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// Export name.
    pub name: String,
    /// `func`, `table`, `memory` or `global`.
    pub kind: String,
    /// Index in the kind's index space.
    pub index: u32,
}

/// One entry of the function index space.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionReport {
    /// Function index.
    pub index: u32,
    /// Name-section name.
    pub name: Option<String>,
    /// True for imported functions (which have no code).
    pub imported: bool,
    /// ELF symbol of the code.
    pub symbol: Option<String>,
    /// Offset of the code in `.text`.
    pub code_offset: Option<u32>,
    /// Size of the code in bytes.
    pub code_size: Option<u32>,
    /// Byte offset of the body in the Wasm module.
    pub wasm_offset: Option<u32>,
    /// Type index.
    pub type_index: u32,
    /// Signature as text.
    pub signature: String,
    /// Names under which it is exported.
    pub exports: Vec<String>,
    /// Trap-table entries inside its code.
    pub traps: u32,
    /// Safepoints (stack maps) inside its code.
    pub safepoints: u32,
}

/// One trampoline.
#[derive(Clone, Debug, Serialize)]
pub struct TrampolineReport {
    /// `builtin`, `entry` or `host`.
    pub kind: String,
    /// Builtin name, or the type's signature.
    pub name: String,
    /// Type index for `entry`/`host`; builtin index for `builtin`.
    pub index: u32,
    /// Label used in locations, e.g. `<builtin memory_grow>`.
    pub label: String,
    /// Offset in `.text`.
    pub code_offset: u32,
    /// Size in bytes.
    pub code_size: u32,
}

/// A table.
#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    /// Table index.
    pub index: u32,
    /// True if imported.
    pub imported: bool,
    /// Element type.
    pub elem_type: String,
    /// Initial size.
    pub min: u32,
    /// Maximum size.
    pub max: Option<u32>,
}

/// A memory.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryReport {
    /// Memory index.
    pub index: u32,
    /// True if imported.
    pub imported: bool,
    /// Initial size in pages.
    pub min_pages: u64,
    /// Maximum size in pages.
    pub max_pages: Option<u64>,
}

/// A global.
#[derive(Clone, Debug, Serialize)]
pub struct GlobalReport {
    /// Global index.
    pub index: u32,
    /// True if imported.
    pub imported: bool,
    /// Value type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Mutable.
    pub mutable: bool,
    /// Initializer as text, for defined globals.
    pub init: Option<String>,
}

/// Where a `.text` offset is.
#[derive(Clone, Debug, Serialize)]
pub struct Location {
    /// `function`, `builtin_trampoline`, `entry_trampoline`,
    /// `host_trampoline` or `unknown`.
    pub region: String,
    /// Function index when `region` is `function`.
    pub function: Option<u32>,
    /// Offset from the start of the region (from `.text` for `unknown`).
    pub offset: u32,
    /// `wasm[0]::div+0x10`, `<builtin memory_grow>+0x12`.
    pub label: String,
}

/// One trap-table entry.
#[derive(Clone, Debug, Serialize)]
pub struct TrapReport {
    /// Offset of the trapping instruction in `.text`.
    pub code_offset: u32,
    /// Where that is.
    pub location: Location,
    /// Trap code name, e.g. `IntegerDivisionByZero`.
    pub kind: String,
    /// The spec's message, e.g. `integer divide by zero`.
    pub message: String,
    /// Wasm bytecode offset from the address map.
    pub wasm_offset: Option<u32>,
}

/// One safepoint's stack map.
#[derive(Clone, Debug, Serialize)]
pub struct StackMapReport {
    /// Return address of the call, as a `.text` offset (the table's key).
    pub return_offset: u32,
    /// Where that is.
    pub location: Location,
    /// Bytes from SP up to FP at the safepoint.
    pub frame_span: u32,
    /// SP-relative offsets of the slots holding live externrefs.
    pub slots: Vec<u32>,
}

/// Summary of `.wasmc.addrmap`.
#[derive(Clone, Debug, Serialize)]
pub struct AddrMapReport {
    /// Number of entries.
    pub entries: u32,
    /// Entries with a Wasm offset.
    pub mapped_entries: u32,
    /// `.text` bytes attributed to a Wasm instruction.
    pub mapped_code_bytes: u64,
    /// `.text` bytes with no Wasm origin (prologues, trampolines, padding).
    pub unmapped_code_bytes: u64,
    /// Smallest Wasm offset.
    pub wasm_offset_min: Option<u32>,
    /// Largest Wasm offset.
    pub wasm_offset_max: Option<u32>,
}

/// One relocation.
#[derive(Clone, Debug, Serialize)]
pub struct RelocationReport {
    /// Section patched.
    pub section: String,
    /// Offset in that section.
    pub offset: u64,
    /// Relocation type.
    pub kind: String,
    /// Target symbol or section.
    pub symbol: String,
    /// Addend.
    pub addend: i64,
}

/// One data segment.
#[derive(Clone, Debug, Serialize)]
pub struct DataSegmentReport {
    /// Segment index.
    pub index: u32,
    /// `active` or `passive`.
    pub kind: String,
    /// Memory index (active only).
    pub memory: Option<u32>,
    /// Offset expression as text (active only).
    pub offset_expr: Option<String>,
    /// Offset of the bytes in `.wasmc.data`.
    pub data_offset: u32,
    /// Size in bytes.
    pub size: u32,
}

/// One element segment.
#[derive(Clone, Debug, Serialize)]
pub struct ElementSegmentReport {
    /// Segment index.
    pub index: u32,
    /// `active`, `passive` or `declared`.
    pub kind: String,
    /// Table index (active only).
    pub table: Option<u32>,
    /// Offset expression as text (active only).
    pub offset_expr: Option<String>,
    /// Element type.
    pub elem_type: String,
    /// Number of items.
    pub size: u32,
    /// Function indices when the items are plain functions.
    pub functions: Option<Vec<u32>>,
}

/// Sizes and counts.
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    /// Size of the file.
    pub file_bytes: u64,
    /// Size of `.text`.
    pub code_bytes: u64,
    /// Code of defined functions.
    pub function_code_bytes: u64,
    /// Code of trampolines (shared trampolines counted once).
    pub trampoline_code_bytes: u64,
    /// `.wasmc.meta`, `.wasmc.funcs`, `.wasmc.names`, `.wasmc.traps`,
    /// `.wasmc.stackmaps` and `.wasmc.addrmap`.
    pub metadata_bytes: u64,
    /// `.wasmc.data`.
    pub data_bytes: u64,
    /// Types.
    pub types: u32,
    /// Imports.
    pub imports: u32,
    /// Exports.
    pub exports: u32,
    /// Functions (imported and defined).
    pub functions: u32,
    /// Imported functions.
    pub imported_functions: u32,
    /// Defined functions.
    pub defined_functions: u32,
    /// Trap-table entries.
    pub traps: u32,
    /// Safepoints.
    pub stack_maps: u32,
    /// Address-map entries.
    pub addrmap_entries: u32,
    /// Relocations.
    pub relocations: u32,
    /// Data segments.
    pub data_segments: u32,
    /// Element segments.
    pub element_segments: u32,
}

/// A named range of `.text`: a function or a trampoline.
#[derive(Clone, Debug)]
pub(crate) struct Region {
    /// Location region kind (see [`Location::region`]).
    pub kind: &'static str,
    /// Function index for functions.
    pub function: Option<u32>,
    /// Label without offset.
    pub label: String,
    /// Start in `.text`.
    pub start: u32,
    /// Length.
    pub len: u32,
}

/// Maps `.text` offsets to functions and trampolines.
#[derive(Clone, Debug)]
pub(crate) struct CodeMap {
    /// Defined functions, in code order (checked by [`decode_funcs`]).
    functions: Vec<Region>,
    /// Trampolines.
    trampolines: Vec<Region>,
}

/// Reads the whole function index space (`.wasmc.funcs` and `.wasmc.names`),
/// checking every record and the code order.
pub(crate) fn decode_funcs(a: &ParsedArtifact<'_>) -> Result<Vec<FuncInfo>, InspectError> {
    let table = a.funcs()?;
    let names = a.names()?;
    let err = |e: FormatError| InspectError::from(LoadError::from(e));
    table.validate().map_err(err)?;
    (0..table.len())
        .map(|i| {
            let r = table.get(i).map_err(err)?;
            Ok(FuncInfo {
                type_index: r.type_index,
                name: names.get(i).map_err(err)?.map(str::to_string),
                code: r.code,
            })
        })
        .collect()
}

impl CodeMap {
    pub(crate) fn new(info: &ModuleInfo, funcs: &[FuncInfo]) -> CodeMap {
        let functions = funcs
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let code = f.code.as_ref()?;
                Some(Region {
                    kind: "function",
                    function: Some(i as u32),
                    label: func_symbol(i as u32, f.name.as_deref()),
                    start: code.range.offset,
                    len: code.range.len,
                })
            })
            .collect();
        let mut trampolines = Vec::new();
        for (b, r) in Builtin::ALL
            .iter()
            .zip(&info.builtin_trampolines)
            .filter_map(|(b, r)| Some((b, r.as_ref()?)))
        {
            trampolines.push(Region {
                kind: "builtin_trampoline",
                function: None,
                label: format!("<builtin {}>", b.name()),
                start: r.offset,
                len: r.len,
            });
        }
        for (t, tr) in info.trampolines.iter().enumerate() {
            trampolines.push(Region {
                kind: "entry_trampoline",
                function: None,
                label: format!("<entry trampoline type {t}>"),
                start: tr.entry.offset,
                len: tr.entry.len,
            });
            trampolines.push(Region {
                kind: "host_trampoline",
                function: None,
                label: format!("<host trampoline type {t}>"),
                start: tr.host.offset,
                len: tr.host.len,
            });
        }
        CodeMap {
            functions,
            trampolines,
        }
    }

    /// The function or trampoline containing `.text` offset `off`.
    pub(crate) fn region_at(&self, off: u32) -> Option<Region> {
        let contains =
            |r: &Region| off >= r.start && u64::from(off) < u64::from(r.start) + u64::from(r.len);
        let i = self.functions.partition_point(|r| r.start <= off);
        if let Some(r) = i.checked_sub(1).map(|i| &self.functions[i]) {
            if contains(r) {
                return Some(r.clone());
            }
        }
        self.trampolines.iter().find(|r| contains(r)).cloned()
    }

    /// The location of `.text` offset `off`.
    pub(crate) fn locate(&self, off: u32) -> Location {
        match self.region_at(off) {
            Some(r) => {
                let rel = off - r.start;
                Location {
                    region: r.kind.to_string(),
                    function: r.function,
                    offset: rel,
                    label: format!("{}+{rel:#x}", r.label),
                }
            }
            None => Location {
                region: "unknown".to_string(),
                function: None,
                offset: off,
                label: format!("<.text>+{off:#x}"),
            },
        }
    }

    /// The location of a safepoint with return address `ret`: the call is
    /// just before it, so the region is the one containing `ret - 1`.
    pub(crate) fn locate_return(&self, ret: u32) -> Location {
        match self.region_at(ret.saturating_sub(1)) {
            Some(r) => {
                let rel = ret.saturating_sub(r.start);
                Location {
                    region: r.kind.to_string(),
                    function: r.function,
                    offset: rel,
                    label: format!("{}+{rel:#x}", r.label),
                }
            }
            None => self.locate(ret),
        }
    }
}

/// `i32.const 16`, `global.get 0 i32.const 4 i32.add`.
pub(crate) fn const_expr_text(e: &ConstExpr) -> String {
    e.0.iter()
        .map(|op| match op {
            ConstOp::I32Const(v) => format!("i32.const {v}"),
            ConstOp::I64Const(v) => format!("i64.const {v}"),
            ConstOp::F32Const(b) => format!("f32.const {}", f32::from_bits(*b)),
            ConstOp::F64Const(b) => format!("f64.const {}", f64::from_bits(*b)),
            ConstOp::V128Const(v) => format!("v128.const i64x2 {:#x} {:#x}", *v as u64, v >> 64),
            ConstOp::RefNull(t) => format!("ref.null {t}"),
            ConstOp::RefFunc(f) => format!("ref.func {f}"),
            ConstOp::GlobalGet(g) => format!("global.get {g}"),
            ConstOp::I32Add => "i32.add".to_string(),
            ConstOp::I32Sub => "i32.sub".to_string(),
            ConstOp::I32Mul => "i32.mul".to_string(),
            ConstOp::I64Add => "i64.add".to_string(),
            ConstOp::I64Sub => "i64.sub".to_string(),
            ConstOp::I64Mul => "i64.mul".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn limits(min: impl std::fmt::Display, max: Option<impl std::fmt::Display>) -> String {
    match max {
        Some(m) => format!("{min}..{m}"),
        None => format!("{min}.."),
    }
}

fn import_type_text(info: &ModuleInfo, ty: &ImportType) -> String {
    match ty {
        ImportType::Func(t) => match info.types.get(*t as usize) {
            Some(ft) => format!("type {t} {ft}"),
            None => format!("type {t}"),
        },
        ImportType::Table(t) => format!("{} {}", t.elem, limits(t.min, t.max)),
        ImportType::Memory(m) => format!("{} pages", limits(m.min, m.max)),
        ImportType::Global(g) => {
            if g.mutable {
                format!("mut {}", g.ty)
            } else {
                g.ty.to_string()
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn table_error(section: &'static str, detail: String) -> InspectError {
    InspectError::Table { section, detail }
}

impl Report {
    /// Builds the report for a parsed artifact. `path` is shown as given.
    pub fn build(a: &ParsedArtifact<'_>, path: Option<&str>) -> Result<Report, InspectError> {
        let info = a.info();
        let h = a.header();
        let text_len = a.text().len() as u64;
        let funcs = decode_funcs(a)?;
        let code_map = CodeMap::new(info, &funcs);
        let addrmap = a.addr_map()?;

        // Trap table: sorted, inside .text, known codes.
        let mut traps = Vec::new();
        let mut prev: Option<u32> = None;
        for (i, entry) in a.trap_table()?.iter().enumerate() {
            let (off, code) = entry?;
            if prev.is_some_and(|p| off <= p) {
                return Err(table_error(
                    ELF_WASMC_TRAPS,
                    format!("entry {i}: offset {off:#x} is not above the previous one"),
                ));
            }
            if u64::from(off) >= text_len {
                return Err(table_error(
                    ELF_WASMC_TRAPS,
                    format!("entry {i}: offset {off:#x} is past `.text` (length {text_len:#x})"),
                ));
            }
            prev = Some(off);
            traps.push(TrapReport {
                code_offset: off,
                location: code_map.locate(off),
                kind: code.name().to_string(),
                message: code.message().to_string(),
                wasm_offset: addrmap.lookup(off),
            });
        }

        // Stack maps: sorted, inside .text (a return address may be its end).
        let mut stack_maps = Vec::new();
        let mut prev: Option<u32> = None;
        for (i, entry) in a.stack_maps()?.iter().enumerate() {
            let (ret, map) = entry?;
            if prev.is_some_and(|p| ret <= p) {
                return Err(table_error(
                    ELF_WASMC_STACKMAPS,
                    format!("entry {i}: return address {ret:#x} is not above the previous one"),
                ));
            }
            if u64::from(ret) > text_len || ret == 0 {
                return Err(table_error(
                    ELF_WASMC_STACKMAPS,
                    format!("entry {i}: return address {ret:#x} is outside `.text` (length {text_len:#x})"),
                ));
            }
            prev = Some(ret);
            stack_maps.push(StackMapReport {
                return_offset: ret,
                location: code_map.locate_return(ret),
                frame_span: map.frame_span,
                slots: map.slots().collect(),
            });
        }

        let addrmap_report = addrmap_summary(a, text_len)?;

        // Per-function counts, from the locations computed above.
        let mut trap_counts = vec![0u32; funcs.len()];
        let mut safepoint_counts = vec![0u32; funcs.len()];
        for (counts, f) in [
            (
                &mut trap_counts,
                traps
                    .iter()
                    .map(|t| t.location.function)
                    .collect::<Vec<_>>(),
            ),
            (
                &mut safepoint_counts,
                stack_maps.iter().map(|s| s.location.function).collect(),
            ),
        ] {
            for f in f.into_iter().flatten() {
                if let Some(c) = counts.get_mut(f as usize) {
                    *c += 1;
                }
            }
        }
        let mut export_names: Vec<Vec<String>> = vec![Vec::new(); funcs.len()];
        for e in &info.exports {
            if e.kind == wasmc_format::ExternKind::Func {
                if let Some(v) = export_names.get_mut(e.index as usize) {
                    v.push(e.name.clone());
                }
            }
        }
        let mut functions = Vec::with_capacity(funcs.len());
        for (i, f) in funcs.iter().enumerate() {
            let index = count(i);
            let code = f.code.as_ref();
            functions.push(FunctionReport {
                index,
                name: f.name.clone(),
                imported: code.is_none(),
                symbol: code.map(|_| func_symbol(index, f.name.as_deref())),
                code_offset: code.map(|c| c.range.offset),
                code_size: code.map(|c| c.range.len),
                wasm_offset: code.map(|c| c.wasm_offset),
                type_index: f.type_index,
                signature: info
                    .types
                    .get(f.type_index as usize)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                exports: export_names
                    .get_mut(i)
                    .map(std::mem::take)
                    .unwrap_or_default(),
                traps: trap_counts.get(i).copied().unwrap_or(0),
                safepoints: safepoint_counts.get(i).copied().unwrap_or(0),
            });
        }

        let mut trampolines = Vec::new();
        for ((i, b), r) in Builtin::ALL
            .iter()
            .enumerate()
            .zip(&info.builtin_trampolines)
            .filter_map(|(b, r)| Some((b, r.as_ref()?)))
        {
            trampolines.push(TrampolineReport {
                kind: "builtin".into(),
                name: b.name().into(),
                index: count(i),
                label: format!("<builtin {}>", b.name()),
                code_offset: r.offset,
                code_size: r.len,
            });
        }
        for (kind, pick) in [("entry", true), ("host", false)] {
            for (t, tr) in info.trampolines.iter().enumerate() {
                let r = if pick { tr.entry } else { tr.host };
                trampolines.push(TrampolineReport {
                    kind: kind.into(),
                    name: info
                        .types
                        .get(t)
                        .map(|ty| ty.to_string())
                        .unwrap_or_default(),
                    index: count(t),
                    label: format!("<{kind} trampoline type {t}>"),
                    code_offset: r.offset,
                    code_size: r.len,
                });
            }
        }
        // Types with the same signature share trampolines: count bytes once.
        let mut ranges: Vec<(u32, u32)> = trampolines
            .iter()
            .map(|t| (t.code_offset, t.code_size))
            .collect();
        ranges.sort_unstable();
        ranges.dedup();
        let trampoline_code_bytes = ranges.iter().map(|r| u64::from(r.1)).sum();

        let host_mismatches = a.check_host();
        let relocation_error = a.check_relocations().err().map(|e| e.to_string());
        let content_hash_ok = a.verify_content_hash().is_ok();
        let host = HostReport {
            loadable: host_mismatches.is_empty() && relocation_error.is_none() && content_hash_ok,
            arch: std::env::consts::ARCH.to_string(),
            os: std::env::consts::OS.to_string(),
            mismatches: host_mismatches
                .into_iter()
                .map(|m| MismatchReport {
                    field: m.field.to_string(),
                    artifact: m.artifact,
                    host: m.host,
                })
                .collect(),
            relocation_error,
            content_hash_ok,
        };

        let section_len = |name: &str| a.section_range(name).map_or(0, |r| r.len() as u64);
        let metadata_bytes = [
            ELF_WASMC_META,
            ELF_WASMC_FUNCS,
            ELF_WASMC_NAMES,
            ELF_WASMC_TRAPS,
            ELF_WASMC_STACKMAPS,
            ELF_WASMC_ADDRMAP,
        ]
        .iter()
        .map(|n| section_len(n))
        .sum();

        let ni = |n: u32, i: usize| (i as u64) < u64::from(n);
        let totals = Totals {
            file_bytes: a.bytes().len() as u64,
            code_bytes: text_len,
            function_code_bytes: funcs
                .iter()
                .filter_map(|f| f.code.as_ref())
                .map(|c| u64::from(c.range.len))
                .sum(),
            trampoline_code_bytes,
            metadata_bytes,
            data_bytes: section_len(ELF_WASMC_DATA),
            types: count(info.types.len()),
            imports: count(info.imports.len()),
            exports: count(info.exports.len()),
            functions: count(funcs.len()),
            imported_functions: info.num_imported_funcs,
            defined_functions: info.num_defined_funcs(),
            traps: count(traps.len()),
            stack_maps: count(stack_maps.len()),
            addrmap_entries: addrmap_report.entries,
            relocations: count(a.relocations().len()),
            data_segments: count(info.data.len()),
            element_segments: count(info.elements.len()),
        };

        Ok(Report {
            schema_version: SCHEMA_VERSION,
            file: FileReport {
                path: path.map(str::to_string),
                size: a.bytes().len() as u64,
            },
            header: HeaderReport {
                format_version: FORMAT_VERSION,
                compiler_version: h.compiler_version.clone(),
                triple: h.triple.clone(),
                arch: h.arch.clone(),
                os: h.os.clone(),
                pointer_bytes: h.pointer_bytes,
                cpu: h.cpu.clone(),
                cpu_features: h.cpu_features.clone(),
                opt_level: h.settings.opt_level.to_string(),
                memory_strategy: match h.settings.memory {
                    MemoryStrategy::Guard { reservation, guard } => {
                        MemoryStrategyReport::Guard { reservation, guard }
                    }
                    MemoryStrategy::Explicit => MemoryStrategyReport::Explicit,
                },
                cranelift_flags: h.settings.cranelift_flags.clone(),
                wasm_features: h.wasm_features.clone(),
                content_hash: hex(&h.content_hash),
            },
            host,
            sections: a
                .sections()
                .iter()
                .map(|s| SectionReport {
                    name: s.name.clone(),
                    offset: s.file_offset,
                    size: s.size,
                    align: s.align,
                })
                .collect(),
            module: ModuleReport {
                name: info.name.clone(),
                start: info.start,
            },
            types: info
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| TypeReport {
                    index: count(i),
                    params: t.params.iter().map(|v| v.to_string()).collect(),
                    results: t.results.iter().map(|v| v.to_string()).collect(),
                    signature: t.to_string(),
                })
                .collect(),
            imports: info
                .imports
                .iter()
                .enumerate()
                .map(|(i, imp)| ImportReport {
                    index: count(i),
                    module: imp.module.clone(),
                    field: imp.field.clone(),
                    kind: imp.ty.kind().to_string(),
                    ty: import_type_text(info, &imp.ty),
                })
                .collect(),
            exports: info
                .exports
                .iter()
                .map(|e| ExportReport {
                    name: e.name.clone(),
                    kind: e.kind.to_string(),
                    index: e.index,
                })
                .collect(),
            functions,
            trampolines,
            tables: info
                .tables
                .iter()
                .enumerate()
                .map(|(i, t)| TableReport {
                    index: count(i),
                    imported: ni(info.num_imported_tables, i),
                    elem_type: t.elem.to_string(),
                    min: t.min,
                    max: t.max,
                })
                .collect(),
            memories: info
                .memories
                .iter()
                .enumerate()
                .map(|(i, m)| MemoryReport {
                    index: count(i),
                    imported: ni(info.num_imported_memories, i),
                    min_pages: m.min,
                    max_pages: m.max,
                })
                .collect(),
            globals: info
                .globals
                .iter()
                .enumerate()
                .map(|(i, g)| GlobalReport {
                    index: count(i),
                    imported: ni(info.num_imported_globals, i),
                    ty: g.ty.ty.to_string(),
                    mutable: g.ty.mutable,
                    init: g.init.as_ref().map(const_expr_text),
                })
                .collect(),
            traps,
            stack_maps,
            addrmap: addrmap_report,
            relocations: a
                .relocations()
                .iter()
                .map(|r| RelocationReport {
                    section: r.section.clone(),
                    offset: r.offset,
                    kind: r.kind.clone(),
                    symbol: r.symbol.clone(),
                    addend: r.addend,
                })
                .collect(),
            data_segments: info
                .data
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let (kind, memory, offset_expr) = match &d.mode {
                        DataMode::Passive => ("passive", None, None),
                        DataMode::Active { memory, offset } => {
                            ("active", Some(*memory), Some(const_expr_text(offset)))
                        }
                    };
                    DataSegmentReport {
                        index: count(i),
                        kind: kind.into(),
                        memory,
                        offset_expr,
                        data_offset: d.offset,
                        size: d.len,
                    }
                })
                .collect(),
            element_segments: info
                .elements
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let (kind, table, offset_expr) = match &e.mode {
                        ElementMode::Passive => ("passive", None, None),
                        ElementMode::Declared => ("declared", None, None),
                        ElementMode::Active { table, offset } => {
                            ("active", Some(*table), Some(const_expr_text(offset)))
                        }
                    };
                    ElementSegmentReport {
                        index: count(i),
                        kind: kind.into(),
                        table,
                        offset_expr,
                        elem_type: e.elem_type.to_string(),
                        size: count(e.items.len()),
                        functions: match &e.items {
                            ElementItems::Functions(f) => Some(f.clone()),
                            ElementItems::Exprs(_) => None,
                        },
                    }
                })
                .collect(),
            totals,
        })
    }
}

/// Walks the raw address map (already checked: count matches length).
///
/// Layout (see `wasmc_format::addrmap`): `count`, `code[count]`, `wasm[count]`.
fn addrmap_summary(a: &ParsedArtifact<'_>, text_len: u64) -> Result<AddrMapReport, InspectError> {
    let data = a.section_data(ELF_WASMC_ADDRMAP).unwrap_or_default();
    let n = a.addr_map()?.len();
    let bad = |detail: String| table_error(ELF_WASMC_ADDRMAP, detail);
    let mut report = AddrMapReport {
        entries: count(n),
        mapped_entries: 0,
        mapped_code_bytes: 0,
        unmapped_code_bytes: 0,
        wasm_offset_min: None,
        wasm_offset_max: None,
    };
    let wasm_base = 4 + n * 4;
    let mut prev_code: Option<u64> = None;
    for i in 0..n {
        let code = read_u32_at(data, 4, i).ok_or_else(|| bad(format!("entry {i} truncated")))?;
        let wasm =
            read_u32_at(data, wasm_base, i).ok_or_else(|| bad(format!("entry {i} truncated")))?;
        let code = u64::from(code);
        if prev_code.is_some_and(|p| code < p) || code > text_len {
            return Err(bad(format!(
                "entry {i}: code offset {code:#x} out of order or past `.text`"
            )));
        }
        let end = match read_u32_at(data, 4, i + 1).filter(|_| i + 1 < n) {
            Some(next) => u64::from(next).min(text_len),
            None => text_len,
        };
        let span = end.saturating_sub(code);
        if wasm == NO_WASM_OFFSET {
            report.unmapped_code_bytes += span;
        } else {
            report.mapped_entries += 1;
            report.mapped_code_bytes += span;
            report.wasm_offset_min = Some(report.wasm_offset_min.map_or(wasm, |m| m.min(wasm)));
            report.wasm_offset_max = Some(report.wasm_offset_max.map_or(wasm, |m| m.max(wasm)));
        }
        prev_code = Some(code);
    }
    if let Some(first) = read_u32_at(data, 4, 0).filter(|_| n > 0) {
        report.unmapped_code_bytes += u64::from(first).min(text_len);
    } else {
        report.unmapped_code_bytes = text_len;
    }
    Ok(report)
}
