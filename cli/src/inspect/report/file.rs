//! The file-level parts of the report: the artifact header, whether this
//! host can load it, the ELF sections and the relocations.

use super::schema::{
    HeaderReport, HostReport, MemoryStrategyReport, MismatchReport, RelocationReport,
    SectionReport, SignatureReport,
};
use wasmc_format::header::FORMAT_VERSION;
use wasmc_format::{ArtifactHeader, MemoryStrategy};
use wasmc_loader::artifact::ParsedArtifact;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The artifact header.
pub(super) fn header(h: &ArtifactHeader) -> HeaderReport {
    HeaderReport {
        format_version: FORMAT_VERSION,
        compiler_version: h.compiler_version.clone(),
        triple: h.triple.clone(),
        arch: h.arch.clone(),
        os: h.os.clone(),
        pointer_bytes: h.pointer_bytes,
        cpu: h.cpu.clone(),
        cpu_features: h.cpu_features.clone(),
        opt_level: h.settings.opt_level.to_string(),
        memory_strategy: match MemoryStrategy::from_tag(h.settings.memory.strategy) {
            Some(MemoryStrategy::Guard) => MemoryStrategyReport::Guard {
                reservation: h.settings.memory.reservation,
                guard: h.settings.memory.guard,
            },
            Some(MemoryStrategy::Explicit) => MemoryStrategyReport::Explicit,
            None => MemoryStrategyReport::Unknown {
                tag: h.settings.memory.strategy,
            },
        },
        interruption: h.settings.interruption.to_string(),
        cranelift_flags: h.settings.cranelift_flags.clone(),
        wasm_features: h.wasm_features.names(),
        content_hash: hex(&h.content_hash),
    }
}

/// Whether this host can load the artifact: the loader's own host check,
/// relocation check, memory-strategy check and content-hash check.
pub(super) fn host(a: &ParsedArtifact<'_>) -> HostReport {
    let host_mismatches = a.check_host();
    let relocation_error = a.check_relocations().err().map(|e| e.to_string());
    let content_hash_ok = a.verify_content_hash().is_ok();
    let sandbox_error = a.check_sandbox().err().map(|e| e.to_string());
    let signature = match wasmc_loader::trust::signer(a) {
        Ok(key_id) => SignatureReport {
            signed: key_id.is_some(),
            key_id,
            error: None,
        },
        Err(e) => SignatureReport {
            signed: false,
            key_id: None,
            error: Some(e.to_string()),
        },
    };
    HostReport {
        loadable: host_mismatches.is_empty()
            && relocation_error.is_none()
            && content_hash_ok
            && sandbox_error.is_none()
            && signature.error.is_none(),
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
        sandbox_error,
        signature,
    }
}

/// Every ELF section, in file order.
pub(super) fn sections(a: &ParsedArtifact<'_>) -> Vec<SectionReport> {
    a.sections()
        .iter()
        .map(|s| SectionReport {
            name: s.name.clone(),
            offset: s.file_offset,
            size: s.size,
            align: s.align,
        })
        .collect()
}

/// Every relocation in the file.
pub(super) fn relocations(a: &ParsedArtifact<'_>) -> Vec<RelocationReport> {
    a.relocations()
        .iter()
        .map(|r| RelocationReport {
            section: r.section.clone(),
            offset: r.offset,
            kind: r.kind.clone(),
            symbol: r.symbol.clone(),
            addend: r.addend,
        })
        .collect()
}
