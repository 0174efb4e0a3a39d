//! The wasmc artifact contract: every fact that the compiler and the loader must
//! agree on, defined once.
//!
//! The compiler writes artifacts with the builders in this crate and the loader
//! reads them with the readers beside them. Nothing here runs Wasm or knows about
//! Cranelift; the types are plain data so that `wasmc inspect` and the loader can
//! use them without a compiler.
//!
//! - [`sections`]: the section table ([`sections::SECTIONS`]: names,
//!   alignment, hash coverage and order) and symbol names.
//! - [`header`]: the fixed-layout prefix of `.wasmc.meta` that says whether a
//!   host can load an artifact.
//! - [`memory`]: the memory strategies and the guard and reservation sizes.
//! - [`signature`]: the `.wasmc.sig` slot and what an artifact signature
//!   signs.
//! - [`cpu`]: the CPU features an artifact may rely on, by architecture.
//! - [`module_info`]: the module's metadata ([`ModuleInfo`]).
//! - [`vmoffsets`]: the VMContext layout and every other runtime structure that
//!   compiled code touches.
//! - [`builtins`]: the libcall list (index = position).
//! - [`features`]: the WebAssembly features (proposals), their names and bits.
//! - [`funcs`]: the function index space (`.wasmc.funcs` records and
//!   `.wasmc.names`), read in place so that loading does not grow with the
//!   number of functions.
//! - [`segments`]: the data segments (`.wasmc.segments` records, read in
//!   place) and the memory images laid out in `.wasmc.data`.
//! - [`trap`], [`stack_map`], [`addrmap`]: per-PC tables, each with a builder
//!   and a zero-copy reader that bounds-checks everything it reads, and a
//!   `validate` that checks every entry against `.text` (sorted, inside the
//!   code, indices and slot offsets in range). The loader runs them when it
//!   parses an artifact and `wasmc inspect` reports what they find.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod addrmap;
pub mod blocks;
pub mod builtins;
pub mod bytes;
pub mod cpu;
pub mod features;
pub mod funcs;
pub mod header;
pub mod memory;
pub mod module_info;
pub mod sections;
pub mod segments;
pub mod signature;
pub mod stack_map;
pub mod trap;
pub mod vmoffsets;

pub use features::WasmFeatures;
pub use header::{ArtifactHeader, CodegenSettings, Interruption, OptLevel};
pub use memory::{MemoryLayout, MemoryStrategy};
pub use module_info::*;
pub use trap::TrapCode;
pub use vmoffsets::VMOffsets;

/// Errors from reading artifact bytes. Each message names the structure and the
/// field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A table or header is shorter than its fields say.
    #[error("{what}: truncated ({detail})")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// What was being read.
        detail: String,
    },
    /// A value is out of its allowed range.
    #[error("{what}: {detail}")]
    Invalid {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The artifact was written by an incompatible format version.
    #[error("artifact format version {found}, this loader supports version {supported}")]
    Version {
        /// Version found in the artifact.
        found: u32,
        /// Version this build understands.
        supported: u32,
    },
    /// One entry of a per-PC table or of the function table is wrong.
    #[error("section `{section}`: entry {entry}: {detail}")]
    Entry {
        /// ELF name of the section.
        section: &'static str,
        /// Index of the entry in the section.
        entry: u64,
        /// What is wrong with it.
        detail: String,
    },
    /// The metadata could not be decoded.
    #[error("{what}: cannot decode: {detail}")]
    Decode {
        /// Which structure.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
}

/// Size in bytes of one value slot in the array that entry trampolines and
/// host-call trampolines use to pass arguments and results. Every Wasm value,
/// including `v128`, fits one slot; scalars sit at the slot's start
/// (little-endian), references are pointers.
pub const VALUE_SLOT_SIZE: u32 = 16;

/// Wasm page size in bytes.
pub const WASM_PAGE_SIZE: u64 = 65536;

/// Largest number of pages a 32-bit memory can have.
pub const WASM32_MAX_PAGES: u64 = 65536;

/// Largest number of pages a 64-bit memory (memory64) can have.
pub const WASM64_MAX_PAGES: u64 = 1 << 48;
