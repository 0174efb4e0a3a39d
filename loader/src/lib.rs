//! wasmc-loader: the wasmc runtime.
//!
//! Loads artifacts written by the wasmc compiler (ELF relocatable objects with
//! `.wasmc.*` sections, see [`wasmc_format`]), checks that they fit this host,
//! links them against host functions and other instances, instantiates them and
//! calls their exports. It carries no compiler.
//!
//! ```
//! use wasmc_loader::{Caller, Engine, Linker, Module, Store};
//! # let artifact = wasmc_compiler::compile(br#"(module
//! #   (import "host" "hello" (func $hello (param i32)))
//! #   (func (export "run") i32.const 7 call $hello))"#, &Default::default()).unwrap();
//! let engine = Engine::default();
//! let module = Module::from_bytes(&engine, &artifact)?; // or Module::from_file
//! let mut linker = Linker::<Vec<i32>>::new(&engine);
//! linker.func_wrap("host", "hello", |mut caller: Caller<'_, Vec<i32>>, x: i32| {
//!     caller.data_mut().push(x);
//! })?;
//! let mut store = Store::new(&engine, Vec::new());
//! let instance = linker.instantiate(&mut store, &module)?;
//! instance.get_typed_func::<(), ()>(&mut store, "run")?.call(&mut store, ())?;
//! assert_eq!(store.data(), &[7]);
//! # Ok::<(), wasmc_loader::Error>(())
//! ```
//!
//! # Two layers
//!
//! - **The public API** (the files directly in `src/`): [`Engine`] and
//!   [`Config`], [`Module`], [`Store`] (with its host data, [`Caller`],
//!   [`StoreContext`], [`StoreContextMut`], [`ResourceLimiter`]),
//!   [`Linker`] and [`InstancePre`], [`Instance`], [`Func`] (with [`TypedFunc`] in
//!   `func/typed.rs` and [`Func::wrap`] in `func/wrap.rs`), [`Memory`],
//!   [`Table`], [`Global`], [`Val`], [`ExternRef`], the errors and
//!   [`Trap`]. The handles are store indices; they check their arguments,
//!   turn [`Val`]s into the runtime's values and call into `vm`.
//!   [`artifact::ParsedArtifact`] reads an artifact without loading it (for
//!   `wasmc inspect`).
//! - **The runtime** (`src/vm/`, see its module docs for a map): everything
//!   compiled code touches — the `#[repr(C)]` VMContext structures, the
//!   store's runtime state, instances, memories, tables and globals, code
//!   memory and the code registry, entering Wasm and the host shim,
//!   builtins, trap handling with the one frame walker that backtraces and
//!   the collector share, the externref collector, and the OS layer. `vm`
//!   never imports the API layer; it calls host functions through its
//!   `HostCall` trait.
//!
//! # Unsafe code
//!
//! All `unsafe` blocks are in `vm/` except these, each with its reason:
//!
//! - `module.rs`, [`Module::from_file_unchecked`]: an `unsafe fn` by design
//!   (the caller vouches for the file, as for Wasmtime's `deserialize`); its
//!   one block passes that contract on to the runtime's file mapping.
//!
//! Otherwise the API layer has no `unsafe` block. The typed paths
//!   (`TypedFunc::call`, `Func::wrap`) read and write value slots through
//!   the runtime's `ValReader` / `ValWriter`, which know each slot's type,
//!   and the handles of tables and globals call the store's type-checked
//!   operations.
//!
//! Each `unsafe` block states the fact that makes it sound in a `// SAFETY:`
//! comment (enforced by `clippy::undocumented_unsafe_blocks`); each
//! `unsafe fn` has a `# Safety` section saying what its caller must ensure.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod artifact;
mod callsite;
mod engine;
mod error;
mod externref;
mod func;
mod global;
mod instance;
mod linker;
mod memory;
mod module;
mod store;
mod table;
mod trap;
pub mod trust;
mod types;
mod values;
mod vm;

pub use engine::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
pub use error::{Error, InstantiationError, LinkError, LoadError};
pub use externref::ExternRef;
pub use func::{
    Caller, Func, HostFn, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy,
};
pub use global::Global;
pub use instance::Instance;
pub use linker::{InstancePre, Linker};
pub use memory::Memory;
pub use module::Module;
pub use store::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut, StoreOpaque};
pub use table::Table;
pub use trap::{FrameInfo, MemoryFault, Trap, TrapCode};
pub use trust::{TrustPolicy, Verified};
pub use types::{
    ExportType, ExternType, FuncType, GlobalType, ImportType, MemoryType, RefType, TableType,
    ValType,
};
pub use values::{Extern, Val};
#[doc(hidden)]
pub use vm::func::HostFuncParts;
pub use vm::gc::GcStats;
pub use vm::store::{
    ResourceLimiter, DEFAULT_INSTANCE_LIMIT, DEFAULT_MEMORY_LIMIT, DEFAULT_TABLE_LIMIT,
};
#[doc(hidden)]
pub use vm::values::{ValReader, ValWriter};
pub use wasmc_format as format;

/// The README's examples, compiled as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The artifact builder of the tests (`tests/support/`), for the unit tests
/// of `artifact.rs`.
#[cfg(test)]
#[path = "../tests/support/artifact_builder.rs"]
mod testutil;
