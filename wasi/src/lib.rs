//! wasmc-wasi: WASI preview 1 (`wasi_snapshot_preview1`) for a
//! [`wasmc_loader::Linker`].
//!
//! Programs built by standard toolchains (clang with wasi-libc, Rust's
//! `wasm32-wasip1`, AssemblyScript) import `wasi_snapshot_preview1`.
//! [`add_to_linker`] defines all 46 of its functions in a `Linker<T>` whose
//! `T` holds a [`WasiCtx`], found through a getter as in Wasmtime
//! (`add_to_linker(&mut linker, |s: &mut MyState| &mut s.wasi)`). The
//! context holds what the functions act on: arguments, environment,
//! stdin/stdout/stderr (inherited, or in-memory pipes for embedders:
//! [`pipe`]), preopened directories, clocks, randomness and the
//! file-descriptor table.
//!
//! The implementation is `wasi-common`, Wasmtime's runtime-independent
//! preview-1 context, with wiggle's guest-memory layer; this crate is only
//! the glue between its generated functions and the loader's host
//! functions (`preview1.rs`). Paths are resolved by `cap-std`: a path never
//! escapes its preopened directory, whether through `..`, an absolute path
//! or a symlink. The loader itself knows nothing of WASI: a service that
//! does not want it does not link this crate.
//!
//! ```
//! use wasmc_loader::{Engine, Linker, Module, Store};
//! use wasmc_wasi::{pipe::WritePipe, WasiCtx, WasiCtxBuilder};
//!
//! struct MyState {
//!     wasi: WasiCtx,
//! }
//!
//! # let artifact = wasmc_compiler::compile(br#"(module
//! #   (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
//! #   (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
//! #   (memory (export "memory") 1)
//! #   (data (i32.const 0) "\10\00\00\00\0d\00\00\00")
//! #   (data (i32.const 16) "Hello, WASI!\0a")
//! #   (func (export "_start")
//! #     (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
//! #     (call $exit (i32.const 3))))"#, &Default::default()).unwrap();
//! let engine = Engine::default();
//! let module = Module::from_bytes(&engine, &artifact)?; // or Module::from_file
//! let mut linker = Linker::<MyState>::new(&engine);
//! wasmc_wasi::add_to_linker(&mut linker, |s: &mut MyState| &mut s.wasi)?;
//!
//! let stdout = WritePipe::new_in_memory(); // or .inherit_stdio()
//! let wasi = WasiCtxBuilder::new()
//!     .args(&["hello".to_string()])?
//!     .env("GREETING", "hi")?
//!     .stdout(Box::new(stdout.clone()))
//!     // .preopened_dir(wasmc_wasi::open_dir("data")?, "/data")?
//!     .build();
//! let mut store = Store::new(&engine, MyState { wasi });
//! let instance = linker.instantiate(&mut store, &module)?;
//! let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//! let status = match start.call(&mut store, ()) {
//!     Ok(()) => 0,
//!     Err(e) => wasmc_wasi::exit_code(&e).ok_or(e)?, // a trap is an error
//! };
//! assert_eq!(status, 3);
//! drop(store); // the context, and its end of the pipe, go with the store
//! let out = stdout.try_into_inner().expect("sole owner").into_inner();
//! assert_eq!(out, b"Hello, WASI!\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `proc_exit(code)` unwinds the guest: the call into Wasm returns
//! `Err(Error::Host(I32Exit(code)))`, which [`exit_code`] recognises.
//!
//! Each store holds its own context, so one linker (or one
//! [`wasmc_loader::InstancePre`]) runs any number of programs, each with
//! its own arguments, environment, stdio and preopens, on any threads:
//! `Store<T>` is `Send` when `T` is, and [`WasiCtx`] is `Send + Sync`.
//! A linker whose store data cannot hold a context can still share one
//! context between all its instances instead: [`add_to_linker_shared`]
//! with a [`SharedWasiCtx`] (a mutex the functions lock per call, captured
//! by them). Both forms are one implementation of the 46 functions
//! (`preview1.rs`), differing only in where a call finds its context.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod preview1;

use std::path::Path;
use wasmc_loader::Error;

pub use preview1::{add_to_linker, add_to_linker_shared, SharedWasiCtx, FUNCTIONS, MODULE};
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
