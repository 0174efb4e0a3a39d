//! Names of the ELF sections and symbols of a wasmc artifact.
//!
//! An artifact is an ELF64 relocatable object (`ET_REL`):
//!
//! | section            | alignment | contents |
//! |--------------------|-----------|----------|
//! | `.text`            | page      | Wasm functions, then trampolines; every intra-module call already resolved |
//! | `.wasmc.meta`      | 8         | [`crate::header`] prefix, then bincode [`crate::ModuleInfo`] |
//! | `.wasmc.funcs`     | 4         | [`crate::funcs`] records, one per function |
//! | `.wasmc.names`     | 4         | [`crate::funcs`] name table (empty: no names) |
//! | `.wasmc.traps`     | 4         | [`crate::trap`] table |
//! | `.wasmc.stackmaps` | 4         | [`crate::stack_map`] table |
//! | `.wasmc.addrmap`   | 4         | [`crate::addrmap`] table |
//! | `.wasmc.data`      | page      | data-segment bytes; [`crate::DataSegment::range`] points into it |
//!
//! Code offsets in every table are byte offsets from the start of `.text`.
//! The compiler emits no relocations against `.text`: all calls between Wasm
//! functions and trampolines are PC-relative and resolved at compile time, and
//! runtime services are reached through the VMContext. A loader therefore
//! rejects an artifact whose `.text` carries relocations.

/// Module metadata: header and `ModuleInfo`.
pub const ELF_WASMC_META: &str = ".wasmc.meta";
/// Per-function records (type, code range, Wasm offset).
pub const ELF_WASMC_FUNCS: &str = ".wasmc.funcs";
/// Function names.
pub const ELF_WASMC_NAMES: &str = ".wasmc.names";
/// Trap table.
pub const ELF_WASMC_TRAPS: &str = ".wasmc.traps";
/// Stack maps for the externref collector.
pub const ELF_WASMC_STACKMAPS: &str = ".wasmc.stackmaps";
/// Code offset to Wasm bytecode offset map.
pub const ELF_WASMC_ADDRMAP: &str = ".wasmc.addrmap";
/// Data-segment bytes.
pub const ELF_WASMC_DATA: &str = ".wasmc.data";
/// The code section.
pub const ELF_TEXT: &str = ".text";

/// All wasmc custom sections, in the order the compiler writes them.
pub const WASMC_SECTIONS: [&str; 7] = [
    ELF_WASMC_META,
    ELF_WASMC_FUNCS,
    ELF_WASMC_NAMES,
    ELF_WASMC_TRAPS,
    ELF_WASMC_STACKMAPS,
    ELF_WASMC_ADDRMAP,
    ELF_WASMC_DATA,
];

/// Alignment of `.text` and `.wasmc.data`.
pub const PAGE_ALIGN: u64 = 4096;

/// Symbol of a defined Wasm function: its name-section name when it has one,
/// else `wasm_func_<index>`. Names are informational (ELF local symbols may
/// repeat); the loader finds functions through [`crate::funcs::FuncTable`].
pub fn func_symbol(index: u32, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("wasm[{index}]::{n}"),
        _ => format!("wasm_func_{index}"),
    }
}

/// Symbol of the host-to-Wasm entry trampoline for a signature.
pub fn entry_trampoline_symbol(sig: u32) -> String {
    format!("wasmc_entry_trampoline_{sig}")
}

/// Symbol of the Wasm-to-host trampoline for a signature.
pub fn host_trampoline_symbol(sig: u32) -> String {
    format!("wasmc_host_trampoline_{sig}")
}

/// Symbol of the trampoline that calls builtin `name`.
pub fn builtin_trampoline_symbol(name: &str) -> String {
    format!("wasmc_builtin_{name}")
}
