//! `wasmc inspect`: what an artifact holds, for people and for scripts.
//!
//! The pipeline is: [`ParsedArtifact::parse`] (ELF container, header and
//! `ModuleInfo`, validated as untrusted input, no host checks) →
//! [`Report::build`] (one serializable value with every fact, the per-PC
//! tables walked and cross-checked) → a renderer: aligned text tables
//! ([`render_text`]) or one JSON document ([`render_json`], schema in
//! `docs/inspect-json.md`). `--disas` adds [`disas::disassemble`];
//! `--check` reduces the report to "loadable here or not" ([`check`]).
//!
//! Nothing here panics on any input: every failure is an [`InspectError`]
//! that names the section and entry at fault.
//!
//! - `report`: the report types and how they are computed.
//! - `text`: the table renderer.
//! - `disas`: capstone disassembly with trap sites and safepoints marked.
//! - `cli`: the clap arguments and the command itself.

pub mod cli;
pub mod disas;
mod report;
mod text;

pub use disas::Disassembly;
pub use report::*;

use wasmc_format::FormatError;
use wasmc_loader::artifact::ParsedArtifact;
use wasmc_loader::LoadError;

/// Why an artifact could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The container or the metadata is malformed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A per-PC table entry is malformed.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Disassembly is not possible.
    #[error("disassembly: {0}")]
    Disas(String),
    /// `--disas FUNC` named nothing in the artifact.
    #[error(
        "no function or trampoline `{0}` (give a function index, a name, an export name, a symbol or a builtin name)"
    )]
    NoSuchFunction(String),
    /// The file is not an artifact at all.
    #[error("not a wasmc artifact: {0}")]
    NotArtifact(String),
    /// The file ends before the structures its ELF header describes.
    #[error("truncated artifact: {0}")]
    Truncated(String),
    /// The report could not be serialized.
    #[error("cannot write JSON: {0}")]
    Json(String),
}

/// Which parts of the report to show. All false means everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parts {
    /// The functions table.
    pub functions: bool,
    /// The trap table.
    pub traps: bool,
    /// The stack maps.
    pub stack_maps: bool,
    /// The relocations.
    pub relocs: bool,
}

impl Parts {
    /// True when no part was selected, i.e. show everything.
    pub fn all(&self) -> bool {
        !(self.functions || self.traps || self.stack_maps || self.relocs)
    }
}

/// What to inspect and how to show it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Parts to show.
    pub parts: Parts,
    /// Emit JSON instead of text.
    pub json: bool,
    /// Disassemble: `Some(None)` for every function, `Some(Some(name))` for
    /// one function or trampoline. When set with no part selected, only the
    /// disassembly is shown.
    pub disas: Option<Option<String>>,
}

/// Parses `bytes` and builds the full report. `path` is recorded as given.
pub fn inspect(bytes: &[u8], path: Option<&str>) -> Result<Report, InspectError> {
    let a = parse(bytes)?;
    Report::build(&a, path)
}

/// [`ParsedArtifact::parse`], after a look at the first bytes so that the
/// commonest mistakes (a `.wasm`/`.wat` file, a truncated copy) get a message
/// that says so rather than an ELF parser's.
pub fn parse(bytes: &[u8]) -> Result<ParsedArtifact<'_>, InspectError> {
    if !bytes.starts_with(b"\x7fELF") {
        let what = if bytes.starts_with(b"\0asm") {
            "this is a WebAssembly binary; compile it with `wasmc compile` first".to_string()
        } else if bytes.trim_ascii_start().starts_with(b"(") || bytes.starts_with(b";;") {
            "this looks like WebAssembly text; compile it with `wasmc compile` first".to_string()
        } else if bytes.len() < 4 {
            format!("the file is only {} bytes long", bytes.len())
        } else {
            "not an ELF file (no \\x7fELF magic)".to_string()
        };
        return Err(InspectError::NotArtifact(what));
    }
    // ELF64 header: e_shoff at 0x28 (u64), e_shentsize at 0x3a and e_shnum at
    // 0x3c (u16), little-endian for every target wasmc writes.
    let field = |at: usize, n: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(n)?)?;
        Some(b.iter().rev().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
    };
    if bytes.get(4) == Some(&2) && bytes.get(5) == Some(&1) {
        match (field(0x28, 8), field(0x3a, 2), field(0x3c, 2)) {
            (Some(shoff), Some(entsize), Some(num)) => {
                let end = shoff.saturating_add(entsize.saturating_mul(num));
                if end > bytes.len() as u64 && shoff <= (1 << 40) {
                    return Err(InspectError::Truncated(format!(
                        "the ELF section headers end at byte {end:#x} but the file has only {:#x} bytes",
                        bytes.len()
                    )));
                }
            }
            _ => {
                return Err(InspectError::Truncated(format!(
                    "the file is {} bytes, shorter than an ELF64 header",
                    bytes.len()
                )))
            }
        }
    }
    Ok(ParsedArtifact::parse(bytes)?)
}

