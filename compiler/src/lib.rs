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
mod func_environ;
mod isa;
mod trampolines;
mod translate;

pub use isa::CpuSpec;
pub use wasmc_format::{MemoryStrategy, OptLevel};

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
    /// Compile threads; `None` for one per core. The output does not depend on it.
    pub threads: Option<usize>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            target: None,
            cpu: CpuSpec::Baseline,
            opt_level: OptLevel::Speed,
            memory: MemoryStrategy::Guard,
            threads: None,
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
    /// The module uses a feature wasmc does not support.
    #[error("unsupported WebAssembly feature: {0}")]
    Unsupported(String),
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
    } = translate::translate(wasm)?;
    let compiled = compile::compile_module(&*isa, &info, &funcs, functions, opts)?;
    emit::emit(&*isa, opts, info, funcs, data, compiled)
}
