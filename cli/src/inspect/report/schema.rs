//! The report's schema: plain serializable data, one struct per part of
//! `wasmc inspect`'s output. The JSON field names and meanings are the stable
//! schema documented in `docs/inspect-json.md` (version [`SCHEMA_VERSION`]):
//! any change to a field here must be reflected there, and a removal or
//! change of meaning bumps the version.

use serde::Serialize;

/// Version of the JSON schema described in `docs/inspect-json.md`. Adding a
/// field keeps the version; removing or changing the meaning of one bumps it.
pub const SCHEMA_VERSION: u32 = 4;

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
    /// Memory images.
    pub memory_images: Vec<MemoryImageReport>,
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
    /// Interruption checks compiled in: `none`, `epochs`, `fuel` or
    /// `epochs+fuel`.
    pub interruption: String,
    /// Every Cranelift shared flag as `name=value`.
    pub cranelift_flags: Vec<String>,
    /// Wasm features (proposals) the module uses, `wasmc_format::WasmFeatures`
    /// names; `unknown-bit-N` for bits this build does not know.
    pub wasm_features: Vec<String>,
    /// BLAKE3 content hash recorded in the header, lowercase hex.
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
    /// A tag this wasmc does not know (the loader refuses the artifact).
    Unknown {
        /// The header's tag.
        tag: u32,
    },
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
    /// Why the loader refuses the header's memory strategy ("artifact names
    /// an unknown memory strategy ...", "guard size mismatch ..."); the same
    /// check the loader runs.
    pub sandbox_error: Option<String>,
    /// The artifact's signature slot.
    pub signature: SignatureReport,
}

/// Whether an artifact is signed (`wasmc sign`, `compile --sign`); whether
/// the signature verifies needs a key (`inspect --key KEY.pub`).
#[derive(Clone, Debug, Serialize)]
pub struct SignatureReport {
    /// True when the `.wasmc.sig` slot holds a signature.
    pub signed: bool,
    /// The signer's key id (first 8 bytes of BLAKE3 of the public key, hex).
    pub key_id: Option<String>,
    /// Why the slot could not be read, if it is malformed.
    pub error: Option<String>,
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
                "artifact is damaged: content hash mismatch (modified after compilation)"
                    .to_string(),
            );
        }
        if let Some(e) = &self.sandbox_error {
            out.push(e.clone());
        }
        if let Some(e) = &self.signature.error {
            out.push(e.clone());
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
    pub max: Option<u64>,
    /// `i32` or `i64` (memory64's 64-bit tables): the type of indices.
    pub index_type: &'static str,
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
    /// `i32` or `i64` (memory64): the type of addresses.
    pub index_type: &'static str,
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
    /// Memory index (active only; `None` for a segment applied by a memory
    /// image, which has no record).
    pub memory: Option<u32>,
    /// Offset expression as text (active only; `None` for a segment applied
    /// by a memory image).
    pub offset_expr: Option<String>,
    /// Offset of the bytes in `.wasmc.data` (0 for a segment in an image:
    /// its bytes are only in the image).
    pub data_offset: u32,
    /// Size in bytes; `None` for a segment applied by a memory image (no
    /// record of it is stored).
    pub size: Option<u32>,
    /// Active only: how instantiation applies it: `image` (a memory image,
    /// mapped copy-on-write), `copy`, or `copy: <why>` for the first segment
    /// not in an image (`offset reads a global`, `imported memory`, `out of
    /// bounds of the initial memory`) and every segment whose offset reads a
    /// global.
    pub init: Option<String>,
}

/// One memory image: a run of a memory's initial contents in `.wasmc.data`.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryImageReport {
    /// Memory index.
    pub memory: u32,
    /// Byte offset in the memory.
    pub memory_offset: u64,
    /// Byte offset in `.wasmc.data`.
    pub data_offset: u64,
    /// Size in bytes (whole pages).
    pub size: u64,
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
