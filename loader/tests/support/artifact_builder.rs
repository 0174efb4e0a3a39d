//! Test helpers: hand-built artifacts (no compiler needed).
//!
//! [`ArtifactBuilder`] writes an ELF relocatable object with the wasmc sections
//! through `object::write`, the same way the compiler does, so the loader's
//! parsing, validation and (with hand-assembled machine code) execution paths
//! can be tested on their own.

use object::write::{Object, Relocation, StandardSection, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationEncoding, RelocationFlags, RelocationKind,
    SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use wasmc_format::header::{content_hash, encode_meta, encode_module_info};
use wasmc_format::sections::*;
use wasmc_format::*;

pub struct ArtifactBuilder {
    pub text: Vec<u8>,
    pub info: ModuleInfo,
    /// The function index space; `info.num_funcs` is set from it.
    pub funcs: Vec<FuncInfo>,
    pub traps: Vec<u8>,
    pub stackmaps: Vec<u8>,
    pub addrmap: Vec<u8>,
    /// `.wasmc.segments` (see `wasmc_format::segments::layout_data`).
    pub segments: Vec<u8>,
    pub data: Vec<u8>,
    pub header: ArtifactHeader,
    pub text_reloc: bool,
}

pub fn host_header() -> ArtifactHeader {
    ArtifactHeader {
        compiler_version: "test".into(),
        triple: "test".into(),
        arch: std::env::consts::ARCH.into(),
        os: std::env::consts::OS.into(),
        pointer_bytes: 8,
        cpu: "baseline".into(),
        cpu_features: vec![],
        settings: CodegenSettings {
            opt_level: OptLevel::Speed,
            memory: MemoryLayout::of(MemoryStrategy::Guard),
            interruption: Default::default(),
            cranelift_flags: vec![],
        },
        wasm_features: Default::default(),
        content_hash: [0; 32],
    }
}

impl Default for ArtifactBuilder {
    fn default() -> Self {
        ArtifactBuilder {
            text: vec![0xcc; 16],
            info: ModuleInfo::default(),
            funcs: Vec::new(),
            traps: Vec::new(),
            stackmaps: Vec::new(),
            addrmap: Vec::new(),
            segments: Vec::new(),
            data: Vec::new(),
            header: host_header(),
            text_reloc: false,
        }
    }
}

impl ArtifactBuilder {
    pub fn build(mut self) -> Vec<u8> {
        let arch = if cfg!(target_arch = "aarch64") {
            Architecture::Aarch64
        } else {
            Architecture::X86_64
        };
        let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
        let text = obj.section_id(StandardSection::Text);
        obj.append_section_data(text, &self.text, SectionId::Text.spec().align);
        self.info.num_funcs = self.funcs.len() as u32;
        let funcs = funcs::encode_funcs(&self.funcs);
        let names = funcs::encode_names(&self.funcs);
        let meta_placeholder = Vec::new();
        let sig = vec![0u8; signature::SIG_SECTION_LEN];
        let section = |id: SectionId| -> &[u8] {
            match id {
                SectionId::Text => &self.text,
                SectionId::Meta => &meta_placeholder,
                SectionId::Funcs => &funcs,
                SectionId::Names => &names,
                SectionId::Traps => &self.traps,
                SectionId::StackMaps => &self.stackmaps,
                SectionId::AddrMap => &self.addrmap,
                SectionId::Segments => &self.segments,
                SectionId::Data => &self.data,
                SectionId::Sig => &sig,
            }
        };
        let hash = content_hash(&self.header, section, &encode_module_info(&self.info));
        let mut header = self.header.clone();
        header.content_hash = hash;
        let meta = encode_meta(&header, &self.info);
        // Every section of format's table, in its order and alignment.
        for spec in &SECTIONS {
            let bytes = match spec.id {
                SectionId::Text => continue,
                SectionId::Meta => &meta[..],
                id => section(id),
            };
            let id = obj.add_section(
                vec![],
                spec.name.as_bytes().to_vec(),
                SectionKind::ReadOnlyData,
            );
            obj.append_section_data(id, bytes, spec.align);
        }
        if self.text_reloc {
            let sym = obj.add_symbol(Symbol {
                name: b"some_runtime_symbol".to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Linkage,
                weak: false,
                section: SymbolSection::Undefined,
                flags: SymbolFlags::None,
            });
            obj.add_relocation(
                text,
                Relocation {
                    offset: 4,
                    symbol: sym,
                    addend: -4,
                    flags: RelocationFlags::Generic {
                        kind: RelocationKind::Relative,
                        encoding: RelocationEncoding::Generic,
                        size: 32,
                    },
                },
            )
            .unwrap();
        }
        obj.write().unwrap()
    }
}
