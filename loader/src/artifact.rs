//! Parsing a wasmc artifact without running anything.
//!
//! [`ParsedArtifact::parse`] reads the ELF container, finds the sections named
//! in [`wasmc_format::sections`], decodes the header and `ModuleInfo`, and
//! validates the metadata against the section sizes. It performs no host
//! checks and maps nothing executable, so `wasmc inspect` can use it on
//! artifacts for other machines. [`crate::Module`] builds on it.
//!
//! Everything read here is untrusted: section ranges are checked against the
//! file and aligned as [`wasmc_format::sections::SECTIONS`] says, and every
//! entry of the tables the runtime relies on is checked once with format's
//! validators ([`ParsedArtifact::validate_runtime_tables`]: function records
//! and stack maps: sorted, inside `.text`, indices and stack-map slots in
//! range; the trap table's block index), so that later lookups only
//! bounds-check. That pass reads each table once, in place (nothing is
//! decoded into memory); everything else here is O(1) in the number of
//! functions.

use crate::callsite::is_call_return;
use crate::error::LoadError;
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectKind, ObjectSection, ObjectSymbol, RelocationTarget};
use std::ops::Range;
use wasmc_format::addrmap::AddrMap;
use wasmc_format::funcs::{FuncTable, FuncTableLimits, NameTable};
use wasmc_format::header::{decode_header, decode_module_info, HostInfo, Mismatch};
use wasmc_format::sections::ELF_WASMC_STACKMAPS;
use wasmc_format::sections::{is_wasmc_section, SectionId, ELF_TEXT, SECTIONS};
use wasmc_format::segments::{SegmentLimits, SegmentTable};
use wasmc_format::stack_map::{StackMapSection, FRAME_ALIGN};
use wasmc_format::trap::TrapTable;
use wasmc_format::{ArtifactHeader, FormatError, ModuleInfo};

/// One ELF section of an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionInfo {
    /// Section name.
    pub name: String,
    /// Offset of its bytes in the file (0 for sections without file bytes).
    pub file_offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// Required alignment.
    pub align: u64,
}

/// One relocation found in an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelocationInfo {
    /// Name of the section the relocation patches.
    pub section: String,
    /// Offset in that section.
    pub offset: u64,
    /// Relocation type, e.g. `Elf(R_X86_64_PLT32 = 4)`.
    pub kind: String,
    /// Target symbol or section name (empty if unnamed).
    pub symbol: String,
    /// Addend.
    pub addend: i64,
}

/// Byte ranges (in the artifact) of the sections of
/// [`wasmc_format::sections::SECTIONS`]. Optional sections that are absent are
/// empty ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionRanges {
    /// `.text`.
    pub text: Range<usize>,
    /// `.wasmc.meta`.
    pub meta: Range<usize>,
    /// `.wasmc.funcs`.
    pub funcs: Range<usize>,
    /// `.wasmc.names`.
    pub names: Range<usize>,
    /// `.wasmc.traps`.
    pub traps: Range<usize>,
    /// `.wasmc.stackmaps`.
    pub stackmaps: Range<usize>,
    /// `.wasmc.addrmap`.
    pub addrmap: Range<usize>,
    /// `.wasmc.segments`.
    pub segments: Range<usize>,
    /// `.wasmc.data`.
    pub data: Range<usize>,
    /// `.wasmc.sig` (not covered by the content hash).
    pub sig: Range<usize>,
}

impl SectionRanges {
    /// The range of section `id`.
    pub fn get(&self, id: SectionId) -> &Range<usize> {
        match id {
            SectionId::Text => &self.text,
            SectionId::Meta => &self.meta,
            SectionId::Funcs => &self.funcs,
            SectionId::Names => &self.names,
            SectionId::Traps => &self.traps,
            SectionId::StackMaps => &self.stackmaps,
            SectionId::AddrMap => &self.addrmap,
            SectionId::Segments => &self.segments,
            SectionId::Data => &self.data,
            SectionId::Sig => &self.sig,
        }
    }

