//! The loader's integration tests, one binary: the loader through the real
//! path (`.wat` source -> `wasmc_compiler::compile` -> artifact file or
//! bytes -> `Module::from_file` / `Module::from_bytes` -> instantiate ->
//! call), one module per topic:
//!
//! - `loading`: reading artifacts, host checks, corrupted files, mappings;
//! - `imports`, `calls`: instantiation, linking, segments, calls, host access;
//! - `traps`: trap codes, backtraces, stack overflow;
//! - `images`: memory images (copy-on-write data) against copying;
//! - `lazy_funcs`: function records made on first use, one identity each;
//! - `lazy_tables`: funcref table elements initialised on first use;
//! - `linker_funcs`: a linker's host functions, shared by the stores that
//!   instantiate them;
//! - `pooling`: the pooling allocator's reuse, limits and clean slots;
//! - `host`: host errors, panics, re-entry, faults outside Wasm;
//! - `threads`: concurrent stores over one module;
//! - `externref_gc`: the deferred-reference-counting collector;
//! - `wrap`: typed host functions and typed calls;
//! - `stack`: stack overflow on small thread stacks;
//! - `interrupt`: epoch deadlines and fuel;
//! - `split_borrow`: `Memory::data_and_store_mut`;
//! - `reuse_probes`: nothing of an instance survives into the next user of
//!   its memory, table or VMContext slot (issue 15, adversarial);
//! - `probes`: adversarial misuse of the embedding API (wrong arguments,
//!   foreign stores, panicking host code, limits at the edges);
//! - `probes2`: the host changing what running Wasm uses (memory growth,
//!   table entries, globals, fuel, deadlines), nested stores and a
//!   `Caller` sent to another thread, externref counts on every path,
//!   64-bit indices, wide and v128 signatures, limiter and engine caps.
//!
//! Most run for both `--bounds-checks guard` and `explicit` artifacts. Tests
//! that count process-wide state (`/proc/self/maps`) or must crash run in a
//! child process: the test binary re-runs itself with `--exact NAME` and the
//! environment variable [`CHILD_ENV`] set. The helpers below are shared by
//! the topic modules (`use super::*`).

mod calls;
mod embed;
mod externref_gc;
mod host;
mod images;
mod imports;
mod interrupt;
mod lazy_funcs;
mod lazy_tables;
mod linker_funcs;
mod loading;
mod pooling;
mod probes;
mod probes2;
mod reuse_probes;
mod split_borrow;
mod stack;
mod threads;
mod traps;
mod wrap;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmc_compiler::{CompileOptions, CpuSpec, MemoryStrategy};
use wasmc_loader::format::{FuncType, GlobalType, MemoryType, RefType, TableType, ValType};
use wasmc_loader::{
    Error, Extern, ExternRef, Func, Global, Instance, InstantiationError, LinkError, Linker,
    LoadError, Memory, Module, Store, Table, Trap, TrapCode, Val,
};

// ----- helpers -----

/// The engine every module and store of these tests is made with (a module
/// instantiates only in stores of its own engine).
fn engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}

/// Set in a child process to the job it should do.
const CHILD_ENV: &str = "WASMC_LOADER_TEST_CHILD";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bounds {
    Guard,
    Explicit,
}

const BOTH: [Bounds; 2] = [Bounds::Guard, Bounds::Explicit];

fn options(b: Bounds) -> CompileOptions {
    CompileOptions {
        memory: match b {
            Bounds::Guard => CompileOptions::default().memory,
            Bounds::Explicit => MemoryStrategy::Explicit,
        },
        ..CompileOptions::default()
    }
}

fn compile_with(wat: &str, opts: &CompileOptions) -> Vec<u8> {
    wasmc_compiler::compile(wat.as_bytes(), opts).unwrap_or_else(|e| panic!("compile: {e}"))
}

fn compile(wat: &str, b: Bounds) -> Vec<u8> {
    compile_with(wat, &options(b))
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "wasmc-loader-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `wat`, writes the artifact to a file and loads it from there.
fn load(wat: &str, b: Bounds) -> Module {
    let dir = TempDir::new("load");
    let path = dir.write("m.o", &compile(wat, b));
    Module::from_file(engine(), &path).unwrap_or_else(|e| panic!("from_file: {e}"))
}

/// Instantiates a module that has no imports.
fn instantiate(store: &mut Store<()>, m: &Module) -> Instance {
    Instance::new(&mut *store, m, &[]).unwrap_or_else(|e| panic!("instantiate: {e}"))
}

fn functype(params: &[ValType], results: &[ValType]) -> FuncType {
    FuncType {
        params: params.to_vec(),
        results: results.to_vec(),
    }
}

fn call_i32(
    store: &mut Store<()>,
    inst: &Instance,
    name: &str,
    args: &[Val],
) -> Result<i32, Error> {
    let f = inst
        .get_func(&mut *store, name)
        .unwrap_or_else(|| panic!("no export {name}"));
    let mut r = [Val::I32(0)];
    f.call(&mut *store, args, &mut r)?;
    Ok(r[0].i32().expect("an i32 result"))
}

/// The trap of `r`, failing the test if `r` is not one.
fn expect_trap<T: std::fmt::Debug>(r: Result<T, Error>) -> Trap {
    match r {
        Err(Error::Trap(t)) => t,
        other => panic!("expected a trap, got {other:?}"),
    }
}

fn frame_names(t: &Trap) -> Vec<String> {
    t.backtrace
        .iter()
        .map(|f| f.func_name.clone().unwrap_or_else(|| "?".into()))
        .collect()
}

/// Runs the test `name` of module `module` (its `module_path!()`) of this
/// binary in a child process with `CHILD_ENV=job`.
fn run_child(module: &str, name: &str, job: &str) -> std::process::Output {
    // Test names are module paths without the crate's name.
    let path = match module.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{name}"),
        None => name.to_string(),
    };
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &path, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, job)
        .output()
        .unwrap()
}

fn child_job() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}
