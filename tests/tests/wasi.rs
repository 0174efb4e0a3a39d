//! wasmc-wasi through the library API, as an embedder uses it: every
//! `wasi_snapshot_preview1` function is defined with its witx type, output
//! goes to in-memory pipes, `proc_exit` comes back as an exit code, and a
//! module without an exported memory gets a clear error.

use std::io::Cursor;
use std::sync::{Arc, RwLock};
use wasmc_compiler::CompileOptions;
use wasmc_loader::{Engine, Linker, Module, Store};
use wasmc_wasi::pipe::{ReadPipe, WritePipe};
use wasmc_wasi::{SharedWasiCtx, WasiCtxBuilder};

fn module(engine: &Engine, wat: &str) -> Module {
    let artifact = wasmc_compiler::compile(wat.as_bytes(), &CompileOptions::default()).unwrap();
    Module::from_bytes(engine, &artifact).unwrap()
}

/// The preview-1 ABI written out independently of the crate: every
/// function with its core-Wasm type.
const SIGNATURES: &[(&str, &str)] = &[
    ("args_get", "(param i32 i32) (result i32)"),
    ("args_sizes_get", "(param i32 i32) (result i32)"),
    ("environ_get", "(param i32 i32) (result i32)"),
    ("environ_sizes_get", "(param i32 i32) (result i32)"),
    ("clock_res_get", "(param i32 i32) (result i32)"),
    ("clock_time_get", "(param i32 i64 i32) (result i32)"),
    ("fd_advise", "(param i32 i64 i64 i32) (result i32)"),
    ("fd_allocate", "(param i32 i64 i64) (result i32)"),
    ("fd_close", "(param i32) (result i32)"),
    ("fd_datasync", "(param i32) (result i32)"),
    ("fd_fdstat_get", "(param i32 i32) (result i32)"),
    ("fd_fdstat_set_flags", "(param i32 i32) (result i32)"),
    ("fd_fdstat_set_rights", "(param i32 i64 i64) (result i32)"),
    ("fd_filestat_get", "(param i32 i32) (result i32)"),
    ("fd_filestat_set_size", "(param i32 i64) (result i32)"),
    (
        "fd_filestat_set_times",
        "(param i32 i64 i64 i32) (result i32)",
    ),
    ("fd_pread", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_prestat_get", "(param i32 i32) (result i32)"),
    ("fd_prestat_dir_name", "(param i32 i32 i32) (result i32)"),
    ("fd_pwrite", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_read", "(param i32 i32 i32 i32) (result i32)"),
    ("fd_readdir", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_renumber", "(param i32 i32) (result i32)"),
    ("fd_seek", "(param i32 i64 i32 i32) (result i32)"),
    ("fd_sync", "(param i32) (result i32)"),
    ("fd_tell", "(param i32 i32) (result i32)"),
    ("fd_write", "(param i32 i32 i32 i32) (result i32)"),
    ("path_create_directory", "(param i32 i32 i32) (result i32)"),
    (
        "path_filestat_get",
        "(param i32 i32 i32 i32 i32) (result i32)",
    ),
    (
        "path_filestat_set_times",
        "(param i32 i32 i32 i32 i64 i64 i32) (result i32)",
    ),
    (
        "path_link",
        "(param i32 i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    (
        "path_open",
        "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
    ),
    (
        "path_readlink",
        "(param i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    ("path_remove_directory", "(param i32 i32 i32) (result i32)"),
    (
        "path_rename",
        "(param i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    ("path_symlink", "(param i32 i32 i32 i32 i32) (result i32)"),
    ("path_unlink_file", "(param i32 i32 i32) (result i32)"),
    ("poll_oneoff", "(param i32 i32 i32 i32) (result i32)"),
    ("proc_exit", "(param i32)"),
    ("proc_raise", "(param i32) (result i32)"),
    ("sched_yield", "(result i32)"),
    ("random_get", "(param i32 i32) (result i32)"),
    ("sock_accept", "(param i32 i32 i32) (result i32)"),
    ("sock_recv", "(param i32 i32 i32 i32 i32 i32) (result i32)"),
    ("sock_send", "(param i32 i32 i32 i32 i32) (result i32)"),
    ("sock_shutdown", "(param i32 i32) (result i32)"),
];

#[test]
fn every_preview1_function_is_defined_with_its_type() {
    let engine = Engine::default();
    let mut names: Vec<&str> = SIGNATURES.iter().map(|(n, _)| *n).collect();
    let mut defined = wasmc_wasi::FUNCTIONS.to_vec();
    names.sort();
    defined.sort();
    assert_eq!(names, defined);
    assert_eq!(defined.len(), 46);
    let imports: String = SIGNATURES
        .iter()
        .map(|(n, ty)| format!("(import \"wasi_snapshot_preview1\" \"{n}\" (func {ty}))\n"))
        .collect();
    let m = module(
        &engine,
        &format!("(module {imports} (memory (export \"memory\") 1))"),
    );
    let wasi = SharedWasiCtx::new(WasiCtxBuilder::new().build());
    let mut linker = Linker::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, &wasi).unwrap();
    linker
        .instantiate(&mut Store::new(&engine, ()), &m)
        .unwrap();

    // A wrong type is refused at instantiation, naming the import.
    let m = module(
        &engine,
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32))))"#,
    );
    let err = linker
        .instantiate(&mut Store::new(&engine, ()), &m)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wasi_snapshot_preview1::fd_write"), "{err}");
}

