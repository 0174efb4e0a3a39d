//! The sections and symbols of a wasmc artifact: one table, [`SECTIONS`],
//! that the compiler's emitter, the loader, `wasmc inspect` and the content
//! hash all walk.
//!
//! An artifact is an ELF64 relocatable object (`ET_REL`). [`SECTIONS`] lists
//! its sections in the order the compiler writes them, which is also the
//! order in which [`crate::header::content_hash`] covers them:
//!
//! | section            | alignment | required | hashed as   | contents |
//! |--------------------|-----------|----------|-------------|----------|
//! | `.text`            | page      | yes      | bytes       | Wasm functions, then trampolines; every intra-module call already resolved |
//! | `.wasmc.meta`      | 8         | yes      | header + `ModuleInfo` | [`crate::header`] prefix, then bincode [`crate::ModuleInfo`] |
//! | `.wasmc.funcs`     | 4         | yes      | bytes       | [`crate::funcs`] records, one per function |
//! | `.wasmc.names`     | 4         | no       | bytes       | [`crate::funcs`] name table (empty: no names) |
//! | `.wasmc.traps`     | 4         | yes      | bytes       | [`crate::trap`] table |
//! | `.wasmc.stackmaps` | 4         | no       | bytes       | [`crate::stack_map`] table |
//! | `.wasmc.addrmap`   | 4         | no       | bytes       | [`crate::addrmap`] table |
//! | `.wasmc.segments`  | 4         | no       | bytes       | [`crate::segments`] records, one per data segment not applied by a memory image |
//! | `.wasmc.data`      | page      | no       | bytes       | memory images, then the other data-segment bytes ([`crate::segments`]) |
//! | `.wasmc.sig`       | 8         | no       | not covered | [`crate::signature`] slot: Ed25519 signature or zeros |
//!
//! An optional section that is absent reads as empty. Code offsets in every
//! table are byte offsets from the start of `.text`.
//!
//! The compiler emits no relocations against `.text`: all calls between Wasm
//! functions and trampolines are PC-relative and resolved at compile time, and
//! runtime services are reached through the VMContext. A loader therefore
//! rejects an artifact whose `.text` or a `.wasmc.*` section carries
//! relocations ([`is_wasmc_section`]).

/// The literal name of each section, so that format's own error messages
/// (`concat!("section `", section_name!(traps), "`")`) spell it from the one
/// definition.
macro_rules! section_name {
    (text) => {
        ".text"
    };
    (meta) => {
        ".wasmc.meta"
    };
    (funcs) => {
        ".wasmc.funcs"
    };
    (names) => {
        ".wasmc.names"
    };
    (traps) => {
        ".wasmc.traps"
    };
    (stackmaps) => {
        ".wasmc.stackmaps"
    };
    (addrmap) => {
        ".wasmc.addrmap"
    };
    (segments) => {
        ".wasmc.segments"
    };
    (data) => {
        ".wasmc.data"
    };
    (sig) => {
        ".wasmc.sig"
    };
}
pub(crate) use section_name;

/// `section `NAME``, the subject of format's error messages about a section.
macro_rules! section_what {
    ($s:ident) => {
        concat!("section `", $crate::sections::section_name!($s), "`")
    };
}
pub(crate) use section_what;

/// The code section.
pub const ELF_TEXT: &str = section_name!(text);
/// Module metadata: header and `ModuleInfo`.
pub const ELF_WASMC_META: &str = section_name!(meta);
/// Per-function records (type, code range, Wasm offset).
pub const ELF_WASMC_FUNCS: &str = section_name!(funcs);
/// Function names.
pub const ELF_WASMC_NAMES: &str = section_name!(names);
/// Trap table.
pub const ELF_WASMC_TRAPS: &str = section_name!(traps);
/// Stack maps for the externref collector.
pub const ELF_WASMC_STACKMAPS: &str = section_name!(stackmaps);
/// Code offset to Wasm bytecode offset map.
pub const ELF_WASMC_ADDRMAP: &str = section_name!(addrmap);
/// Data-segment records.
pub const ELF_WASMC_SEGMENTS: &str = section_name!(segments);
/// Memory images and data-segment bytes.
pub const ELF_WASMC_DATA: &str = section_name!(data);
/// Signature slot ([`crate::signature`]).
pub const ELF_WASMC_SIG: &str = section_name!(sig);

/// Prefix of every wasmc custom section's name.
const WASMC_PREFIX: &str = ".wasmc.";

/// Alignment of `.text` and `.wasmc.data`: a page, so that the loader can map
/// them (code read+execute, data copy-on-write) without copying.
pub const PAGE_ALIGN: u64 = 4096;

/// Alignment of the little-endian `u32` tables.
const TABLE_ALIGN: u64 = 4;

/// Names a section of [`SECTIONS`]; `id as usize` is its position there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SectionId {
    /// `.text`.
    Text,
    /// `.wasmc.meta`.
    Meta,
    /// `.wasmc.funcs`.
    Funcs,
    /// `.wasmc.names`.
    Names,
    /// `.wasmc.traps`.
    Traps,
    /// `.wasmc.stackmaps`.
    StackMaps,
    /// `.wasmc.addrmap`.
    AddrMap,
    /// `.wasmc.segments`.
    Segments,
    /// `.wasmc.data`.
    Data,
    /// `.wasmc.sig`.
    Sig,
}

