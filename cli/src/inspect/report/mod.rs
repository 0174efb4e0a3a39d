//! The inspection report: one serializable value describing everything an
//! artifact holds, built from a [`ParsedArtifact`].
//!
//! [`Report::build`] reads the parsed metadata and walks the per-PC tables
//! once. The report is plain data (serde, [`schema`]), so the text renderer
//! (`inspect::text`) and `--json` show exactly the same facts.
//!
//! Everything comes from an untrusted file. [`Report::build`] first checks
//! every table entry by entry with format's validators
//! (`ParsedArtifact::validate_tables`: the loader's own checks at parse, plus
//! the address map), so a wrong entry is an error naming the section and the
//! entry before any of this runs; every offset is still looked up through
//! checked readers, never indexed.
//!
//! - [`schema`]: the report types (the JSON schema).
//! - `code_map`: `.text` offset -> function or trampoline.
//! - `file`: header, host check, ELF sections and relocations.
//! - `module`: types, imports, exports, tables, memories, globals, segments.
//! - `functions`: the function index space and the trampolines.
//! - `code_tables`: the trap table, the stack maps, the address map.

mod code_map;
mod code_tables;
mod file;
mod functions;
mod module;
pub mod schema;

pub(crate) use code_map::{decode_funcs, CodeMap};
pub use schema::*;

use super::InspectError;
use wasmc_format::sections::{SectionId, SectionKind, SECTIONS};
use wasmc_loader::artifact::ParsedArtifact;

/// `n` as a `u32` count, saturating (counts come from in-memory vectors).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Report {
    /// Builds the report for a parsed artifact. `path` is shown as given.
    pub fn build(a: &ParsedArtifact<'_>, path: Option<&str>) -> Result<Report, InspectError> {
        // `parse` validated the tables the runtime relies on; this adds the
        // address map, whose summary below assumes code order.
        a.validate_tables()?;
        let info = a.info();
        let funcs = decode_funcs(a)?;
        let code_map = CodeMap::new(info, &funcs);

        let traps = code_tables::traps(a, &code_map)?;
        let stack_maps = code_tables::stack_maps(a, &code_map)?;
        let addrmap = code_tables::addrmap_summary(a)?;
        let functions = functions::functions(info, &funcs, &traps, &stack_maps);
        let (trampolines, trampoline_code_bytes) = functions::trampolines(info);

        let section_len = |id: SectionId| a.section(id).len() as u64;
        let sections_of = |kind: SectionKind| -> u64 {
            SECTIONS
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| section_len(s.id))
                .sum()
        };
        let totals = Totals {
            file_bytes: a.bytes().len() as u64,
            code_bytes: section_len(SectionId::Text),
            function_code_bytes: funcs
                .iter()
                .filter_map(|f| f.code.as_ref())
                .map(|c| u64::from(c.range.len))
                .sum(),
            trampoline_code_bytes,
            metadata_bytes: sections_of(SectionKind::Metadata),
            data_bytes: sections_of(SectionKind::Data),
            types: count(info.types.len()),
            imports: count(info.imports.len()),
            exports: count(info.exports.len()),
            functions: count(funcs.len()),
            imported_functions: info.num_imported_funcs,
            defined_functions: info.num_defined_funcs(),
            traps: count(traps.len()),
            stack_maps: count(stack_maps.len()),
            addrmap_entries: addrmap.entries,
            relocations: count(a.relocations().len()),
            data_segments: info.num_data_segments,
            element_segments: count(info.elements.len()),
        };

        Ok(Report {
            schema_version: SCHEMA_VERSION,
            file: FileReport {
                path: path.map(str::to_string),
                size: a.bytes().len() as u64,
            },
            header: file::header(a.header()),
            host: file::host(a),
            sections: file::sections(a),
            module: ModuleReport {
                name: info.name.clone(),
                start: info.start,
            },
            types: module::types(info),
            imports: module::imports(info),
            exports: module::exports(info),
            functions,
            trampolines,
            tables: module::tables(info),
            memories: module::memories(info),
            globals: module::globals(info),
            traps,
            stack_maps,
            addrmap,
            relocations: file::relocations(a),
            data_segments: module::data_segments(info, &a.segments()?),
            memory_images: module::memory_images(info),
            element_segments: module::element_segments(info),
            totals,
        })
    }
}
