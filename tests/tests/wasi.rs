//! wasmc-wasi through the library API, as an embedder uses it: every
//! `wasi_snapshot_preview1` function is defined with its witx type (by
//! both `add_to_linker` and `add_to_linker_shared`), output goes to
//! in-memory pipes, `proc_exit` comes back as an exit code, a module
//! without an exported memory gets a clear error, and the context lives in
//! the store's data: two stores of one `InstancePre` each see only their
//! own context (while a shared context is, by design, one for all), and a
//! store holding one moves between threads.

use std::io::Cursor;
use std::sync::{Arc, RwLock};
use wasmc_compiler::CompileOptions;
use wasmc_loader::{Engine, Linker, Module, Store};
use wasmc_wasi::pipe::{ReadPipe, WritePipe};
use wasmc_wasi::{SharedWasiCtx, WasiCtx, WasiCtxBuilder};

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
    let wrong = module(
        &engine,
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32))))"#,
    );

    // The context in the store's data.
    let mut linker = Linker::<WasiCtx>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).unwrap();
    let store = || Store::new(&engine, WasiCtxBuilder::new().build());
    linker.instantiate(&mut store(), &m).unwrap();
    // A wrong type is refused at instantiation, naming the import.
    let err = linker
        .instantiate(&mut store(), &wrong)
        .unwrap_err()
        .to_string();
    assert!(err.contains("wasi_snapshot_preview1::fd_write"), "{err}");

    // A shared context: the same definitions.
    let wasi = SharedWasiCtx::new(WasiCtxBuilder::new().build());
    let mut linker = Linker::new(&engine);
    wasmc_wasi::add_to_linker_shared(&mut linker, &wasi).unwrap();
    linker
        .instantiate(&mut Store::new(&engine, ()), &m)
        .unwrap();
    let err = linker
        .instantiate(&mut Store::new(&engine, ()), &wrong)
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

/// The store data of the embedder tests: the embedder's own state beside
/// the WASI context.
struct State {
    wasi: WasiCtx,
    name: String,
}

type Shared = Arc<RwLock<Cursor<Vec<u8>>>>;

fn text(p: &Shared) -> String {
    String::from_utf8(p.read().unwrap().get_ref().clone()).unwrap()
}

#[test]
fn pipes_and_proc_exit_for_embedders() {
    let engine = Engine::default();
    let m = module(&engine, ECHO);
    let stdout = Shared::default();
    let stderr = Shared::default();
    let wasi = WasiCtxBuilder::new()
        .stdin(Box::new(ReadPipe::from("piped input ✓")))
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .stderr(Box::new(WritePipe::from_shared(stderr.clone())))
        .build();
    let mut linker = Linker::<State>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, |s: &mut State| &mut s.wasi).unwrap();
    let name = "embedder data".to_string();
    let mut store = Store::new(&engine, State { wasi, name });
    let instance = linker.instantiate(&mut store, &m).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let err = start.call(&mut store, ()).unwrap_err();
    // proc_exit unwound the guest (the `unreachable` after it never ran).
    assert_eq!(wasmc_wasi::exit_code(&err), Some(17), "{err}");
    assert!(err.as_trap().is_none());
    assert_eq!(text(&stdout), "piped input ✓");
    assert_eq!(text(&stderr), "piped input ✓");
    // The store stays usable after the exit, its own data untouched; stdin
    // is used up, so a second run echoes nothing more.
    assert_eq!(
        wasmc_wasi::exit_code(&start.call(&mut store, ()).unwrap_err()),
        Some(17)
    );
    assert_eq!(text(&stdout), "piped input ✓");
    assert_eq!(store.data().name, "embedder data");
}

#[test]
fn a_shared_context_works_with_any_store_data() {
    let engine = Engine::default();
    let m = module(&engine, ECHO);
    let stdout = Shared::default();
    let ctx = WasiCtxBuilder::new()
        .stdin(Box::new(ReadPipe::from("shared ✓")))
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .build();
    let wasi = SharedWasiCtx::new(ctx);
    // The store's data is the embedder's own: the WASI context does not
    // live in it.
    let mut linker = Linker::<String>::new(&engine);
    wasmc_wasi::add_to_linker_shared(&mut linker, &wasi).unwrap();
    let mut store = Store::new(&engine, "embedder data".to_string());
    let instance = linker.instantiate(&mut store, &m).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let err = start.call(&mut store, ()).unwrap_err();
    assert_eq!(wasmc_wasi::exit_code(&err), Some(17), "{err}");
    assert_eq!(text(&stdout), "shared ✓");
    assert_eq!(store.data(), "embedder data");
}

