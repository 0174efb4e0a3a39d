//! wasmc-loader: the wasmc runtime.
//!
//! Loads artifacts written by the wasmc compiler (ELF relocatable objects with
//! `.wasmc.*` sections, see [`wasmc_format`]), checks that they fit this host,
//! links them against host functions and other instances, instantiates them and
//! calls their exports. It carries no compiler.
//!
//! The API is shaped like Wasmtime's: [`Module`], [`Store`], [`Linker`],
//! [`Instance`], [`Func`], [`TypedFunc`], [`Memory`], [`Table`], [`Global`],
//! [`ExternRef`], [`Val`], [`Trap`]. [`artifact::ParsedArtifact`] reads an
//! artifact without loading it (for `wasmc inspect`).
//!
//! Unsafe code lives in `sys`, `code`, `vmcontext`, `traphandlers`, `func`
//! (the entry call and host shim), `libcalls`, `externref` and the
//! definitions' owners (`memory`, `table`, `global`, `instance`); each
//! `unsafe` block states why it is sound.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod artifact;
mod code;
mod error;
mod externref;
mod func;
mod gc;
mod global;
mod instance;
mod libcalls;
mod linker;
mod memory;
mod store;
mod sys;
mod table;
mod trap;
mod traphandlers;
mod types;
mod values;
mod vmcontext;
mod wrap;

pub use code::Module;
pub use error::{Error, InstantiationError, LinkError, LoadError};
pub use externref::ExternRef;
#[doc(hidden)]
pub use func::HostFuncParts;
pub use func::{Caller, Func, HostFn, TypedFunc, WasmParams, WasmResults, WasmTy};
pub use gc::GcStats;
pub use global::Global;
pub use instance::Instance;
pub use linker::Linker;
pub use memory::Memory;
pub use store::{AsContext, AsContextMut, Store, StoreOpaque};
pub use table::Table;
pub use trap::{FrameInfo, Trap, TrapCode};
pub use types::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};
pub use values::{Extern, Val};
#[doc(hidden)]
pub use vmcontext::ValRaw;
pub use wasmc_format as format;
pub use wrap::{IntoFunc, WasmRet};

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests_mock;
#[cfg(test)]
mod testutil;