impl SectionId {
    /// Every section, in [`SECTIONS`] order.
    pub const ALL: [SectionId; 10] = [
        SectionId::Text,
        SectionId::Meta,
        SectionId::Funcs,
        SectionId::Names,
        SectionId::Traps,
        SectionId::StackMaps,
        SectionId::AddrMap,
        SectionId::Segments,
        SectionId::Data,
        SectionId::Sig,
    ];

    /// The section's entry in [`SECTIONS`].
    pub const fn spec(self) -> &'static SectionSpec {
        &SECTIONS[self as usize]
    }

    /// The section's ELF name.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The section called `name`, if it is one of [`SECTIONS`].
    pub fn from_name(name: &str) -> Option<SectionId> {
        SectionId::ALL.into_iter().find(|id| id.name() == name)
    }
}

/// What a section holds, for tools that sum sizes (`wasmc inspect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// Machine code.
    Code,
    /// Tables and metadata the runtime reads.
    Metadata,
    /// Data-segment bytes.
    Data,
}

/// How [`crate::header::content_hash`] covers a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hashed {
    /// Its bytes, in [`SECTIONS`] order.
    Bytes,
    /// `.wasmc.meta`: not its bytes (they contain the hash) but the header
    /// with a zero hash, first, and the encoded `ModuleInfo`, last.
    HeaderAndModuleInfo,
    /// Not covered: `.wasmc.sig`, which signs the artifact (see
    /// [`crate::signature`]) and is filled in after the hash is computed.
    NotCovered,
}

/// One section of a wasmc artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionSpec {
    /// Which section.
    pub id: SectionId,
    /// ELF section name.
    pub name: &'static str,
    /// Alignment of its start, in bytes (file offset and address). The
    /// loader refuses a `.text` that is not page aligned.
    pub align: u64,
    /// Whether a loader refuses an artifact without it. An optional section
    /// that is absent reads as empty.
    pub required: bool,
    /// How the content hash covers it.
    pub hashed: Hashed,
    /// What it holds.
    pub kind: SectionKind,
}

const fn spec(
    id: SectionId,
    name: &'static str,
    align: u64,
    required: bool,
    kind: SectionKind,
) -> SectionSpec {
    SectionSpec {
        id,
        name,
        align,
        required,
        hashed: match id {
            SectionId::Meta => Hashed::HeaderAndModuleInfo,
            SectionId::Sig => Hashed::NotCovered,
            _ => Hashed::Bytes,
        },
        kind,
    }
}

/// Every section of a wasmc artifact, in the order the compiler writes them
/// and the content hash covers them; `SECTIONS[id as usize].id == id`.
pub const SECTIONS: [SectionSpec; 10] = {
    use SectionId as S;
    use SectionKind::{Code, Data, Metadata};
    [
        spec(S::Text, ELF_TEXT, PAGE_ALIGN, true, Code),
        spec(S::Meta, ELF_WASMC_META, 8, true, Metadata),
        spec(S::Funcs, ELF_WASMC_FUNCS, TABLE_ALIGN, true, Metadata),
        spec(S::Names, ELF_WASMC_NAMES, TABLE_ALIGN, false, Metadata),
        spec(S::Traps, ELF_WASMC_TRAPS, TABLE_ALIGN, true, Metadata),
        spec(
            S::StackMaps,
            ELF_WASMC_STACKMAPS,
            TABLE_ALIGN,
            false,
            Metadata,
        ),
        spec(S::AddrMap, ELF_WASMC_ADDRMAP, TABLE_ALIGN, false, Metadata),
        spec(
            S::Segments,
            ELF_WASMC_SEGMENTS,
            TABLE_ALIGN,
            false,
            Metadata,
        ),
        spec(S::Data, ELF_WASMC_DATA, PAGE_ALIGN, false, Data),
        spec(S::Sig, ELF_WASMC_SIG, 8, false, Metadata),
    ]
};

/// Whether `name` is `.text` or a wasmc custom section (known or not): the
/// sections a loader refuses relocations in.
pub fn is_wasmc_section(name: &str) -> bool {
    name == ELF_TEXT || name.starts_with(WASMC_PREFIX)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_id_and_names_are_unique() {
        for (i, s) in SECTIONS.iter().enumerate() {
            assert_eq!(s.id as usize, i);
            assert_eq!(SectionId::ALL[i], s.id);
            assert_eq!(SectionId::from_name(s.name), Some(s.id));
            assert!(is_wasmc_section(s.name));
            assert!(s.align.is_power_of_two());
        }
        assert_eq!(SectionId::from_name(".data"), None);
        assert!(!is_wasmc_section(".rela.text"));
        assert!(is_wasmc_section(".wasmc.future"));
        let metas: Vec<_> = SECTIONS
            .iter()
            .filter(|s| s.hashed == Hashed::HeaderAndModuleInfo)
            .collect();
        assert_eq!(metas.len(), 1);
        assert_eq!(metas[0].name, ELF_WASMC_META);
    }
}
