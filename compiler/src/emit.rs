//! Lays out `.text` and writes the artifact: an ELF relocatable object with the
//! sections of `wasmc_format::sections::SECTIONS`, in that table's order and
//! with its alignments.
//!
//! `.text` holds the defined functions in index order, then the builtin, entry
//! and host trampolines. Every call between them is resolved here with the
//! ISA's text-section builder (which also inserts veneers where a call cannot
//! reach), so the object carries no relocations and its code pages stay clean
//! when mapped.

use crate::compile::{CompiledFunc, CompiledModule, RelocTarget};
use crate::{isa, CompileError, CompileOptions};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::isa::TargetIsa;
use object::write::{Object, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};
use target_lexicon::Triple;
use wasmc_format::addrmap::{AddrMapBuilder, NO_WASM_OFFSET};
use wasmc_format::builtins::Builtin;
use wasmc_format::funcs;
use wasmc_format::header::{content_hash, encode_meta, encode_module_info};
use wasmc_format::sections::{self, SectionId, SECTIONS};
use wasmc_format::segments::DataLayout;
use wasmc_format::stack_map::StackMapBuilder;
use wasmc_format::trap::TrapTableBuilder;
use wasmc_format::MemoryLayout;
use wasmc_format::{
    ArtifactHeader, CodeRange, CodegenSettings, DefinedFunc, FuncInfo, ModuleInfo, TypeTrampolines,
};

fn architecture(t: &Triple) -> Result<(Architecture, &'static str), CompileError> {
    use target_lexicon::Architecture as A;
    Ok(match t.architecture {
        A::X86_64 => (Architecture::X86_64, "x86_64"),
        A::Aarch64(_) => (Architecture::Aarch64, "aarch64"),
        A::Riscv64(_) => (Architecture::Riscv64, "riscv64"),
        ref other => {
            return Err(CompileError::Target(format!(
                "no object writer for architecture {other}"
            )))
        }
    })
}

fn os_name(t: &Triple) -> String {
    match t.operating_system {
        target_lexicon::OperatingSystem::Linux => "linux".into(),
        target_lexicon::OperatingSystem::Darwin => "macos".into(),
        ref other => other.to_string(),
    }
}

fn range(offset: u64, len: usize) -> Result<CodeRange, CompileError> {
    let offset = u32::try_from(offset)
        .map_err(|_| CompileError::Unsupported("more than 4 GiB of code".into()))?;
    Ok(CodeRange {
        offset,
        len: len as u32,
    })
}