    fn get_mut(&mut self, id: SectionId) -> &mut Range<usize> {
        match id {
            SectionId::Text => &mut self.text,
            SectionId::Meta => &mut self.meta,
            SectionId::Funcs => &mut self.funcs,
            SectionId::Names => &mut self.names,
            SectionId::Traps => &mut self.traps,
            SectionId::StackMaps => &mut self.stackmaps,
            SectionId::AddrMap => &mut self.addrmap,
            SectionId::Segments => &mut self.segments,
            SectionId::Data => &mut self.data,
            SectionId::Sig => &mut self.sig,
        }
    }
}

/// A parsed and validated artifact, borrowing its bytes.
#[derive(Debug)]
pub struct ParsedArtifact<'a> {
    bytes: &'a [u8],
    header: ArtifactHeader,
    info: ModuleInfo,
    module_info_range: Range<usize>,
    ranges: SectionRanges,
    sections: Vec<SectionInfo>,
    relocations: Vec<RelocationInfo>,
}

fn elf_err(e: object::read::Error) -> LoadError {
    LoadError::Elf(e.to_string())
}

fn section_err(section: &str, detail: impl Into<String>) -> LoadError {
    LoadError::Section {
        section: section.to_string(),
        detail: detail.into(),
    }
}

impl<'a> ParsedArtifact<'a> {
    /// Parses `bytes` as a wasmc artifact: ELF container, sections, header and
    /// `ModuleInfo` (validated against the section sizes). No host checks.
    pub fn parse(bytes: &'a [u8]) -> Result<ParsedArtifact<'a>, LoadError> {
        let elf = ElfFile64::<Endianness>::parse(bytes).map_err(elf_err)?;
        if elf.kind() != ObjectKind::Relocatable {
            return Err(LoadError::Elf(format!(
                "expected an ELF relocatable object (ET_REL), found {:?}",
                elf.kind()
            )));
        }
        if !elf.is_little_endian() {
            return Err(LoadError::Elf(
                "big-endian ELF files are not supported".into(),
            ));
        }

        let mut sections = Vec::new();
        let mut relocations = Vec::new();
        let mut found: [Option<Range<usize>>; SECTIONS.len()] = Default::default();
        for section in elf.sections() {
            let name = section.name().map_err(elf_err)?.to_string();
            let (file_offset, file_size) = section.file_range().unwrap_or((0, 0));
            sections.push(SectionInfo {
                name: name.clone(),
                file_offset,
                size: section.size(),
                align: section.align(),
            });
            for (offset, reloc) in section.relocations() {
                let symbol = match reloc.target() {
                    RelocationTarget::Symbol(idx) => match elf.symbol_by_index(idx) {
                        Ok(sym) => {
                            let n = sym.name().unwrap_or("");
                            if n.is_empty() {
                                sym.section_index()
                                    .and_then(|s| elf.section_by_index(s).ok())
                                    .and_then(|s| s.name().ok().map(str::to_string))
                                    .unwrap_or_default()
                            } else {
                                n.to_string()
                            }
                        }
                        Err(_) => format!("<bad symbol index {}>", idx.0),
                    },
                    RelocationTarget::Section(idx) => elf
                        .section_by_index(idx)
                        .ok()
                        .and_then(|s| s.name().ok().map(str::to_string))
                        .unwrap_or_default(),
                    RelocationTarget::Absolute => "<absolute>".to_string(),
                    _ => "<unknown>".to_string(),
                };
                relocations.push(RelocationInfo {
                    section: name.clone(),
                    offset,
                    kind: relocation_name(elf.architecture(), reloc.flags()),
                    symbol,
                    addend: reloc.addend(),
                });
            }
            if let Some(id) = SectionId::from_name(&name) {
                let slot = id as usize;
                if found[slot].is_some() {
                    return Err(section_err(&name, "appears more than once"));
                }
                let start = usize::try_from(file_offset)
                    .map_err(|_| section_err(&name, "file offset does not fit in memory"))?;
                let len = usize::try_from(file_size)
                    .map_err(|_| section_err(&name, "size does not fit in memory"))?;
                let end = start
                    .checked_add(len)
                    .filter(|e| *e <= bytes.len())
                    .ok_or_else(|| {
                        section_err(
                            &name,
                            format!(
                                "bytes {file_offset:#x}+{file_size:#x} exceed the file length {:#x}",
                                bytes.len()
                            ),
                        )
                    })?;
                if file_size != section.size() {
                    return Err(section_err(
                        &name,
                        "has no file bytes (SHT_NOBITS) or a size that disagrees with them",
                    ));
                }
                found[slot] = Some(start..end);
            }
        }

        // Absent optional sections read as empty ranges at `.text`'s start.
        let text = found[SectionId::Text as usize]
            .clone()
            .ok_or(LoadError::MissingSection(ELF_TEXT))?;
        let mut ranges = SectionRanges::default();
        for (spec, range) in SECTIONS.iter().zip(found) {
            *ranges.get_mut(spec.id) = match range {
                Some(r) => r,
                None if spec.required => return Err(LoadError::MissingSection(spec.name)),
                None => text.start..text.start,
            };
        }
        // `.text` and `.wasmc.data` are mapped in place, so their file
        // offsets must be page aligned; the tables are read byte-wise but are
        // held to their alignment too, so that every artifact looks like the
        // compiler's.
        for spec in &SECTIONS {
            let r = ranges.get(spec.id);
            if !r.is_empty() && (r.start as u64) & (spec.align - 1) != 0 {
                return Err(section_err(
                    spec.name,
                    format!(
                        "file offset {:#x} is not aligned to {:#x} bytes",
                        r.start, spec.align
                    ),
                ));
            }
        }

        let meta_bytes = &bytes[ranges.meta.clone()];
        let (header, info_bytes) = decode_header(meta_bytes)?;
        let info_start = ranges.meta.end - info_bytes.len();
        let info = decode_module_info(info_bytes)?;
        info.validate(ranges.text.len() as u64, ranges.data.len() as u64)?;
        if wasmc_format::VMOffsets::checked(
            header.pointer_bytes.max(1),
            wasmc_format::vmoffsets::VMCounts::for_module(&info),
        )
        .is_none()
        {
            return Err(LoadError::Format(wasmc_format::FormatError::Invalid {
                what: "section `.wasmc.meta`: module info",
                detail: "the VMContext would exceed 4 GiB".into(),
            }));
        }

        let parsed = ParsedArtifact {
            bytes,
            header,
            info,
            module_info_range: info_start..ranges.meta.end,
            ranges,
            sections,
            relocations,
        };
        parsed.funcs()?.check_imports(&parsed.info.imports)?;
        parsed.names()?;
        parsed.addr_map()?;
        // O(1): each segment record is checked when instantiation reads it.
        parsed.segments()?;
        parsed.validate_runtime_tables()?;
        Ok(parsed)
    }

    /// The artifact's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The decoded header.
    pub fn header(&self) -> &ArtifactHeader {
        &self.header
    }

    /// The decoded and validated module metadata.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// Takes the header and module info out of the parse.
    pub fn into_parts(self) -> (ArtifactHeader, ModuleInfo, SectionRanges) {
        (self.header, self.info, self.ranges)
    }

    /// Every ELF section, in file order.
    pub fn sections(&self) -> &[SectionInfo] {
        &self.sections
    }

    /// Every relocation in the file, in section order.
    pub fn relocations(&self) -> &[RelocationInfo] {
        &self.relocations
    }

    /// Byte ranges of the sections the loader uses.
    pub fn ranges(&self) -> &SectionRanges {
        &self.ranges
    }

    /// Byte range of the section called `name` among those the loader uses.
    pub fn section_range(&self, name: &str) -> Option<Range<usize>> {
        SectionId::from_name(name).map(|id| self.ranges.get(id).clone())
    }

    /// Bytes of the section called `name` among those the loader uses.
    pub fn section_data(&self, name: &str) -> Option<&'a [u8]> {
        self.section_range(name).map(|r| &self.bytes[r])
    }

