//! wasmc-wasi: WASI preview 1 (`wasi_snapshot_preview1`) for a
//! [`wasmc_loader::Linker`].
//!
//! Programs built by standard toolchains (clang with wasi-libc, Rust's
//! `wasm32-wasip1`, AssemblyScript) import `wasi_snapshot_preview1`.
//! [`add_to_linker`] defines all 46 of its functions; a [`WasiCtx`] holds
//! what they act on: arguments, environment, stdin/stdout/stderr (inherited,
//! or in-memory pipes for embedders: [`pipe`]), preopened directories,
//! clocks, randomness and the file-descriptor table.
//!
//! The implementation is `wasi-common`, Wasmtime's runtime-independent
//! preview-1 context, with wiggle's guest-memory layer; this crate is only
//! the glue between its generated functions and the loader's host
//! functions (`preview1.rs`). Paths are resolved by `cap-std`: a path never
//! escapes its preopened directory, whether through `..`, an absolute path
//! or a symlink. The loader itself knows nothing of WASI: a service that
//! does not want it does not link this crate.
//!
//! ```no_run
//! use wasmc_loader::{Engine, Linker, Module, Store};
//! use wasmc_wasi::WasiCtxBuilder;
//!
//! let engine = Engine::default();
//! let module = Module::from_file(&engine, "hello.o")?;
//! let wasi = WasiCtxBuilder::new()
//!     .inherit_stdio()
//!     .args(&["hello".to_string()])?
//!     .preopened_dir(wasmc_wasi::open_dir("data")?, "/data")?
//!     .build();
//! let wasi = wasmc_wasi::SharedWasiCtx::new(wasi);
//! let mut linker = Linker::new(&engine);
//! wasmc_wasi::add_to_linker(&mut linker, &wasi)?;
//! let mut store = Store::new(&engine, ());
//! let instance = linker.instantiate(&mut store, &module)?;
//! let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//! match start.call(&mut store, ()) {
//!     Ok(()) => {}
//!     Err(e) => match wasmc_wasi::exit_code(&e) {
//!         Some(code) => std::process::exit(code),
//!         None => return Err(e.into()),
//!     },
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `proc_exit(code)` unwinds the guest: the call into Wasm returns
//! `Err(Error::Host(I32Exit(code)))`, which [`exit_code`] recognises.
//!
//! The context is shared by the host functions of a linker through a
//! [`SharedWasiCtx`] (a mutex they lock per call) captured by the host
//! functions, not kept in the store's data, so [`add_to_linker`] works for a
//! `Linker<T>` of any `T`: one linker per program run.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod preview1;

use std::path::Path;
use wasmc_loader::Error;

pub use preview1::{add_to_linker, SharedWasiCtx, FUNCTIONS, MODULE};
pub use wasi_common::pipe;
pub use wasi_common::sync::WasiCtxBuilder;
pub use wasi_common::{I32Exit, WasiCtx};

/// Opens a host directory for [`WasiCtxBuilder::preopened_dir`]. This is
/// the one use of ambient authority: everything the guest reaches through
/// the preopen is resolved beneath it by `cap-std`.
pub fn open_dir(host: impl AsRef<Path>) -> std::io::Result<cap_std::fs::Dir> {
    cap_std::fs::Dir::open_ambient_dir(host, cap_std::ambient_authority())
}

/// The status given to `proc_exit`, if `err` is the guest exiting (rather
/// than a trap or another failure).
pub fn exit_code(err: &Error) -> Option<i32> {
    match err {
        Error::Host(e) => e.downcast_ref::<I32Exit>().map(|e| e.0),
        _ => None,
    }
}
