//! wasmc-compiler: compiles a WebAssembly module ahead of time into an ELF
//! relocatable object that `wasmc-loader` runs.
//!
//! [`compile`] is the whole pipeline: validate and translate the module
//! (`translate`), compile every function and trampoline with Cranelift in
//! parallel (`compile`), lay out `.text` with every call resolved and write the
//! object with its `.wasmc.*` sections (`emit`).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod compile;
mod convert;
mod emit;
pub mod features;
mod func_environ;
mod isa;
mod relaxed;
mod stack_maps;
mod trampolines;
mod translate;

pub use isa::CpuSpec;
pub use wasmc_format::{Interruption, MemoryStrategy, OptLevel, WasmFeatures};

/// Version of the compiler, recorded in every artifact header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How to compile.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Target triple; `None` for the host.
    pub target: Option<String>,
    /// CPU features the code may use.
    pub cpu: CpuSpec,
    /// Cranelift optimization level.
    pub opt_level: OptLevel,
    /// How memory accesses are bounds-checked; the default is
    /// [`MemoryStrategy::Guard`] (format's sizes).
    pub memory: MemoryStrategy,
    /// Compile threads; `None` for one per core, and never more than the
    /// cores. The output does not depend on it.
    pub threads: Option<usize>,
    /// WebAssembly features the module may use. Default: every feature
    /// (`WasmFeatures::ALL`), as Wasmtime enables the proposals it implements;
    /// a module that uses one wasmc does not implement yet
    /// (outside [`features::SUPPORTED`]) is refused with "not supported by
    /// wasmc", one that uses a feature turned off here is invalid.
    pub features: WasmFeatures,
    /// Epoch checks and fuel counting compiled into the code (recorded in
    /// the artifact header). Default: none.
    pub interruption: Interruption,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            target: None,
            cpu: CpuSpec::Baseline,
            opt_level: OptLevel::Speed,
            memory: MemoryStrategy::Guard,
            threads: None,
            features: WasmFeatures::ALL,
            interruption: Interruption::default(),
        }
    }
}

/// Why a module could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The module is not valid WebAssembly.
    #[error("invalid WebAssembly at offset {offset:#x}: {message}")]
    Invalid {
        /// Byte offset in the module.
        offset: usize,
        /// The validator's message.
        message: String,
    },
    /// The text format could not be parsed.
    #[error("cannot parse WebAssembly text: {0}")]
    Wat(String),
    /// The module uses something wasmc does not support.
    #[error("not supported by wasmc: {0}")]
    Unsupported(String),
    /// The module needs a WebAssembly proposal wasmc does not implement.
    #[error("not supported by wasmc: {proposal} (needed at offset {offset:#x})")]
    NotSupported {
        /// The proposal, e.g. `threads`.
        proposal: String,
        /// Byte offset in the module where it is first needed.
        offset: usize,
    },
    /// The module needs a feature the compile options turned off.
    #[error("WebAssembly feature `{feature}` is disabled by the compile options (needed at offset {offset:#x})")]
    Disabled {
        /// The feature's name (`wasmc_format::WasmFeatures` names).
        feature: String,
        /// Byte offset in the module where it is first needed.
        offset: usize,
    },
    /// The target or CPU options are not usable.
    #[error("target: {0}")]
    Target(String),
    /// Cranelift failed on a function.
    #[error("compiling {what}: {message}")]
    Codegen {
        /// Which function or trampoline.
        what: String,
        /// Cranelift's message.
        message: String,
    },
}

/// Compiles a module (binary, or text starting with `(`) into artifact bytes.
pub fn compile(wasm: &[u8], opts: &CompileOptions) -> Result<Vec<u8>, CompileError> {
    let binary;
    let wasm = if wasm.starts_with(b"\0asm") {
        wasm
    } else {
        binary = wat::parse_bytes(wasm).map_err(|e| CompileError::Wat(e.to_string()))?;
        &binary[..]
    };
    let isa = isa::build(opts)?;
    let translate::Translation {
        info,
        funcs,
        functions,
        data,
        features,
    } = translate::translate(wasm, opts.features).map_err(|e| explain(wasm, opts, e))?;
    let compiled = compile::compile_module(&*isa, &info, &funcs, functions, opts)
        .map_err(|e| explain(wasm, opts, e))?;
    emit::emit(&*isa, opts, info, funcs, data, features, compiled)
}

/// A validation error caused by a feature that is off or unsupported names
/// the feature (see [`features::explain`]).
fn explain(wasm: &[u8], opts: &CompileOptions, e: CompileError) -> CompileError {
    match e {
        CompileError::Invalid { .. } => features::explain(wasm, opts.features, e),
        e => e,
    }
}
