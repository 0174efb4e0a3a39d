//! Target ISA selection: triple, CPU features and Cranelift settings, and the
//! list of CPU features the generated code depends on (for the header).

use crate::{CompileError, CompileOptions};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use std::str::FromStr;
use target_lexicon::{Architecture, Triple};
use wasmc_format::cpu;
use wasmc_format::OptLevel;

/// Which CPU features generated code may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuSpec {
    /// A portable baseline: x86-64-v2 on x86-64 (SSE4.2, POPCNT), the
    /// architecture's base on others.
    Baseline,
    /// Everything the compiling machine has (host target only).
    Native,
    /// The baseline plus the named features or Cranelift presets, e.g.
    /// `avx2,bmi2` or `x86-64-v3`.
    Features(Vec<String>),
}

impl FromStr for CpuSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "baseline" => CpuSpec::Baseline,
            "native" => CpuSpec::Native,
            list => CpuSpec::Features(
                list.split(',')
                    .map(|f| f.trim().trim_start_matches('+').to_string())
                    .filter(|f| !f.is_empty())
                    .collect(),
            ),
        })
    }
}

impl std::fmt::Display for CpuSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CpuSpec::Baseline => f.write_str("baseline"),
            CpuSpec::Native => f.write_str("native"),
            CpuSpec::Features(v) => f.write_str(&v.join(",")),
        }
    }
}

fn target_err(e: impl std::fmt::Display) -> CompileError {
    CompileError::Target(e.to_string())
}

/// The target triple of `opts`.
pub fn triple(opts: &CompileOptions) -> Result<Triple, CompileError> {
    match &opts.target {
        None => Ok(Triple::host()),
        Some(t) => {
            Triple::from_str(t).map_err(|e| target_err(format!("bad target triple `{t}`: {e}")))
        }
    }
}

/// Builds the Cranelift ISA for `opts`.
pub fn build(opts: &CompileOptions) -> Result<OwnedTargetIsa, CompileError> {
    let triple = triple(opts)?;
    if triple.endianness().ok() != Some(target_lexicon::Endianness::Little) {
        return Err(target_err(format!(
            "{triple}: only little-endian targets are supported"
        )));
    }
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, k: &str, v: &str| {
        flags
            .set(k, v)
            .map_err(|e| target_err(format!("setting {k}={v}: {e}")))
    };
    set(
        &mut flags,
        "opt_level",
        match opts.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        },
    )?;
    // Frame pointers let the runtime walk Wasm frames without an unwinder.
    set(&mut flags, "preserve_frame_pointers", "true")?;
    // Stack overflow is caught by the prologue's stack-limit check.
    set(&mut flags, "enable_probestack", "false")?;
    set(&mut flags, "unwind_info", "false")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let flags = settings::Flags::new(flags);

    let mut builder = match opts.cpu {
        CpuSpec::Native => {
            if opts.target.is_some() && triple != Triple::host() {
                return Err(target_err("--cpu native needs the host target"));
            }
            cranelift_native::builder().map_err(target_err)?
        }
        _ => isa::lookup(triple.clone()).map_err(|e| target_err(format!("{triple}: {e}")))?,
    };
    if triple.architecture == Architecture::X86_64 && opts.cpu != CpuSpec::Native {
        builder.enable("x86-64-v2").map_err(target_err)?;
    }
    if let CpuSpec::Features(list) = &opts.cpu {
        for f in list {
            if let Some(flags) =
                x86_level(f).filter(|_| triple.architecture == Architecture::X86_64)
            {
                for flag in flags {
                    builder.enable(flag).map_err(target_err)?;
                }
                continue;
            }
            let name = cpu::cranelift_flag(f).map_or_else(|| f.clone(), str::to_string);
            builder
                .enable(&name)
                .or_else(|_| builder.enable(&format!("has_{}", f.replace('.', ""))))
                .map_err(|_| target_err(format!("unknown CPU feature `{f}` for {triple}")))?;
        }
    }
    let isa = builder.finish(flags).map_err(target_err)?;
    if isa.triple().architecture == Architecture::X86_64
        && !cpu_features(&*isa).iter().any(|f| f == "sse4.1")
    {
        return Err(target_err(
            "wasmc needs SSE4.1 on x86-64 (Wasm SIMD and float rounding use it)",
        ));
    }
    Ok(isa)
}

/// The Cranelift flags of the x86-64 microarchitecture levels `x86-64-v3`
/// and `x86-64-v4` (psABI names, as `rustc -C target-cpu` takes them).
/// Cranelift 0.112 has no preset of the first name (its v3 preset is
/// misspelled `x84_64_v3`, and leaves out AVX), so both are spelled out;
/// the baseline already has v2.
fn x86_level(name: &str) -> Option<Vec<&'static str>> {
    const V3: &[&str] = &[
        "has_avx",
        "has_avx2",
        "has_bmi1",
        "has_bmi2",
        "has_fma",
        "has_lzcnt",
    ];
    // v4 is v3 plus the AVX-512 foundation and its DQ and VL extensions.
    const V4_MORE: &[&str] = &["has_avx512f", "has_avx512dq", "has_avx512vl"];
    match name {
        "x86-64-v3" => Some(V3.to_vec()),
        "x86-64-v4" => Some([V3, V4_MORE].concat()),
        _ => None,
    }
}

/// Rust target-feature names of the ISA features the code may use.
pub fn cpu_features(isa: &dyn isa::TargetIsa) -> Vec<String> {
    let mut out = Vec::new();
    for v in isa.isa_flags() {
        if v.as_bool() == Some(true) {
            if let Some(rust) = cpu::rust_name(v.name) {
                out.push(rust.to_string());
            }
        }
    }
    out
}

/// Every shared Cranelift flag as `name=value`.
pub fn flag_strings(isa: &dyn isa::TargetIsa) -> Vec<String> {
    isa.flags()
        .iter()
        .map(|v| format!("{}={}", v.name, v.value_string()))
        .collect()
}