const ECHO: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {buf = 64, len = 256}; counts at 16
  (data (i32.const 0) "\40\00\00\00\00\01\00\00")
  (func (export "_start")
    ;; read stdin once, write what was read to stdout and to stderr
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
    (i32.store (i32.const 4) (i32.load (i32.const 16)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 20)))
    (call $proc_exit (i32.const 17))
    unreachable))
"#;

#[test]
fn pipes_and_proc_exit_for_embedders() {
    let engine = Engine::default();
    let m = module(&engine, ECHO);
    let stdout = Arc::new(RwLock::new(Cursor::new(Vec::new())));
    let stderr = Arc::new(RwLock::new(Cursor::new(Vec::new())));
    let ctx = WasiCtxBuilder::new()
        .stdin(Box::new(ReadPipe::from("piped input ✓")))
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .stderr(Box::new(WritePipe::from_shared(stderr.clone())))
        .build();
    let wasi = SharedWasiCtx::new(ctx);
    // The store's data is the embedder's own: the WASI context does not live
    // in it, so any `T` works.
    let mut linker = Linker::<String>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, &wasi).unwrap();
    let mut store = Store::new(&engine, "embedder data".to_string());
    let instance = linker.instantiate(&mut store, &m).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let err = start.call(&mut store, ()).unwrap_err();
    // proc_exit unwound the guest (the `unreachable` after it never ran).
    assert_eq!(wasmc_wasi::exit_code(&err), Some(17), "{err}");
    assert!(err.as_trap().is_none());
    let text =
        |p: &Arc<RwLock<Cursor<Vec<u8>>>>| String::from_utf8(p.read().unwrap().get_ref().clone());
    assert_eq!(text(&stdout).unwrap(), "piped input ✓");
    assert_eq!(text(&stderr).unwrap(), "piped input ✓");
    // The store stays usable after the exit, its data untouched.
    assert!(start.call(&mut store, ()).is_err());
    assert_eq!(store.data(), "embedder data");
}

#[test]
fn a_module_without_memory_gets_a_clear_error() {
    let engine = Engine::default();
    let m = module(
        &engine,
        r#"(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
                   (func (export "_start") (drop (call $y))))"#,
    );
    let wasi = SharedWasiCtx::new(WasiCtxBuilder::new().build());
    let mut linker = Linker::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, &wasi).unwrap();
    let mut store = Store::new(&engine, ());
    let i = linker.instantiate(&mut store, &m).unwrap();
    let f = i.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
    let err = f.call(&mut store, ()).unwrap_err().to_string();
    assert!(err.contains("exports no memory named `memory`"), "{err}");
    assert_eq!(
        wasmc_wasi::exit_code(&f.call(&mut store, ()).unwrap_err()),
        None
    );
}
