//! The human-readable rendering of a [`Report`]: a key/value block for the
//! header and aligned tables for everything else.
//!
//! Columns are padded to their widest cell; numeric columns are right-aligned.
//! Strings from the artifact (names, symbols, flags) are untrusted, so control
//! characters are escaped before they reach a terminal.

use super::report::{MemoryStrategyReport, Report};
use super::Parts;
use std::fmt::Write as _;
use wasmc_format::sections::{SectionKind, SECTIONS};

/// How a column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// Pad on the right.
    Left,
    /// Pad on the left (numbers).
    Right,
}

/// A table with a title line, a header row and aligned columns.
#[derive(Debug)]
pub(crate) struct Table {
    title: String,
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table titled `title` with the given columns.
    pub(crate) fn new(title: impl Into<String>, columns: &[(&'static str, Align)]) -> Table {
        Table {
            title: title.into(),
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends the table to `out`, followed by a blank line.
    pub(crate) fn render(&self, out: &mut String) {
        let _ = writeln!(out, "{} ({})", self.title, self.rows.len());
        if self.rows.is_empty() {
            out.push_str("  (none)\n\n");
            return;
        }
        let n = self.columns.len();
        let cell = |row: &[String], i: usize| sanitize(row.get(i).map_or("", String::as_str));
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| (0..n).map(|i| cell(r, i)).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.0.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, cells: &[String]| {
            let mut s = String::from(" ");
            for (i, ((c, (_, align)), w)) in
                cells.iter().zip(&self.columns).zip(&widths).enumerate()
            {
                s.push(' ');
                let pad = w.saturating_sub(c.chars().count());
                let last = i + 1 == n;
                match align {
                    Align::Left if last => s.push_str(c),
                    Align::Left => {
                        s.push_str(c);
                        s.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(c);
                    }
                }
                if !last {
                    s.push(' ');
                }
            }
            out.push_str(s.trim_end());
            out.push('\n');
        };
        let header: Vec<String> = self.columns.iter().map(|c| c.0.to_string()).collect();
        line(out, &header);
        for r in &rows {
            line(out, r);
        }
        out.push('\n');
    }
}

/// Escapes what could make an artifact's (untrusted) strings forge or hide
/// output: control characters (newlines, carriage returns, terminal escape
/// sequences), the Unicode line and paragraph separators, and the bidi
/// overrides and isolates that reorder how a line reads. A backslash is
/// escaped too, so that a name spelling `\n` never reads as an escaped newline.
pub(crate) fn sanitize(s: &str) -> String {
    fn needs_escape(c: char) -> bool {
        c.is_control()
            || matches!(
                c,
                '\\'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    }
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    s.chars()
        .flat_map(|c| {
            let esc: Vec<char> = if needs_escape(c) {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

fn hex(v: impl Into<u64>) -> String {
    format!("{:#x}", v.into())
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn opt_hex(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), hex)
}

/// Wraps a list of words at `width` columns, indenting continuation lines.
fn wrap(words: &[String], indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for (i, w) in words.iter().enumerate() {
        let w = sanitize(w);
        let piece = if i + 1 < words.len() {
            format!("{w},")
        } else {
            w
        };
        if i > 0 {
            if col + 1 + piece.len() > width {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = indent;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        col += piece.len();
        out.push_str(&piece);
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

/// Cranelift flags shown in the text header: those that change the ABI, the
/// frame layout or the safety of the generated code. `--json` lists them all.
const CODEGEN_FLAGS: &[&str] = &[
    "preserve_frame_pointers",
    "enable_probestack",
    "probestack_strategy",
    "enable_nan_canonicalization",
    "enable_heap_access_spectre_mitigation",
    "enable_table_access_spectre_mitigation",
    "enable_pinned_reg",
    "is_pic",
    "tls_model",
    "libcall_call_conv",
    "unwind_info",
];

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key:<16}{value}");
}

/// Renders the header block: versions, target, what the code depends on and
/// whether this host can load it.
fn header(r: &Report, out: &mut String) {
    let h = &r.header;
    out.push_str("Artifact\n");
    let file = match &r.file.path {
        Some(p) => format!("{} ({} bytes)", sanitize(p), r.file.size),
        None => format!("{} bytes", r.file.size),
    };
    kv(out, "file", &file);
    if let Some(name) = &r.module.name {
        kv(out, "module", &sanitize(name));
    }
    kv(
        out,
        "format",
        &format!(
            "wasmc artifact v{}, written by wasmc {}",
            h.format_version,
            sanitize(&h.compiler_version)
        ),
    );
    kv(
        out,
        "target",
        &format!(
            "{} ({}, {}, {}-bit)",
            sanitize(&h.triple),
            sanitize(&h.arch),
            sanitize(&h.os),
            u32::from(h.pointer_bytes) * 8
        ),
    );
    kv(
        out,
        "cpu",
        &format!(
            "{}: {}",
            sanitize(&h.cpu),
            wrap(&h.cpu_features, 18 + h.cpu.len() + 2, 100)
        ),
    );
    let memory = match h.memory_strategy {
        MemoryStrategyReport::Guard { reservation, guard } => format!(
            "guard pages (reservation {}, guard {})",
            bytes_human(reservation),
            bytes_human(guard)
        ),
        MemoryStrategyReport::Explicit => "explicit bounds checks".to_string(),
        MemoryStrategyReport::Unknown { tag } => format!("unknown strategy (tag {tag})"),
    };
    kv(out, "memory", &memory);
    kv(out, "interruption", &sanitize(&h.interruption));
    kv(out, "opt level", &sanitize(&h.opt_level));
    let (shown, hidden): (Vec<String>, Vec<String>) =
        h.cranelift_flags.iter().cloned().partition(|f| {
            let name = f.split('=').next().unwrap_or("");
            CODEGEN_FLAGS.contains(&name)
        });
    let mut flags = wrap(&shown, 18, 100);
    if !hidden.is_empty() {
        let _ = write!(flags, "\n{:18}(+{} more flags in --json)", "", hidden.len());
    }
    kv(out, "cranelift", &flags);
    let features = if h.wasm_features.is_empty() {
        "none beyond WebAssembly 1.0".to_string()
    } else {
        wrap(&h.wasm_features, 18, 100)
    };
    kv(out, "wasm features", &features);
    kv(out, "content hash", &format!("blake3:{}", h.content_hash));
    let host = &r.host;
    let sig = match (&host.signature.key_id, &host.signature.error) {
        (_, Some(e)) => format!("malformed: {}", sanitize(e)),
        (Some(id), None) => format!("signed by key {id}"),
        (None, None) => "unsigned".to_string(),
    };
    kv(out, "signature", &sig);
    if host.loadable {
        kv(
            out,
            "this host",
            &format!("loadable ({}, {})", host.arch, host.os),
        );
    } else {
        kv(
            out,
            "this host",
            &format!("NOT loadable ({}, {}):", host.arch, host.os),
        );
        for p in host.problems() {
            let _ = writeln!(out, "{:18}- {}", "", sanitize(&p));
        }
    }
    out.push('\n');
}

fn bytes_human(n: u64) -> String {
    // Exact multiples only (trailing zero bits), so nothing is rounded.
    if n != 0 && n.trailing_zeros() >= 30 {
        format!("{} GiB", n >> 30)
    } else if n != 0 && n.trailing_zeros() >= 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n:#x}")
    }
}

use Align::{Left as L, Right as R};

fn sections(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Sections",
        &[("name", L), ("offset", R), ("size", R), ("align", R)],
    );
    for s in r.sections.iter().filter(|s| !s.name.is_empty()) {
        t.row(vec![
            s.name.clone(),
            hex(s.offset),
            s.size.to_string(),
            s.align.to_string(),
        ]);
    }
    t.render(out);
}

fn module_tables(r: &Report, out: &mut String) {
    let mut t = Table::new("Types", &[("index", R), ("signature", L)]);
    for ty in &r.types {
        t.row(vec![ty.index.to_string(), ty.signature.clone()]);
    }
    t.render(out);

    let mut t = Table::new(
        "Imports",
        &[
            ("index", R),
            ("module", L),
            ("field", L),
            ("kind", L),
            ("type", L),
        ],
    );
    for i in &r.imports {
        t.row(vec![
            i.index.to_string(),
            i.module.clone(),
            i.field.clone(),
            i.kind.clone(),
            i.ty.clone(),
        ]);
    }
    t.render(out);

    let mut t = Table::new("Exports", &[("name", L), ("kind", L), ("index", R)]);
    for e in &r.exports {
        t.row(vec![e.name.clone(), e.kind.clone(), e.index.to_string()]);
    }
    t.render(out);

    let imported = |b: bool| if b { "import" } else { "defined" }.to_string();
    if !r.tables.is_empty() || !r.memories.is_empty() || !r.globals.is_empty() {
        let mut t = Table::new(
            "Tables, memories and globals",
            &[("kind", L), ("index", R), ("origin", L), ("type", L)],
        );
        let max = |m: Option<u64>| m.map_or_else(String::new, |m| format!(" max {m}"));
        for x in &r.tables {
            t.row(vec![
                "table".into(),
                x.index.to_string(),
                imported(x.imported),
                format!(
                    "{}{}, min {}{} elements",
                    if x.index_type == "i64" { "i64 " } else { "" },
                    x.elem_type,
                    x.min,
                    max(x.max)
                ),
            ]);
        }
        for m in &r.memories {
            t.row(vec![
                "memory".into(),
                m.index.to_string(),
                imported(m.imported),
                format!(
                    "{}min {}{} pages",
                    if m.index_type == "i64" { "i64, " } else { "" },
                    m.min_pages,
                    max(m.max_pages)
                ),
            ]);
        }
        for g in &r.globals {
            let mut ty = if g.mutable {
                format!("mut {}", g.ty)
            } else {
                g.ty.clone()
            };
            if let Some(init) = &g.init {
                let _ = write!(ty, " = {init}");
            }
            t.row(vec![
                "global".into(),
                g.index.to_string(),
                imported(g.imported),
                ty,
            ]);
        }
        t.render(out);
    }
}

fn functions(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Functions",
        &[
            ("index", R),
            ("name", L),
            ("symbol", L),
            ("offset", R),
            ("size", R),
            ("traps", R),
            ("safepoints", R),
            ("signature", L),
        ],
    );
    for f in &r.functions {
        let name = match (&f.name, f.exports.first()) {
            (Some(n), _) => n.clone(),
            (None, Some(e)) => format!("(export {e})"),
            (None, None) => "-".into(),
        };
        let symbol = if f.imported {
            "(import)".to_string()
        } else {
            opt(&f.symbol)
        };
        t.row(vec![
            f.index.to_string(),
            name,
            symbol,
            opt_hex(f.code_offset),
            opt(&f.code_size),
            f.traps.to_string(),
            f.safepoints.to_string(),
            f.signature.clone(),
        ]);
    }
    t.render(out);
}

fn traps(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Traps",
        &[
            ("offset", R),
            ("location", L),
            ("kind", L),
            ("wasm", R),
            ("message", L),
        ],
    );
    for x in &r.traps {
        t.row(vec![
            hex(x.code_offset),
            x.location.label.clone(),
            x.kind.clone(),
            opt_hex(x.wasm_offset),
            x.message.clone(),
        ]);
    }
    t.render(out);
}

fn stack_maps(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Stack maps",
        &[
            ("return", R),
            ("location", L),
            ("frame", R),
            ("slots", R),
            ("externref slots (SP+offset)", L),
        ],
    );
    for s in &r.stack_maps {
        let slots: Vec<String> = s.slots.iter().map(|o| format!("sp+{o:#x}")).collect();
        t.row(vec![
            hex(s.return_offset),
            s.location.label.clone(),
            s.frame_span.to_string(),
            s.slots.len().to_string(),
            if slots.is_empty() {
                "-".into()
            } else {
                slots.join(" ")
            },
        ]);
    }
    t.render(out);
}

fn addrmap(r: &Report, out: &mut String) {
    let a = &r.addrmap;
    out.push_str("Address map\n");
    kv(
        out,
        "entries",
        &format!("{} ({} with a Wasm offset)", a.entries, a.mapped_entries),
    );
    kv(
        out,
        "code bytes",
        &format!(
            "{} mapped to Wasm, {} without Wasm origin",
            a.mapped_code_bytes, a.unmapped_code_bytes
        ),
    );
    if let (Some(lo), Some(hi)) = (a.wasm_offset_min, a.wasm_offset_max) {
        kv(out, "wasm offsets", &format!("{lo:#x}..={hi:#x}"));
    }
    out.push('\n');
}

fn relocations(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Relocations",
        &[
            ("section", L),
            ("offset", R),
            ("kind", L),
            ("symbol", L),
            ("addend", R),
        ],
    );
    for x in &r.relocations {
        t.row(vec![
            x.section.clone(),
            hex(x.offset),
            x.kind.clone(),
            x.symbol.clone(),
            x.addend.to_string(),
        ]);
    }
    t.render(out);
}

fn segments(r: &Report, out: &mut String) {
    let mut t = Table::new(
        "Data segments",
        &[
            ("index", R),
            ("kind", L),
            ("target", L),
            ("size", R),
            ("data offset", R),
            ("init", L),
        ],
    );
    for d in &r.data_segments {
        let target = match (d.memory, &d.offset_expr) {
            (Some(m), Some(e)) => format!("memory {m} at ({e})"),
            _ if d.init.as_deref() == Some("image") => "in a memory image".into(),
            _ => "-".into(),
        };
        t.row(vec![
            d.index.to_string(),
            d.kind.clone(),
            target,
            d.size.map_or_else(|| "-".into(), |s| s.to_string()),
            hex(d.data_offset),
            d.init.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.render(out);

    let mut t = Table::new(
        "Memory images (mapped copy-on-write at instantiation)",
        &[
            ("memory", R),
            ("memory offset", R),
            ("size", R),
            ("data offset", R),
        ],
    );
    for m in &r.memory_images {
        t.row(vec![
            m.memory.to_string(),
            format!("{:#x}", m.memory_offset),
            m.size.to_string(),
            format!("{:#x}", m.data_offset),
        ]);
    }
    t.render(out);

    let mut t = Table::new(
        "Element segments",
        &[
            ("index", R),
            ("kind", L),
            ("target", L),
            ("size", R),
            ("type", L),
            ("items", L),
        ],
    );
    for e in &r.element_segments {
        let target = match (e.table, &e.offset_expr) {
            (Some(tb), Some(x)) => format!("table {tb} at ({x})"),
            _ => "-".into(),
        };
        let items = match &e.functions {
            Some(f) if f.len() <= 8 => f
                .iter()
                .map(|i| format!("func {i}"))
                .collect::<Vec<_>>()
                .join(" "),
            Some(f) => format!("{} functions", f.len()),
            None => "expressions".into(),
        };
        t.row(vec![
            e.index.to_string(),
            e.kind.clone(),
            target,
            e.size.to_string(),
            e.elem_type.clone(),
            items,
        ]);
    }
    t.render(out);
}

fn totals(r: &Report, out: &mut String) {
    let t = &r.totals;
    out.push_str("Totals\n");
    kv(
        out,
        "code",
        &format!(
            "{} bytes (.text): {} in functions, {} in trampolines",
            t.code_bytes, t.function_code_bytes, t.trampoline_code_bytes
        ),
    );
    kv(
        out,
        "metadata",
        &format!(
            "{} bytes ({})",
            t.metadata_bytes,
            section_names(SectionKind::Metadata)
        ),
    );
    kv(
        out,
        "data",
        &format!(
            "{} bytes ({})",
            t.data_bytes,
            section_names(SectionKind::Data)
        ),
    );
    kv(out, "file", &format!("{} bytes", t.file_bytes));
    kv(
        out,
        "functions",
        &format!(
            "{} ({} imported, {} defined)",
            t.functions, t.imported_functions, t.defined_functions
        ),
    );
    kv(
        out,
        "counts",
        &format!(
            "{} types, {} imports, {} exports, {} traps, {} stack maps, {} relocations",
            t.types, t.imports, t.exports, t.traps, t.stack_maps, t.relocations
        ),
    );
    kv(
        out,
        "segments",
        &format!("{} data, {} element", t.data_segments, t.element_segments),
    );
}

/// Renders the parts of `r` selected by `parts` as text.
pub fn render(r: &Report, parts: &Parts) -> String {
    let mut out = String::new();
    if parts.all() {
        header(r, &mut out);
        sections(r, &mut out);
        module_tables(r, &mut out);
    }
    if parts.all() || parts.functions {
        functions(r, &mut out);
    }
    if parts.all() || parts.traps {
        traps(r, &mut out);
    }
    if parts.all() || parts.stack_maps {
        stack_maps(r, &mut out);
    }
    if parts.all() {
        addrmap(r, &mut out);
    }
    if parts.all() || parts.relocs {
        relocations(r, &mut out);
    }
    if parts.all() {
        segments(r, &mut out);
        totals(r, &mut out);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The names of the sections of one kind, in table order: what a total of
/// that kind sums.
fn section_names(kind: SectionKind) -> String {
    SECTIONS
        .iter()
        .filter(|s| s.kind == kind)
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new("T", &[("a", L), ("num", R), ("z", L)]);
        t.row(vec!["long name".into(), "7".into(), "x".into()]);
        t.row(vec!["s".into(), "12345".into(), "y".into()]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(
            out,
            "T (2)\n  a            num  z\n  long name      7  x\n  s          12345  y\n\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(sanitize("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(sanitize("plain"), "plain");
        // A literal backslash-n must not read like an escaped newline, and
        // separators and bidi overrides are shown as escapes.
        assert_eq!(sanitize("a\\nb"), "a\\\\nb");
        assert_eq!(sanitize("a\u{2028}b\u{202e}c"), "a\\u{2028}b\\u{202e}c");
    }
}