/// Renders the parts of a report selected by `parts` as aligned text tables.
pub fn render_text(report: &Report, parts: &Parts) -> String {
    text::render(report, parts)
}

/// The JSON document: the report's fields in schema order, each present only
/// when selected.
#[derive(serde::Serialize)]
struct JsonDoc<'a> {
    schema_version: u32,
    file: &'a FileReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<&'a HeaderReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a HostReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sections: Option<&'a [SectionReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a ModuleReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    types: Option<&'a [TypeReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    imports: Option<&'a [ImportReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exports: Option<&'a [ExportReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    functions: Option<&'a [FunctionReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trampolines: Option<&'a [TrampolineReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tables: Option<&'a [TableReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memories: Option<&'a [MemoryReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    globals: Option<&'a [GlobalReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traps: Option<&'a [TrapReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack_maps: Option<&'a [StackMapReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addrmap: Option<&'a AddrMapReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relocations: Option<&'a [RelocationReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_segments: Option<&'a [DataSegmentReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_images: Option<&'a [MemoryImageReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    element_segments: Option<&'a [ElementSegmentReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    totals: Option<&'a Totals>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disassembly: Option<&'a Disassembly>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature_check: Option<&'a serde_json::Value>,
}

/// Renders the selected parts of a report (and a disassembly, if any) as one
/// JSON document. With no part selected and no disassembly, every top-level
/// key is present; otherwise `schema_version`, `file` and the selected keys.
pub fn render_json(
    report: &Report,
    parts: &Parts,
    disassembly: Option<&Disassembly>,
) -> Result<String, InspectError> {
    render_json_checked(report, parts, disassembly, None)
}

/// [`render_json`] with `inspect --key`'s `signature_check` object as the
/// last key (the typed document keeps the schema's key order, which a
/// `serde_json::Value` built after the fact would sort).
pub fn render_json_checked(
    report: &Report,
    parts: &Parts,
    disassembly: Option<&Disassembly>,
    signature_check: Option<&serde_json::Value>,
) -> Result<String, InspectError> {
    let all = parts.all() && disassembly.is_none();
    let r = report;
    let when = |on: bool| on || all;
    let doc = JsonDoc {
        schema_version: r.schema_version,
        file: &r.file,
        header: all.then_some(&r.header),
        host: all.then_some(&r.host),
        sections: all.then_some(&r.sections[..]),
        module: all.then_some(&r.module),
        types: all.then_some(&r.types[..]),
        imports: all.then_some(&r.imports[..]),
        exports: all.then_some(&r.exports[..]),
        functions: when(parts.functions).then_some(&r.functions[..]),
        trampolines: all.then_some(&r.trampolines[..]),
        tables: all.then_some(&r.tables[..]),
        memories: all.then_some(&r.memories[..]),
        globals: all.then_some(&r.globals[..]),
        traps: when(parts.traps).then_some(&r.traps[..]),
        stack_maps: when(parts.stack_maps).then_some(&r.stack_maps[..]),
        addrmap: all.then_some(&r.addrmap),
        relocations: when(parts.relocs).then_some(&r.relocations[..]),
        data_segments: all.then_some(&r.data_segments[..]),
        memory_images: all.then_some(&r.memory_images[..]),
        element_segments: all.then_some(&r.element_segments[..]),
        totals: all.then_some(&r.totals),
        disassembly,
        signature_check,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).map_err(|e| InspectError::Json(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// Everything `wasmc inspect` prints for `opts`, as one string.
pub fn render(bytes: &[u8], path: Option<&str>, opts: &Options) -> Result<String, InspectError> {
    render_checked(bytes, path, opts, None)
}

/// [`render`], with `signature_check` added to a JSON document (see
/// [`render_json_checked`]); text ignores it.
pub fn render_checked(
    bytes: &[u8],
    path: Option<&str>,
    opts: &Options,
    signature_check: Option<&serde_json::Value>,
) -> Result<String, InspectError> {
    let a = parse(bytes)?;
    let report = Report::build(&a, path)?;
    let disassembly = match &opts.disas {
        Some(sel) => Some(disas::disassemble(&a, &report, sel.as_deref())?),
        None => None,
    };
    if opts.json {
        return render_json_checked(&report, &opts.parts, disassembly.as_ref(), signature_check);
    }
    let mut out = String::new();
    if !opts.parts.all() || disassembly.is_none() {
        out.push_str(&render_text(&report, &opts.parts));
        out.push('\n');
    }
    if let Some(d) = &disassembly {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&disas::render(d));
        out.push('\n');
    }
    Ok(out)
}

/// Validates `bytes` as fully as `inspect` does and checks it against this
/// host: every reason the artifact cannot be loaded here (host mismatches,
/// relocations the loader refuses, a content hash that does not match).
/// Empty when it can be loaded. Malformed artifacts are an `Err`.
pub fn check(bytes: &[u8]) -> Result<HostReport, InspectError> {
    Ok(inspect(bytes, None)?.host)
}