/// Prints its arguments and then its environment to stdout, as the
/// NUL-terminated strings `args_get` / `environ_get` give, and exits with
/// its argument count.
const PRINT_ARGS_AND_ENV: &str = r#"
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: count, 4: string bytes, 8: iovec, 16: written, 1024: pointers,
  ;; 4096: argument strings, 8192: environment strings
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (i32.const 100)))))
  (func $print (param $buf i32) (param $len i32)
    (i32.store (i32.const 8) (local.get $buf))
    (i32.store (i32.const 12) (local.get $len))
    (call $check (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
  (func (export "_start")
    (local $argc i32)
    (call $check (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (local.set $argc (i32.load (i32.const 0)))
    (call $check (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $print (i32.const 4096) (i32.load (i32.const 4)))
    (call $check (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (call $check (call $environ_get (i32.const 1024) (i32.const 8192)))
    (call $print (i32.const 8192) (i32.load (i32.const 4)))
    (call $proc_exit (local.get $argc))
    unreachable))
"#;

fn assert_send<T: Send>() {}
fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn a_store_holding_a_wasi_context_is_send() {
    assert_send_sync::<WasiCtx>();
    assert_send::<State>();
    assert_send::<Store<State>>();
    assert_send::<Store<WasiCtx>>();
    assert_send_sync::<Linker<State>>();
    assert_send_sync::<wasmc_loader::InstancePre<State>>();
}

#[test]
fn two_stores_of_one_instance_pre_each_see_their_own_context() {
    let engine = Engine::default();
    let m = module(&engine, PRINT_ARGS_AND_ENV);
    let mut linker = Linker::<State>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, |s: &mut State| &mut s.wasi).unwrap();
    let pre = linker.instantiate_pre(&m).unwrap();

    // Two program runs, both instantiated before either runs, each with
    // its own arguments, environment and stdout.
    type Run<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let runs: [Run; 2] = [
        (&["first", "a b"], &[("WHO", "first"), ("EMPTY", "")]),
        (&["second", "x", "ünï ✓"], &[("WHO", "second")]),
    ];
    let mut live = Vec::new();
    for (args, env) in runs {
        let stdout = WritePipe::new_in_memory();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let wasi = WasiCtxBuilder::new()
            .args(&args)
            .unwrap()
            .envs(&env)
            .unwrap()
            .stdout(Box::new(stdout.clone()))
            .build();
        let name = args[0].clone();
        let mut store = Store::new(&engine, State { wasi, name });
        let instance = pre.instantiate(&mut store).unwrap();
        live.push((store, instance, stdout));
    }
    // Each run on its own thread: the stores move there and back.
    let threads: Vec<_> = live
        .into_iter()
        .map(|(mut store, instance, stdout)| {
            std::thread::spawn(move || {
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .unwrap();
                let err = start.call(&mut store, ()).unwrap_err();
                let code = wasmc_wasi::exit_code(&err);
                (store, code, stdout)
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for t in threads {
        let (store, code, stdout) = t.join().unwrap();
        let name = store.data().name.clone();
        // The context goes with the store: once it is dropped, the test
        // holds the only end of the pipe.
        drop(store);
        let out = stdout.try_into_inner().ok().unwrap().into_inner();
        outputs.push((name, code, String::from_utf8(out).unwrap()));
    }
    assert_eq!(
        outputs,
        [
            (
                "first".to_string(),
                Some(2),
                "first\0a b\0WHO=first\0EMPTY=\0".to_string()
            ),
            (
                "second".to_string(),
                Some(3),
                "second\0x\0ünï ✓\0WHO=second\0".to_string()
            ),
        ]
    );
}

#[test]
fn a_shared_context_is_one_for_every_store() {
    // What `add_to_linker_shared` means, and why a context per store is
    // the primary form: every store of the linker runs with the one
    // context, its arguments and its stdout.
    let engine = Engine::default();
    let m = module(&engine, PRINT_ARGS_AND_ENV);
    let stdout = Shared::default();
    let ctx = WasiCtxBuilder::new()
        .args(&["only".to_string()])
        .unwrap()
        .stdout(Box::new(WritePipe::from_shared(stdout.clone())))
        .build();
    let wasi = SharedWasiCtx::new(ctx);
    let mut linker = Linker::<()>::new(&engine);
    wasmc_wasi::add_to_linker_shared(&mut linker, &wasi).unwrap();
    let pre = linker.instantiate_pre(&m).unwrap();
    for _ in 0..2 {
        let mut store = Store::new(&engine, ());
        let instance = pre.instantiate(&mut store).unwrap();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .unwrap();
        let err = start.call(&mut store, ()).unwrap_err();
        assert_eq!(wasmc_wasi::exit_code(&err), Some(1));
    }
    assert_eq!(text(&stdout), "only\0only\0");
}

#[test]
fn a_module_without_memory_gets_a_clear_error() {
    let engine = Engine::default();
    let m = module(
        &engine,
        r#"(module (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
                   (func (export "_start") (drop (call $y))))"#,
    );
    let mut linker = Linker::<WasiCtx>::new(&engine);
    wasmc_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let i = linker.instantiate(&mut store, &m).unwrap();
    let f = i.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
    let err = f.call(&mut store, ()).unwrap_err().to_string();
    assert!(err.contains("exports no memory named `memory`"), "{err}");
    assert_eq!(
        wasmc_wasi::exit_code(&f.call(&mut store, ()).unwrap_err()),
        None
    );
}