    /// Bytes of section `id` (empty for an absent optional section).
    pub fn section(&self, id: SectionId) -> &'a [u8] {
        &self.bytes[self.ranges.get(id).clone()]
    }

    /// `.text`.
    pub fn text(&self) -> &'a [u8] {
        &self.bytes[self.ranges.text.clone()]
    }

    /// `.wasmc.data`.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.ranges.data.clone()]
    }

    /// The function records (`.wasmc.funcs`).
    pub fn funcs(&self) -> Result<FuncTable<'a>, LoadError> {
        Ok(FuncTable::parse(
            &self.bytes[self.ranges.funcs.clone()],
            func_table_limits(&self.info, &self.ranges),
        )?)
    }

    /// The data-segment records (`.wasmc.segments`), read in place; each
    /// record is checked when read ([`SegmentTable::validate`] checks all).
    pub fn segments(&self) -> Result<SegmentTable<'a>, LoadError> {
        Ok(SegmentTable::parse(
            &self.bytes[self.ranges.segments.clone()],
            segment_limits(&self.info, &self.ranges),
        )?)
    }

    /// The function names (`.wasmc.names`).
    pub fn names(&self) -> Result<NameTable<'a>, LoadError> {
        Ok(NameTable::parse(
            &self.bytes[self.ranges.names.clone()],
            self.info.num_funcs,
        )?)
    }

    /// Checks the tables the runtime relies on, with format's validators:
    /// every function record (type indices in range, code inside `.text`
    /// and in index order) and stack map (sorted, inside `.text`, every slot
    /// inside its frame), and the trap table's block index (blocks in
    /// order, inside the section, first offsets inside `.text`; each
    /// block's entries are bounds-checked when a lookup decodes them, and
    /// a damaged entry is a failed lookup; the safe load paths check every
    /// entry too, [`Self::validate_trap_entries`], the trusted path does
    /// not decode the 0.66 million entries of a large module). The first
    /// wrong entry is an error naming its section and index. [`parse`] runs
    /// it, in place.
    ///
    /// [`parse`]: ParsedArtifact::parse
    pub fn validate_runtime_tables(&self) -> Result<(), LoadError> {
        let text_len = self.ranges.text.len() as u64;
        self.funcs()?.validate()?;
        self.trap_table()?.check_index(text_len)?;
        self.stack_maps()?
            .validate(text_len, u32::from(self.header.pointer_bytes))?;
        self.check_safepoints()?;
        Ok(())
    }

    /// Checks every stack-map key against the code: it must be the return
    /// address of a call instruction inside a defined function
    /// ([`crate::callsite`]), and its frame span a multiple of the stack
    /// alignment ([`FRAME_ALIGN`]). A key that is not where a frame can be
    /// suspended would leave the real call site without its map, and the
    /// collector would free references that frame still holds.
    fn check_safepoints(&self) -> Result<(), LoadError> {
        let funcs = self.funcs()?;
        let text = self.text();
        let arch = self.header.arch.as_str();
        for (i, e) in self.stack_maps()?.iter().enumerate() {
            let (ret, map) = e?;
            let entry = |detail: String| {
                LoadError::Format(FormatError::Entry {
                    section: ELF_WASMC_STACKMAPS,
                    entry: i as u64,
                    detail,
                })
            };
            // `validate` checked 0 < ret <= text length; the call
            // instruction itself ends at `ret`, so it lies before it.
            if funcs.func_at(ret.wrapping_sub(1)).is_none() {
                return Err(entry(format!(
                    "return address {ret:#x} is not inside a Wasm function's code"
                )));
            }
            if is_call_return(arch, text, ret as usize) == Some(false) {
                return Err(entry(format!(
                    "return address {ret:#x} does not follow a call instruction"
                )));
            }
            if !map.frame_span.is_multiple_of(FRAME_ALIGN) {
                return Err(entry(format!(
                    "frame span {:#x} is not a multiple of the {FRAME_ALIGN}-byte stack alignment",
                    map.frame_span
                )));
            }
        }
        Ok(())
    }

    /// Checks every entry of the trap table: sorted, inside `.text`, known
    /// codes (the safe load paths run it; O(entries)).
    pub fn validate_trap_entries(&self) -> Result<(), LoadError> {
        Ok(self.trap_table()?.validate(self.ranges.text.len() as u64)?)
    }

    /// [`Self::validate_runtime_tables`], plus every entry of the trap
    /// table (sorted, inside `.text`, known codes) and of the address map
    /// (in code order, inside `.text`). The runtime reads these entries
    /// only on a fault and for backtraces, each read bounds-checked, so
    /// loading does not pay for this pass; `wasmc inspect` does.
    pub fn validate_tables(&self) -> Result<(), LoadError> {
        self.validate_runtime_tables()?;
        self.validate_trap_entries()?;
        self.addr_map()?.validate(self.ranges.text.len() as u64)?;
        self.segments()?.validate()?;
        Ok(())
    }

    /// The trap table.
    pub fn trap_table(&self) -> Result<TrapTable<'a>, LoadError> {
        Ok(TrapTable::parse(&self.bytes[self.ranges.traps.clone()])?)
    }

    /// The stack maps.
    pub fn stack_maps(&self) -> Result<StackMapSection<'a>, LoadError> {
        Ok(StackMapSection::parse(
            &self.bytes[self.ranges.stackmaps.clone()],
        )?)
    }

    /// The code-to-Wasm address map.
    pub fn addr_map(&self) -> Result<AddrMap<'a>, LoadError> {
        Ok(AddrMap::parse(&self.bytes[self.ranges.addrmap.clone()])?)
    }

    /// The memory strategy the code was compiled for, if the header names a
    /// known one with this loader's sizes; otherwise why not ("artifact names
    /// an unknown memory strategy ...", "guard size mismatch ..."). The
    /// loader refuses the artifact in that case, signed or not.
    pub fn check_sandbox(&self) -> Result<wasmc_format::MemoryStrategy, LoadError> {
        self.header
            .settings
            .memory
            .check()
            .map_err(LoadError::Sandbox)
    }

    /// Every way in which the artifact does not fit the running host; empty
    /// if it fits.
    pub fn check_host(&self) -> Vec<Mismatch> {
        check_host(&self.header)
    }

    /// Fails with [`LoadError::Relocation`] for the first relocation that
    /// patches `.text` or a wasmc section: the loader applies none.
    pub fn check_relocations(&self) -> Result<(), LoadError> {
        match self
            .relocations
            .iter()
            .find(|r| is_wasmc_section(&r.section))
        {
            Some(r) => Err(LoadError::Relocation {
                section: r.section.clone(),
                offset: r.offset,
                kind: r.kind.clone(),
                symbol: r.symbol.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Recomputes the content hash and compares it with the header's.
    pub fn verify_content_hash(&self) -> Result<(), LoadError> {
        let hash = wasmc_format::header::content_hash(
            &self.header,
            |id| self.section(id),
            &self.bytes[self.module_info_range.clone()],
        );
        if hash == self.header.content_hash {
            Ok(())
        } else {
            Err(LoadError::HashMismatch)
        }
    }
}

/// A relocation type as people read it: its ELF name (`R_X86_64_PLT32`)
/// where this loader knows it, else `ELF relocation type N`.
fn relocation_name(arch: object::Architecture, flags: object::RelocationFlags) -> String {
    use object::elf;
    use object::Architecture as A;
    let object::RelocationFlags::Elf { r_type } = flags else {
        return "a non-ELF relocation".to_string();
    };
    let name = match (arch, r_type) {
        (A::X86_64, elf::R_X86_64_NONE) => "R_X86_64_NONE",
        (A::X86_64, elf::R_X86_64_64) => "R_X86_64_64",
        (A::X86_64, elf::R_X86_64_PC32) => "R_X86_64_PC32",
        (A::X86_64, elf::R_X86_64_GOT32) => "R_X86_64_GOT32",
        (A::X86_64, elf::R_X86_64_PLT32) => "R_X86_64_PLT32",
        (A::X86_64, elf::R_X86_64_GOTPCREL) => "R_X86_64_GOTPCREL",
        (A::X86_64, elf::R_X86_64_32) => "R_X86_64_32",
        (A::X86_64, elf::R_X86_64_32S) => "R_X86_64_32S",
        (A::X86_64, elf::R_X86_64_PC64) => "R_X86_64_PC64",
        (A::X86_64, elf::R_X86_64_GOTPCRELX) => "R_X86_64_GOTPCRELX",
        (A::X86_64, elf::R_X86_64_REX_GOTPCRELX) => "R_X86_64_REX_GOTPCRELX",
        (A::Aarch64, elf::R_AARCH64_ABS64) => "R_AARCH64_ABS64",
        (A::Aarch64, elf::R_AARCH64_PREL32) => "R_AARCH64_PREL32",
        (A::Aarch64, elf::R_AARCH64_CALL26) => "R_AARCH64_CALL26",
        (A::Aarch64, elf::R_AARCH64_JUMP26) => "R_AARCH64_JUMP26",
        (A::Aarch64, elf::R_AARCH64_ADR_PREL_PG_HI21) => "R_AARCH64_ADR_PREL_PG_HI21",
        (A::Aarch64, elf::R_AARCH64_ADD_ABS_LO12_NC) => "R_AARCH64_ADD_ABS_LO12_NC",
        (A::Aarch64, elf::R_AARCH64_LD64_GOT_LO12_NC) => "R_AARCH64_LD64_GOT_LO12_NC",
        (A::Aarch64, elf::R_AARCH64_ADR_GOT_PAGE) => "R_AARCH64_ADR_GOT_PAGE",
        _ => return format!("ELF relocation type {r_type}"),
    };
    name.to_string()
}

/// What the records of `.wasmc.funcs` are checked against.
pub(crate) fn func_table_limits(info: &ModuleInfo, ranges: &SectionRanges) -> FuncTableLimits {
    FuncTableLimits {
        num_funcs: info.num_funcs,
        num_imported: info.num_imported_funcs,
        num_types: info.types.len() as u32,
        text_len: ranges.text.len() as u64,
    }
}

/// What the records of `.wasmc.segments` are checked against.
pub(crate) fn segment_limits(info: &ModuleInfo, ranges: &SectionRanges) -> SegmentLimits {
    SegmentLimits {
        count: info.num_data_segments,
        num_memories: info.memories.len() as u32,
        num_exprs: info.data_offset_exprs.len() as u32,
        image_segments: info.image_segments,
        data_len: ranges.data.len() as u64,
    }
}

/// Compares a header with the running host (architecture, OS, pointer width,
/// CPU features detected at run time, memory strategy).
pub fn check_host(header: &ArtifactHeader) -> Vec<Mismatch> {
    let has = |f: &str| host_has_feature(f);
    let host = HostInfo {
        arch: std::env::consts::ARCH,
        os: std::env::consts::OS,
        pointer_bytes: std::mem::size_of::<usize>() as u8,
        has_feature: &has,
    };
    header.check_host(&host)
}

/// Expands format's CPU feature list ([`wasmc_format::foreach_cpu_feature!`])
/// into a run-time detection for this host's architecture.
macro_rules! host_feature_detection {
    (
        x86_64 { $($x86:tt = $x86_flag:expr,)* }
        aarch64 { $($arm:tt = $arm_flag:expr,)* }
    ) => {
        /// Whether the host CPU has the feature with Rust name `name`; `None`
        /// if this loader does not know the name.
        #[cfg(target_arch = "x86_64")]
        pub fn host_has_feature(name: &str) -> Option<bool> {
            Some(match name {
                $($x86 => std::arch::is_x86_feature_detected!($x86),)*
                _ => return None,
            })
        }

        /// Whether the host CPU has the feature with Rust name `name`; `None`
        /// if this loader does not know the name.
        #[cfg(target_arch = "aarch64")]
        pub fn host_has_feature(name: &str) -> Option<bool> {
            Some(match name {
                $($arm => std::arch::is_aarch64_feature_detected!($arm),)*
                _ => return None,
            })
        }
    };
}
wasmc_format::foreach_cpu_feature!(host_feature_detection);

/// Whether the host CPU has the feature with Rust name `name`; `None` if this
/// loader does not know the name.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn host_has_feature(_name: &str) -> Option<bool> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ArtifactBuilder;
    use wasmc_format::*;

    fn sample_info() -> ModuleInfo {
        ModuleInfo {
            name: Some("m".into()),
            types: vec![FuncType {
                params: vec![ValType::I32],
                results: vec![ValType::I32],
            }],
            trampolines: vec![TypeTrampolines {
                entry: CodeRange { offset: 8, len: 4 },
                host: CodeRange { offset: 12, len: 4 },
            }],
            exports: vec![Export {
                name: "f".into(),
                kind: ExternKind::Func,
                index: 0,
            }],
            ..Default::default()
        }
    }

    fn sample_funcs() -> Vec<FuncInfo> {
        vec![FuncInfo {
            type_index: 0,
            name: Some("f".into()),
            code: Some(DefinedFunc {
                range: CodeRange { offset: 0, len: 8 },
                wasm_offset: 0,
            }),
        }]
    }

    fn sample() -> Vec<u8> {
        let mut t = trap::TrapTableBuilder::default();
        t.push(2, TrapCode::UnreachableCodeReached);
        ArtifactBuilder {
            info: sample_info(),
            funcs: sample_funcs(),
            traps: t.finish(),
            data: vec![1, 2, 3],
            ..Default::default()
        }
        .build()
    }

    #[test]
    fn parses_a_well_formed_artifact() {
        let bytes = sample();
        let a = ParsedArtifact::parse(&bytes).unwrap();
        assert_eq!(a.info().name.as_deref(), Some("m"));
        assert_eq!(a.text().len(), 16);
        assert_eq!(a.ranges().text.start % 4096, 0);
        assert_eq!(a.data(), &[1, 2, 3]);
        assert_eq!(
            a.trap_table().unwrap().lookup(2),
            Some(TrapCode::UnreachableCodeReached)
        );
        assert!(a.sections().iter().any(|s| s.name == ".wasmc.meta"));
        assert!(a.relocations().is_empty());
        a.check_relocations().unwrap();
        a.verify_content_hash().unwrap();
        assert!(a.check_host().is_empty(), "{:?}", a.check_host());
    }

    #[test]
    fn text_relocations_are_listed_and_refused() {
        let bytes = ArtifactBuilder {
            info: sample_info(),
            funcs: sample_funcs(),
            text_reloc: true,
            ..Default::default()
        }
        .build();
        let a = ParsedArtifact::parse(&bytes).unwrap();
        assert_eq!(a.relocations().len(), 1);
        let e = a.check_relocations().unwrap_err().to_string();
        assert_eq!(
            e,
            "unsupported relocation in section `.text` at offset 0x4: \
             R_X86_64_PC32 against `some_runtime_symbol`"
        );
    }

    #[test]
    fn foreign_host_is_reported() {
        let mut b = ArtifactBuilder {
            info: sample_info(),
            funcs: sample_funcs(),
            ..Default::default()
        };
        b.header.arch = "riscv64".into();
        b.header.cpu_features = vec!["no-such-feature".into()];
        let bytes = b.build();
        let a = ParsedArtifact::parse(&bytes).unwrap();
        let m = a.check_host();
        assert_eq!(m[0].field, "architecture");
        assert_eq!(m[0].artifact, "riscv64");
        assert_eq!(m[1].field, "cpu feature");
    }

    #[test]
    fn not_elf_and_missing_sections() {
        assert!(ParsedArtifact::parse(b"").is_err());
        assert!(ParsedArtifact::parse(b"\0asm\x01\0\0\0").is_err());
        // An ELF file without the wasmc sections.
        let obj = object::write::Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        )
        .write()
        .unwrap();
        let e = ParsedArtifact::parse(&obj).unwrap_err().to_string();
        assert!(e.contains("missing section"), "{e}");
    }

    #[test]
    fn invalid_metadata_is_refused() {
        let mut info = sample_info();
        info.trampolines[0].host.len = 1000;
        let bytes = ArtifactBuilder {
            info,
            funcs: sample_funcs(),
            ..Default::default()
        }
        .build();
        let e = ParsedArtifact::parse(&bytes).unwrap_err().to_string();
        assert!(e.contains("exceeds `.text` length"), "{e}");

        // A bad function record is refused when the artifact is parsed.
        let mut funcs = sample_funcs();
        funcs[0].code.as_mut().unwrap().range.len = 1000;
        let bytes = ArtifactBuilder {
            info: sample_info(),
            funcs,
            ..Default::default()
        }
        .build();
        let e = ParsedArtifact::parse(&bytes).unwrap_err().to_string();
        assert!(e.contains("exceeds `.text` length"), "{e}");
        assert!(e.contains("function 0"), "{e}");

        // An import whose type disagrees with its record.
        let mut info = sample_info();
        info.types.push(FuncType::default());
        info.trampolines.push(info.trampolines[0]);
        info.imports.push(Import {
            module: "m".into(),
            field: "f".into(),
            ty: ImportType::Func(1),
        });
        info.num_imported_funcs = 1;
        let mut funcs = sample_funcs();
        funcs.insert(0, FuncInfo::default());
        let bytes = ArtifactBuilder {
            info,
            funcs,
            ..Default::default()
        }
        .build();
        let e = ParsedArtifact::parse(&bytes).unwrap_err().to_string();
        assert!(e.contains("disagrees with function 0"), "{e}");
    }

    #[test]
    fn wrong_table_entries_are_refused_naming_section_and_entry() {
        // Function 0 is `.text` 0..8: two `call *%rax`, returning to 4 and 8.
        let mut text = vec![0x90, 0x90, 0xff, 0xd0, 0x90, 0x90, 0xff, 0xd0];
        text.resize(16, 0xcc);
        let build = |traps: Vec<u8>, stackmaps: Vec<u8>, addrmap: Vec<u8>| {
            ArtifactBuilder {
                info: sample_info(),
                funcs: sample_funcs(),
                text: text.clone(),
                traps,
                stackmaps,
                addrmap,
                ..Default::default()
            }
            .build()
        };
        // `.text` is 16 bytes.
        let mut t = trap::TrapTableBuilder::default();
        t.push(2, TrapCode::UnreachableCodeReached);
        t.push(16, TrapCode::MemoryOutOfBounds);
        let e = ParsedArtifact::parse(&build(t.finish(), vec![], vec![]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "section `.wasmc.traps`: entry 1: offset 0x10 points outside `.text` (length 0x10)"
        );

        let mut m = stack_map::StackMapBuilder::default();
        m.push(4, 16, vec![0, 8]);
        m.push(8, 16, vec![12]);
        let e = ParsedArtifact::parse(&build(vec![], m.finish(), vec![]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("section `.wasmc.stackmaps`: entry 1: slot offset 0xc"),
            "{e}"
        );
        let mut m = stack_map::StackMapBuilder::default();
        m.push(17, 16, vec![]);
        assert!(ParsedArtifact::parse(&build(vec![], m.finish(), vec![])).is_err());
        // Keys are checked against the code: a key moved off a call's return
        // address, one outside every function, a misaligned frame.
        for (ret, span, want) in [
            (
                6,
                16,
                "return address 0x6 does not follow a call instruction",
            ),
            (
                12,
                16,
                "return address 0xc is not inside a Wasm function's code",
            ),
            (
                8,
                24,
                "frame span 0x18 is not a multiple of the 16-byte stack alignment",
            ),
        ] {
            let mut m = stack_map::StackMapBuilder::default();
            m.push(ret, span, vec![0]);
            let e = ParsedArtifact::parse(&build(vec![], m.finish(), vec![]))
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("section `.wasmc.stackmaps`: entry 0: {want}"));
        }

        let mut a = addrmap::AddrMapBuilder::default();
        a.push(0, 1);
        a.push(20, 2);
        // The address map only feeds backtraces: parsing accepts it and the
        // full validation (inspect's) refuses it.
        let bytes = build(vec![], vec![], a.finish());
        let parsed = ParsedArtifact::parse(&bytes).unwrap();
        let e = parsed.validate_tables().unwrap_err().to_string();
        assert!(e.starts_with("section `.wasmc.addrmap`: entry 1"), "{e}");

        // The same tables within `.text` are accepted.
        let mut m = stack_map::StackMapBuilder::default();
        m.push(4, 16, vec![0, 8]);
        m.push(8, 32, vec![16]);
        let bytes = build(vec![], m.finish(), vec![]);
        let a = ParsedArtifact::parse(&bytes).unwrap();
        a.validate_tables().unwrap();
        assert_eq!(a.stack_maps().unwrap().len(), 2);
    }

    #[test]
    fn truncated_and_flipped_never_panic() {
        let bytes = sample();
        for n in (0..bytes.len()).step_by(7) {
            let _ = ParsedArtifact::parse(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x41;
            if let Ok(a) = ParsedArtifact::parse(&b) {
                let funcs = a.funcs().unwrap();
                let _ = funcs.validate();
                let _ = funcs.func_at(3);
                let _ = a.names().unwrap().get(0);
                let _ = a.check_relocations();
                let _ = a.verify_content_hash();
                let _ = a.check_host();
            }
        }
    }

    #[test]
    fn flipped_text_fails_hash() {
        let bytes = sample();
        let a = ParsedArtifact::parse(&bytes).unwrap();
        let at = a.ranges().text.start + 3;
        let mut b = bytes.clone();
        b[at] ^= 1;
        let a = ParsedArtifact::parse(&b).unwrap();
        assert!(matches!(
            a.verify_content_hash(),
            Err(LoadError::HashMismatch)
        ));
    }
}