/// Writes the artifact for a compiled module.
pub fn emit(
    isa: &dyn TargetIsa,
    opts: &CompileOptions,
    mut info: ModuleInfo,
    mut func_infos: Vec<FuncInfo>,
    data: DataLayout,
    module_features: wasmc_format::WasmFeatures,
    compiled: CompiledModule,
) -> Result<Vec<u8>, CompileError> {
    let DataLayout {
        mut segments,
        mut data,
        ..
    } = data;
    let CompiledModule {
        funcs,
        builtins,
        type_to_sig,
        entry,
        host,
    } = compiled;
    let wasm_features = funcs
        .iter()
        .fold(module_features, |acc, f| acc.union(f.features));
    let nfuncs = funcs.len();
    let nbuiltins = builtins.len();
    let units: Vec<&CompiledFunc> = funcs
        .iter()
        .chain(builtins.iter().map(|(_, f)| f))
        .chain(&entry)
        .chain(&host)
        .collect();

    let mut builtin_label = [None; Builtin::COUNT];
    for (i, (b, _)) in builtins.iter().enumerate() {
        builtin_label[b.index() as usize] = Some(nfuncs + i);
    }

    // Lay out .text, resolving each unit's calls right after it is placed so
    // that the builder can insert veneers in time.
    let mut text = isa.text_section_builder(units.len());
    let mut ctrl = ControlPlane::default();
    let mut offsets = Vec::with_capacity(units.len());
    let first_func = info.num_imported_funcs;
    for (i, unit) in units.iter().enumerate() {
        let off = text.append(true, &unit.code, unit.align, &mut ctrl);
        offsets.push(off);
        for r in &unit.relocs {
            let label = match r.target {
                RelocTarget::WasmFunc(f) => (f - first_func) as usize,
                RelocTarget::Builtin(b) => builtin_label
                    .get(b as usize)
                    .copied()
                    .flatten()
                    .expect("every called builtin has a trampoline"),
            };
            if !text.resolve_reloc(off + u64::from(r.offset), r.kind, r.addend, label) {
                return Err(CompileError::Codegen {
                    what: format!("code unit {i}"),
                    message: format!("cannot resolve relocation {:?} at {:#x}", r.kind, r.offset),
                });
            }
        }
    }
    let mut text = text.finish(&mut ctrl);

    // Tables, with offsets relative to .text.
    let mut traps = TrapTableBuilder::default();
    let mut stack_maps = StackMapBuilder::default();
    let mut addrmap = AddrMapBuilder::default();
    for (unit, off) in units.iter().zip(&offsets) {
        let off = *off as u32;
        for (o, code) in &unit.traps {
            traps.push(off + o, *code);
        }
        for (ret, span, slots) in &unit.stack_maps {
            stack_maps.push(off + ret, *span, slots.clone());
        }
        addrmap.push(off, NO_WASM_OFFSET);
        for (o, w) in &unit.srclocs {
            addrmap.push(off + o, *w);
        }
    }

    // Fill in code locations.
    for (i, f) in funcs.iter().enumerate() {
        let index = first_func + i as u32;
        func_infos[index as usize].code = Some(DefinedFunc {
            range: range(offsets[i], f.code.len())?,
            wasm_offset: f.srclocs.first().map_or(0, |s| s.1),
        });
    }
    info.builtin_trampolines = vec![None; Builtin::COUNT];
    for (i, (b, f)) in builtins.iter().enumerate() {
        info.builtin_trampolines[b.index() as usize] =
            Some(range(offsets[nfuncs + i], f.code.len())?);
    }
    let entry_base = nfuncs + nbuiltins;
    let host_base = entry_base + entry.len();
    info.trampolines = type_to_sig
        .iter()
        .map(|&s| {
            Ok(TypeTrampolines {
                entry: range(offsets[entry_base + s], entry[s].code.len())?,
                host: range(offsets[host_base + s], host[s].code.len())?,
            })
        })
        .collect::<Result<_, CompileError>>()?;

    let mut traps = traps.finish();
    let mut stack_maps = stack_maps.finish();
    let mut addrmap = addrmap.finish();
    let mut funcs_section = funcs::encode_funcs(&func_infos);
    let mut names_section = funcs::encode_names(&func_infos);
    let info_bytes = encode_module_info(&info);
    let triple = isa.triple().clone();
    let (arch, arch_name) = architecture(&triple)?;
    let mut header = ArtifactHeader {
        compiler_version: crate::VERSION.to_string(),
        triple: triple.to_string(),
        arch: arch_name.to_string(),
        os: os_name(&triple),
        pointer_bytes: isa.pointer_bytes(),
        cpu: opts.cpu.to_string(),
        cpu_features: isa::cpu_features(isa),
        settings: CodegenSettings {
            opt_level: opts.opt_level,
            memory: MemoryLayout::of(opts.memory),
            interruption: opts.interruption,
            cranelift_flags: isa::flag_strings(isa),
        },
        wasm_features,
        content_hash: [0; 32],
    };
    // Every section's bytes but `.wasmc.meta`, which holds the hash.
    let contents = |id: SectionId| -> &[u8] {
        match id {
            SectionId::Text => &text,
            SectionId::Meta => &[],
            SectionId::Funcs => &funcs_section,
            SectionId::Names => &names_section,
            SectionId::Traps => &traps,
            SectionId::StackMaps => &stack_maps,
            SectionId::AddrMap => &addrmap,
            SectionId::Segments => &segments,
            SectionId::Data => &data,
            SectionId::Sig => &[],
        }
    };
    header.content_hash = content_hash(&header, contents, &info_bytes);
    let mut meta = encode_meta(&header, &info);
    // An empty signature slot, so that signing later fills it in place.
    let mut sig = vec![0; wasmc_format::signature::SIG_SECTION_LEN];

    // The sections in `SECTIONS` order, each with its alignment.
    let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
    let mut ids = Vec::with_capacity(SECTIONS.len());
    for spec in &SECTIONS {
        let bytes = std::mem::take(match spec.id {
            SectionId::Text => &mut text,
            SectionId::Meta => &mut meta,
            SectionId::Funcs => &mut funcs_section,
            SectionId::Names => &mut names_section,
            SectionId::Traps => &mut traps,
            SectionId::StackMaps => &mut stack_maps,
            SectionId::AddrMap => &mut addrmap,
            SectionId::Segments => &mut segments,
            SectionId::Data => &mut data,
            SectionId::Sig => &mut sig,
        });
        let kind = match spec.id {
            SectionId::Text => SectionKind::Text,
            _ => SectionKind::ReadOnlyData,
        };
        let id = obj.add_section(Vec::new(), spec.name.as_bytes().to_vec(), kind);
        obj.section_mut(id).set_data(bytes, spec.align);
        ids.push(id);
    }
    let text_id = ids[SectionId::Text as usize];
    let add_symbol = |obj: &mut Object, name: String, r: CodeRange| {
        obj.add_symbol(Symbol {
            name: name.into_bytes(),
            value: u64::from(r.offset),
            size: u64::from(r.len),
            kind: SymbolKind::Text,
            scope: SymbolScope::Compilation,
            weak: false,
            section: SymbolSection::Section(text_id),
            flags: SymbolFlags::None,
        });
    };
    for (index, f) in func_infos.iter().enumerate().skip(first_func as usize) {
        let code = f.code.as_ref().expect("defined function has code");
        let symbol = sections::func_symbol(index as u32, f.name.as_deref());
        add_symbol(&mut obj, symbol, code.range);
    }
    for (b, r) in Builtin::ALL.iter().zip(&info.builtin_trampolines) {
        if let Some(r) = r {
            add_symbol(&mut obj, sections::builtin_trampoline_symbol(b.name()), *r);
        }
    }
    let mut emitted = std::collections::HashSet::new();
    for (t, &s) in type_to_sig.iter().enumerate() {
        if emitted.insert(s) {
            let tr = info.trampolines[t];
            add_symbol(
                &mut obj,
                sections::entry_trampoline_symbol(t as u32),
                tr.entry,
            );
            add_symbol(
                &mut obj,
                sections::host_trampoline_symbol(t as u32),
                tr.host,
            );
        }
    }
    obj.write().map_err(|e| CompileError::Codegen {
        what: "object file".into(),
        message: e.to_string(),
    })
}
