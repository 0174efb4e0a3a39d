//! The loader through the real path: `.wat` source -> `wasmc_compiler::compile`
//! -> artifact file (or bytes) -> `Module::from_file` / `Module::from_bytes`
//! -> instantiate -> call.
//!
//! Covers, in this order:
//! - **Loading:** from a file and from bytes; host-compatibility errors that
//!   name the header field with the artifact's and the host's values
//!   (another architecture, CPU features checked against the running CPU,
//!   patched header fields); truncated, bit-flipped and foreign files give
//!   errors and never crash; `Module` is `Send + Sync` and shared by threads;
//!   dropping the last `Module` releases its mappings.
//! - **Instantiation and calls:** host functions of several signatures (every
//!   value type, multi-value results); memories, tables and globals imported
//!   from another instance and from the host; `Linker::instance`; the start
//!   function; data and element segments and their out-of-bounds errors;
//!   `memory.grow` against the declared maximum and the store's limit; typed
//!   and dynamic calls; host access to memories, tables and globals; type
//!   mismatch and missing-import errors. Most run for both `--bounds-checks
//!   guard` and `explicit` artifacts.
//! - **Traps:** every trap code Wasm can raise here, with the code, a
//!   backtrace naming the Wasm functions (name section), a usable store
//!   afterwards and an unaffected second instance; stack overflow from
//!   infinite recursion and from deep recursion with big frames.
//! - **Host functions:** errors and panics reach the host caller; host ->
//!   Wasm -> host -> Wasm re-entry over several levels with a trap in the
//!   innermost Wasm; a fault in a host function is not turned into a trap (a
//!   child process must die of SIGSEGV).
//! - **Threads:** many threads, each with its own store over one shared
//!   module, trap and recover concurrently.
//!
//! Tests that count process-wide state (`/proc/self/maps`) or must crash run
//! in a child process: the test binary re-runs itself with `--exact NAME` and
//! the environment variable [`CHILD_ENV`] set.

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
    Module::from_file(&path).unwrap_or_else(|e| panic!("from_file: {e}"))
}

/// Instantiates a module that has no imports.
fn instantiate(store: &mut Store, m: &Module) -> Instance {
    Instance::new(&mut *store, m, &[]).unwrap_or_else(|e| panic!("instantiate: {e}"))
}

fn functype(params: &[ValType], results: &[ValType]) -> FuncType {
    FuncType {
        params: params.to_vec(),
        results: results.to_vec(),
    }
}

fn call_i32(store: &mut Store, inst: &Instance, name: &str, args: &[Val]) -> Result<i32, Error> {
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

/// Runs the test `name` of this binary in a child process with
/// `CHILD_ENV=job`.
fn run_child(name: &str, job: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, job)
        .output()
        .unwrap()
}

fn child_job() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

// ----- loading -----

const SMALL: &str = r#"
(module $small
  (memory (export "memory") 1)
  (data (i32.const 16) "small data")
  (global $counter (export "counter") (mut i32) (i32.const 0))
  (func $add (export "add") (param i32 i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (i32.add (local.get 0) (local.get 1)))
  (func $read (export "read") (param i32) (result i32)
    (i32.load8_u (local.get 0)))
  (func $boom (export "boom") (unreachable)))
"#;

fn check_small(m: &Module) {
    assert_eq!(m.name(), Some("small"));
    let mut store = Store::new();
    let i = instantiate(&mut store, m);
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (40, 2)).unwrap(), 42);
    assert_eq!(add.call(&mut store, (-1, 1)).unwrap(), 0);
    assert_eq!(
        call_i32(&mut store, &i, "read", &[Val::I32(16)]).unwrap(),
        i32::from(b's')
    );
    let t = expect_trap(
        i.get_func(&mut store, "boom")
            .unwrap()
            .call(&mut store, &[], &mut []),
    );
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
}

#[test]
fn loads_from_file_and_from_bytes() {
    for b in BOTH {
        let bytes = compile(SMALL, b);
        let dir = TempDir::new("both");
        let path = dir.write("small.o", &bytes);
        let from_file = Module::from_file(&path).unwrap();
        check_small(&from_file);
        let from_bytes = Module::from_bytes(&bytes).unwrap();
        check_small(&from_bytes);
        assert_eq!(from_file.header(), from_bytes.header());
        from_file.verify_content_hash().unwrap();
        from_bytes.verify_content_hash().unwrap();
        let want = match b {
            Bounds::Guard => CompileOptions::default().memory,
            Bounds::Explicit => MemoryStrategy::Explicit,
        };
        assert_eq!(from_file.header().settings.memory, want);
    }
    // A file that does not exist names the path.
    let e = Module::from_file("/nonexistent/dir/app.o").unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/dir/app.o"), "{e}");
}

#[test]
fn another_architecture_is_refused_naming_the_field() {
    let other = if cfg!(target_arch = "aarch64") {
        ("x86_64-unknown-linux-gnu", "x86_64")
    } else {
        ("aarch64-unknown-linux-gnu", "aarch64")
    };
    let opts = CompileOptions {
        target: Some(other.0.into()),
        ..CompileOptions::default()
    };
    let bytes = compile_with(SMALL, &opts);
    let dir = TempDir::new("arch");
    let path = dir.write("other.o", &bytes);
    for r in [Module::from_bytes(&bytes), Module::from_file(&path)] {
        let e = r.unwrap_err();
        let LoadError::Incompatible(m) = &e else {
            panic!("expected an incompatibility, got {e:?}")
        };
        let arch = m
            .iter()
            .find(|m| m.field == "architecture")
            .expect("architecture mismatch");
        assert_eq!(arch.artifact, other.1);
        assert_eq!(arch.host, std::env::consts::ARCH);
        let msg = e.to_string();
        assert!(
            msg.contains("architecture")
                && msg.contains(other.1)
                && msg.contains(std::env::consts::ARCH),
            "{msg}"
        );
    }
}

/// Every optional x86-64 feature the compiler knows: an artifact that needs
/// it lists it in its header, and loads exactly when the CPU has it.
#[cfg(target_arch = "x86_64")]
#[test]
fn cpu_features_are_checked_against_the_host() {
    let features: [(&str, bool); 8] = [
        ("avx", is_x86_feature_detected!("avx")),
        ("avx2", is_x86_feature_detected!("avx2")),
        ("bmi1", is_x86_feature_detected!("bmi1")),
        ("bmi2", is_x86_feature_detected!("bmi2")),
        ("lzcnt", is_x86_feature_detected!("lzcnt")),
        ("fma", is_x86_feature_detected!("fma")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
        ("avx512vl", is_x86_feature_detected!("avx512vl")),
    ];
    for (name, host_has) in features {
        let opts = CompileOptions {
            cpu: CpuSpec::Features(vec![name.into()]),
            ..CompileOptions::default()
        };
        let bytes = compile_with(SMALL, &opts);
        match Module::from_bytes(&bytes) {
            Ok(m) => {
                assert!(host_has, "{name}: loaded although the host lacks it");
                assert!(m.header().cpu_features.iter().any(|f| f == name));
                check_small(&m);
            }
            Err(e) => {
                assert!(!host_has, "{name}: refused although the host has it: {e}");
                let LoadError::Incompatible(m) = &e else {
                    panic!("{name}: expected an incompatibility, got {e:?}")
                };
                assert!(
                    m.iter()
                        .any(|m| m.field == "cpu feature" && m.artifact == name),
                    "{m:?}"
                );
                let msg = e.to_string();
                assert!(msg.contains("cpu feature") && msg.contains(name), "{msg}");
            }
        }
    }
    // The baseline loads everywhere wasmc runs (x86-64-v2).
    let base = compile(SMALL, Bounds::Guard);
    let m = Module::from_bytes(&base).unwrap();
    assert!(m.header().cpu_features.iter().any(|f| f == "sse4.2"));
    assert!(!m.header().cpu_features.iter().any(|f| f == "avx"));
}

/// Finds `needle` in `hay` starting at `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn meta_range(bytes: &[u8]) -> std::ops::Range<usize> {
    wasmc_loader::artifact::ParsedArtifact::parse(bytes)
        .unwrap()
        .ranges()
        .meta
        .clone()
}

/// Header fields patched in place (the header is bincode with fixed-width
/// integers: a string is its u64 length then its bytes).
#[test]
fn patched_header_fields_are_refused_naming_the_field() {
    let bytes = compile(SMALL, Bounds::Guard);
    let meta = meta_range(&bytes);
    let arch = std::env::consts::ARCH.as_bytes();
    let mut encoded = (arch.len() as u64).to_le_bytes().to_vec();
    encoded.extend_from_slice(arch);

    // Architecture.
    let at = find(&bytes[..meta.end], &encoded, meta.start).expect("arch in header") + 8;
    let mut patched = bytes.clone();
    patched[at..at + arch.len()].copy_from_slice(&b"sparc64-xx"[..arch.len()]);
    let fake = String::from_utf8(patched[at..at + arch.len()].to_vec()).unwrap();
    let e = Module::from_bytes(&patched).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("architecture") && msg.contains(&fake) && msg.contains(std::env::consts::ARCH),
        "{msg}"
    );

    // Memory strategy: the Guard variant (tag 0) with a 4 GiB reservation
    // and 2 GiB guard; a 1 MiB reservation cannot hold a 32-bit index.
    let mut guard = 0u32.to_le_bytes().to_vec();
    guard.extend_from_slice(&(1u64 << 32).to_le_bytes());
    guard.extend_from_slice(&(1u64 << 31).to_le_bytes());
    let at = find(&bytes[..meta.end], &guard, meta.start).expect("strategy in header") + 4;
    let mut patched = bytes.clone();
    patched[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let e = Module::from_bytes(&patched).unwrap_err();
    let LoadError::Incompatible(m) = &e else {
        panic!("expected an incompatibility, got {e:?}")
    };
    assert_eq!(m[0].field, "memory strategy");
    assert!(m[0].artifact.contains("0x100000"), "{m:?}");
    assert!(e.to_string().contains("memory strategy"), "{e}");
}

#[test]
fn truncated_artifacts_are_errors() {
    let bytes = compile(SMALL, Bounds::Guard);
    let parsed = wasmc_loader::artifact::ParsedArtifact::parse(&bytes).unwrap();
    // Every cut near a section boundary, and every 13th byte elsewhere.
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(13).collect();
    for s in parsed.sections() {
        let (o, n) = (s.file_offset as usize, s.size as usize);
        for c in [o, o + n] {
            cuts.extend(c.saturating_sub(3)..(c + 3).min(bytes.len()));
        }
    }
    cuts.extend(bytes.len() - 64..bytes.len());
    drop(parsed);
    for &n in &cuts {
        assert!(
            Module::from_bytes(&bytes[..n]).is_err(),
            "truncated to {n} of {} bytes and still loaded",
            bytes.len()
        );
    }
    let dir = TempDir::new("trunc");
    for &n in cuts.iter().step_by(17) {
        let p = dir.write("t.o", &bytes[..n]);
        let e = Module::from_file(&p).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}

/// Bit flips anywhere but `.text` give an error or a module that still works.
///
/// What is sound to run: metadata is untrusted and validated, but a flipped
/// offset can still point to other valid code in `.text` (a trampoline, a
/// function), and running that is undefined behaviour that no validation can
/// rule out. The content hash covers `.text`, every `.wasmc.*` table and the
/// module info, so this test only *runs* a flipped artifact whose content
/// hash verifies; every other one must merely load or fail without crashing.
/// Flips inside `.text` (trusted code) are never run: they must fail the hash.
#[test]
fn bit_flips_never_crash_and_are_caught_by_the_hash() {
    let bytes = compile(SMALL, Bounds::Guard);
    let text = wasmc_loader::artifact::ParsedArtifact::parse(&bytes)
        .unwrap()
        .ranges()
        .text
        .clone();
    let (mut loaded, mut ran, mut refused) = (0, 0, 0);
    for i in (0..bytes.len()).filter(|i| !text.contains(i)) {
        let mut b = bytes.clone();
        b[i] ^= 1 << (i % 8);
        match Module::from_bytes(&b) {
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
            Ok(m) => {
                loaded += 1;
                if m.verify_content_hash().is_ok() {
                    check_small(&m);
                    ran += 1;
                }
            }
        }
    }
    assert!(refused > 100, "only {refused} flips were refused");
    assert!(loaded > 0 && ran > 0, "loaded {loaded}, ran {ran}");
    for i in text.clone().step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        let m = Module::from_bytes(&b).expect("a flip in .text changes no metadata");
        assert!(
            matches!(m.verify_content_hash(), Err(LoadError::HashMismatch)),
            "flip at {i} in .text passed the content hash"
        );
    }
}

/// The codegen-relevant header fields are covered by the content hash: a
/// smaller guard region is accepted by the host check, but code compiled for
/// a 2 GiB guard would then reach past the reservation without a bounds
/// check.
#[test]
fn content_hash_covers_the_memory_strategy() {
    let bytes = compile(SMALL, Bounds::Guard);
    let meta = meta_range(&bytes);
    let mut guard = 0u32.to_le_bytes().to_vec();
    guard.extend_from_slice(&(1u64 << 32).to_le_bytes());
    guard.extend_from_slice(&(1u64 << 31).to_le_bytes());
    let at = find(&bytes[..meta.end], &guard, meta.start).expect("strategy in header") + 12;
    let mut patched = bytes.clone();
    patched[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
    let m = Module::from_bytes(&patched).expect("a guard of 0 passes the host check");
    assert!(
        matches!(m.verify_content_hash(), Err(LoadError::HashMismatch)),
        "a changed memory strategy passed the content hash"
    );
}

#[test]
fn foreign_and_malformed_files_are_errors() {
    let dir = TempDir::new("foreign");
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("this test binary", exe, "not a wasmc artifact"),
        (
            "wasm",
            wat::parse_str(SMALL).unwrap(),
            "not a wasmc artifact",
        ),
        ("text", SMALL.as_bytes().to_vec(), "not a wasmc artifact"),
        ("empty", Vec::new(), "empty"),
        (
            "elf magic only",
            b"\x7fELF\x02\x01\x01".to_vec(),
            "not a wasmc artifact",
        ),
    ];
    // Random bytes (a fixed xorshift stream).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    cases.push(("random", random, "not a wasmc artifact"));
    // A real artifact whose `.wasmc.meta` section was renamed.
    let mut renamed = compile(SMALL, Bounds::Guard);
    let at = find(&renamed, b".wasmc.meta\0", 0).expect("section name");
    renamed[at + 10] = b'X';
    cases.push(("renamed section", renamed, "missing section `.wasmc.meta`"));
    if let Ok(ls) = std::fs::read("/bin/ls") {
        cases.push(("/bin/ls", ls, "not a wasmc artifact"));
    }
    for (what, bytes, expect) in &cases {
        let p = dir.write("f.o", bytes);
        for r in [Module::from_file(&p), Module::from_bytes(bytes)] {
            let e = r.expect_err(what).to_string();
            assert!(e.contains(expect), "{what}: `{e}` lacks `{expect}`");
        }
    }
    // A directory.
    assert!(Module::from_file(&dir.0).is_err());
}

#[test]
fn module_is_send_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Module>();
    let m = load(SMALL, Bounds::Guard);
    std::thread::scope(|s| {
        for t in 0..4 {
            let m = &m;
            s.spawn(move || {
                let mut store = Store::new();
                let i = instantiate(&mut store, m);
                let add = i
                    .get_typed_func::<(i32, i32), i32>(&mut store, "add")
                    .unwrap();
                for k in 0..100 {
                    assert_eq!(add.call(&mut store, (t, k)).unwrap(), t + k);
                }
            });
        }
    });
    // Clones moved to threads outlive the original.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || check_small(&m))
        })
        .collect();
    drop(m);
    for h in handles {
        h.join().unwrap();
    }
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Loading, instantiating, trapping and dropping many modules returns the
/// process to its mapping count: code, memories and VMContexts are released
/// and the code registry lets go of the module. Runs in a child process,
/// because other tests' threads map and unmap concurrently.
#[test]
fn dropping_modules_releases_mappings() {
    if child_job().as_deref() == Some("maps") {
        let bytes = compile(SMALL, Bounds::Guard);
        let dir = TempDir::new("maps");
        let path = dir.write("m.o", &bytes);
        let cycle = |n: usize| {
            for k in 0..n {
                let m = if k % 2 == 0 {
                    Module::from_file(&path).unwrap()
                } else {
                    Module::from_bytes(&bytes).unwrap()
                };
                check_small(&m);
            }
        };
        cycle(4); // warm up: handlers, signal stack, type registry
        let base = map_count();
        // Live modules do hold mappings, so the count can tell.
        let live: Vec<Module> = (0..50).map(|_| Module::from_file(&path).unwrap()).collect();
        let with_live = map_count();
        assert!(with_live >= base + 50, "{base} -> {with_live}");
        drop(live);
        // The allocator may merge or drop a mapping of its own, so the count
        // may fall; a leak would add several per module.
        let after = map_count();
        assert!(
            after <= base + 2,
            "mappings leaked by dropped modules: {base} -> {after}"
        );
        cycle(200);
        let after = map_count();
        assert!(
            after <= base + 2,
            "mappings leaked by 200 load cycles: {base} -> {after}"
        );
        println!("child ok: base {base}, with 50 live {with_live}");
        return;
    }
    let out = run_child("dropping_modules_releases_mappings", "maps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child ok"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- instantiation and calls -----

const HOST_SIGS: &str = r#"
(module $hostsigs
  (import "host" "nop" (func $nop))
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (import "host" "mix" (func $mix (param i64 f32 f64) (result f64 i64 f32 i32)))
  (import "host" "all" (func $all
    (param i32 i64 f32 f64 v128 funcref externref)
    (result externref funcref v128 f64 f32 i64 i32)))
  (func $ninety_nine (export "ninety_nine") (result i32) (i32.const 99))
  (elem declare func $ninety_nine)
  (func (export "call_nop") (call $nop) (call $nop))
  (func (export "call_inc") (param i32) (result i32)
    (call $inc (call $inc (local.get 0))))
  (func (export "call_mix") (param i64 f32 f64) (result f64 i64 f32 i32)
    (call $mix (local.get 0) (local.get 1) (local.get 2)))
  (func (export "call_all") (param externref)
    (result externref funcref v128 f64 f32 i64 i32)
    (call $all (i32.const -5) (i64.const 0x100000001) (f32.const 1.5)
      (f64.const -2.25) (v128.const i64x2 1 2) (ref.func $ninety_nine)
      (local.get 0))))
"#;

#[test]
fn host_functions_of_many_signatures() {
    use ValType::*;
    for b in BOTH {
        let m = load(HOST_SIGS, b);
        let mut store = Store::new();
        let nops = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut linker = Linker::new();
        let n = nops.clone();
        linker
            .func_new("host", "nop", functype(&[], &[]), move |_, _, _| {
                n.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        linker
            .func_new("host", "inc", functype(&[I32], &[I32]), |_, p, r| {
                r[0] = Val::I32(p[0].i32().unwrap().wrapping_add(1));
                Ok(())
            })
            .unwrap();
        linker
            .func_new(
                "host",
                "mix",
                functype(&[I64, F32, F64], &[F64, I64, F32, I32]),
                |_, p, r| {
                    r[0] = Val::from(p[2].f64().unwrap() * 2.0);
                    r[1] = Val::I64(p[0].i64().unwrap() + 1);
                    r[2] = Val::from(p[1].f32().unwrap() * 2.0);
                    r[3] = Val::I32(3);
                    Ok(())
                },
            )
            .unwrap();
        let s = seen.clone();
        linker
            .func_new(
                "host",
                "all",
                functype(
                    &[I32, I64, F32, F64, V128, FuncRef, ExternRef],
                    &[ExternRef, FuncRef, V128, F64, F32, I64, I32],
                ),
                move |mut caller, p, r| {
                    // The funcref is callable from the host.
                    let f = *p[5].funcref().unwrap().expect("non-null funcref");
                    let mut out = [Val::I32(0)];
                    f.call(&mut caller, &[], &mut out)?;
                    let ext = p[6].externref().unwrap().cloned();
                    s.lock().unwrap().push(format!(
                        "{} {} {} {} {:#x} {} {:?}",
                        p[0].i32().unwrap(),
                        p[1].i64().unwrap(),
                        p[2].f32().unwrap(),
                        p[3].f64().unwrap(),
                        match p[4] {
                            Val::V128(v) => v,
                            _ => 0,
                        },
                        out[0].i32().unwrap(),
                        ext.as_ref().and_then(|e| e.downcast_ref::<String>()),
                    ));
                    r[0] = Val::ExternRef(ext);
                    r[1] = Val::FuncRef(Some(f));
                    r[2] = Val::V128(u128::MAX - 1);
                    r[3] = Val::from(6.5f64);
                    r[4] = Val::from(-0.5f32);
                    r[5] = Val::I64(i64::MIN);
                    r[6] = Val::I32(-1);
                    Ok(())
                },
            )
            .unwrap();
        let i = linker.instantiate(&mut store, &m).unwrap();

        i.get_func(&mut store, "call_nop")
            .unwrap()
            .call(&mut store, &[], &mut [])
            .unwrap();
        assert_eq!(nops.load(Ordering::SeqCst), 2);

        let inc = i
            .get_typed_func::<i32, i32>(&mut store, "call_inc")
            .unwrap();
        assert_eq!(inc.call(&mut store, 40).unwrap(), 42);
        assert_eq!(inc.call(&mut store, i32::MAX).unwrap(), i32::MIN + 1);

        let mix = i
            .get_typed_func::<(i64, f32, f64), (f64, i64, f32, i32)>(&mut store, "call_mix")
            .unwrap();
        assert_eq!(
            mix.call(&mut store, (41, 1.25, 10.5)).unwrap(),
            (21.0, 42, 2.5, 3)
        );

        let token = wasmc_loader::ExternRef::new(String::from("token"));
        let all = i.get_func(&mut store, "call_all").unwrap();
        let mut r: Vec<Val> = all
            .ty(&store)
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        all.call(&mut store, &[Val::ExternRef(Some(token.clone()))], &mut r)
            .unwrap();
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            [format!(
                "-5 4294967297 1.5 -2.25 {:#x} 99 Some(\"token\")",
                1u128 | (2u128 << 64)
            )]
        );
        let back = r[0].externref().unwrap().expect("non-null externref");
        assert!(wasmc_loader::ExternRef::ptr_eq(back, &token));
        let f = *r[1].funcref().unwrap().expect("non-null funcref");
        assert_eq!(f, i.get_func(&mut store, "ninety_nine").unwrap());
        assert!(matches!(r[2], Val::V128(v) if v == u128::MAX - 1));
        assert_eq!(r[3].f64(), Some(6.5));
        assert_eq!(r[4].f32(), Some(-0.5));
        assert_eq!(r[5].i64(), Some(i64::MIN));
        assert_eq!(r[6].i32(), Some(-1));

        // A host function called directly from the host.
        let direct = Func::new(&mut store, functype(&[I32, I32], &[I32, I64]), |_, p, r| {
            r[0] = Val::I32(p[0].i32().unwrap() * p[1].i32().unwrap());
            r[1] = Val::I64(7);
            Ok(())
        });
        let t = direct.typed::<(i32, i32), (i32, i64)>(&store).unwrap();
        assert_eq!(t.call(&mut store, (6, 7)).unwrap(), (42, 7));
    }
}

const PROVIDER: &str = r#"
(module $provider
  (memory (export "mem") 1 3)
  (table (export "tab") 2 funcref)
  (global (export "glob") (mut i64) (i64.const 40))
  (func $seven (export "seven") (result i32) (i32.const 7))
  (elem (i32.const 0) $seven)
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0))))
"#;

const CONSUMER: &str = r#"
(module $consumer
  (import "p" "mem" (memory 1))
  (import "p" "tab" (table 2 funcref))
  (import "p" "glob" (global $g (mut i64)))
  (import "p" "seven" (func $seven (result i32)))
  (type $r (func (result i32)))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "bump") (result i64)
    (global.set $g (i64.add (global.get $g) (i64.const 2)))
    (global.get $g))
  (func (export "via_table") (param i32) (result i32)
    (call_indirect (type $r) (local.get 0)))
  (func (export "direct") (result i32) (call $seven))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"#;

#[test]
fn imports_from_another_instance_via_linker() {
    for b in BOTH {
        let provider = load(PROVIDER, b);
        let consumer = load(CONSUMER, b);
        let mut store = Store::new();
        let p = instantiate(&mut store, &provider);
        let mut linker = Linker::new();
        linker.instance(&mut store, "p", &p).unwrap();
        let c = linker.instantiate(&mut store, &consumer).unwrap();

        // Memory is shared both ways.
        let poke = c
            .get_typed_func::<(i32, i32), ()>(&mut store, "poke")
            .unwrap();
        poke.call(&mut store, (100, 0xab)).unwrap();
        assert_eq!(
            call_i32(&mut store, &p, "peek", &[Val::I32(100)]).unwrap(),
            0xab
        );
        let mem = p.get_memory(&mut store, "mem").unwrap();
        mem.write(&mut store, 200, &[0x5a]).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "peek", &[Val::I32(200)]).unwrap(),
            0x5a
        );
        // A grow through the importer is seen by the exporter and the host.
        assert_eq!(call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(), 1);
        assert_eq!(mem.size(&store), 2);
        poke.call(&mut store, (65536 + 5, 9)).unwrap();
        assert_eq!(
            call_i32(&mut store, &p, "peek", &[Val::I32(65536 + 5)]).unwrap(),
            9
        );
        // The declared maximum (3) holds for the importer too.
        assert_eq!(
            call_i32(&mut store, &c, "grow", &[Val::I32(2)]).unwrap(),
            -1
        );

        // Global.
        let bump = c.get_typed_func::<(), i64>(&mut store, "bump").unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 42);
        let g = p.get_global(&mut store, "glob").unwrap();
        assert_eq!(g.get(&mut store).i64(), Some(42));
        g.set(&mut store, Val::I64(100)).unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 102);

        // Table and function.
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(0)]).unwrap(),
            7
        );
        assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 7);
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(1)]));
        assert_eq!(t.code, TrapCode::IndirectCallToNull);
        let tab = p.get_table(&mut store, "tab").unwrap();
        let seven = p.get_func(&mut store, "seven").unwrap();
        tab.set(&mut store, 1, Val::FuncRef(Some(seven))).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(1)]).unwrap(),
            7
        );
    }
}

#[test]
fn imports_from_the_host() {
    use ValType::*;
    for b in BOTH {
        let consumer = load(CONSUMER, b);
        let mut store = Store::new();
        let mem = Memory::new(
            &mut store,
            MemoryType {
                min: 1,
                max: Some(2),
                memory64: false,
                shared: false,
            },
        )
        .unwrap();
        let tab = Table::new(
            &mut store,
            TableType {
                elem: RefType::FuncRef,
                min: 2,
                max: None,
                table64: false,
            },
            Val::FuncRef(None),
        )
        .unwrap();
        let glob = Global::new(
            &mut store,
            GlobalType {
                ty: I64,
                mutable: true,
            },
            Val::I64(-2),
        )
        .unwrap();
        let eleven = Func::new(&mut store, functype(&[], &[I32]), |_, _, r| {
            r[0] = Val::I32(11);
            Ok(())
        });
        tab.set(&mut store, 1, Val::FuncRef(Some(eleven))).unwrap();
        let c = Instance::new(
            &mut store,
            &consumer,
            &[mem.into(), tab.into(), glob.into(), eleven.into()],
        )
        .unwrap();
        mem.write(&mut store, 7, &[77]).unwrap();
        assert_eq!(
            call_i32(&mut store, &c, "peek", &[Val::I32(7)]).unwrap(),
            77
        );
        call_i32(&mut store, &c, "poke", &[Val::I32(8), Val::I32(88)]).unwrap_err();
        let poke = c.get_func(&mut store, "poke").unwrap();
        poke.call(&mut store, &[Val::I32(8), Val::I32(88)], &mut [])
            .unwrap();
        let mut buf = [0u8; 2];
        mem.read(&store, 7, &mut buf).unwrap();
        assert_eq!(buf, [77, 88]);
        assert_eq!(call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(), 1);
        assert_eq!(mem.size(&store), 2);
        assert_eq!(
            call_i32(&mut store, &c, "grow", &[Val::I32(1)]).unwrap(),
            -1
        );
        let bump = c.get_typed_func::<(), i64>(&mut store, "bump").unwrap();
        assert_eq!(bump.call(&mut store, ()).unwrap(), 0);
        assert_eq!(glob.get(&mut store).i64(), Some(0));
        assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 11);
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(1)]).unwrap(),
            11
        );
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(0)]));
        assert_eq!(t.code, TrapCode::IndirectCallToNull);
        let t = expect_trap(call_i32(&mut store, &c, "via_table", &[Val::I32(2)]));
        assert_eq!(t.code, TrapCode::UndefinedElement);
        // A table grown by the host is seen by Wasm.
        assert_eq!(
            tab.grow(&mut store, 1, Val::FuncRef(Some(eleven))).unwrap(),
            2
        );
        assert_eq!(
            call_i32(&mut store, &c, "via_table", &[Val::I32(2)]).unwrap(),
            11
        );
    }
}

/// Guard-mode code cannot use a memory laid out for explicit bounds checks:
/// the import is refused naming both strategies.
#[test]
fn memory_strategy_mismatch_on_import_is_refused() {
    let provider = load(PROVIDER, Bounds::Explicit);
    let consumer = load(CONSUMER, Bounds::Guard);
    let mut store = Store::new();
    let p = instantiate(&mut store, &provider);
    let mut linker = Linker::new();
    linker.instance(&mut store, "p", &p).unwrap();
    let e = linker.instantiate(&mut store, &consumer).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("p::mem") && msg.contains("guard") && msg.contains("explicit"),
        "{msg}"
    );
    // The other direction works: explicit code can use a guard memory.
    let provider = load(PROVIDER, Bounds::Guard);
    let consumer = load(CONSUMER, Bounds::Explicit);
    let p = instantiate(&mut store, &provider);
    linker.instance(&mut store, "p", &p).unwrap();
    let c = linker.instantiate(&mut store, &consumer).unwrap();
    assert_eq!(call_i32(&mut store, &c, "direct", &[]).unwrap(), 7);
}

/// Like the spec's `register`: module B imports functions and state of
/// module A by the name A was registered under.
#[test]
fn linker_instance_links_two_modules() {
    let a = load(
        r#"(module $a
             (global $n (export "n") (mut i32) (i32.const 0))
             (func (export "next") (result i32)
               (global.set $n (i32.add (global.get $n) (i32.const 1)))
               (global.get $n)))"#,
        Bounds::Guard,
    );
    let b = load(
        r#"(module $b
             (import "counter" "next" (func $next (result i32)))
             (import "counter" "n" (global $n (mut i32)))
             (func (export "twice") (result i32)
               (drop (call $next))
               (i32.add (call $next) (global.get $n))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new();
    let mut linker = Linker::new();
    let ia = linker.instantiate(&mut store, &a).unwrap();
    linker.instance(&mut store, "counter", &ia).unwrap();
    let ib = linker.instantiate(&mut store, &b).unwrap();
    assert_eq!(call_i32(&mut store, &ib, "twice", &[]).unwrap(), 4);
    assert_eq!(call_i32(&mut store, &ib, "twice", &[]).unwrap(), 8);
    assert_eq!(call_i32(&mut store, &ia, "next", &[]).unwrap(), 5);
    // The definitions are usable through the linker by name.
    let f = linker
        .get(&mut store, "counter", "next")
        .and_then(Extern::into_func)
        .unwrap();
    let mut r = [Val::I32(0)];
    f.call(&mut store, &[], &mut r).unwrap();
    assert_eq!(r[0].i32(), Some(6));
    // A linker definition from another store is refused.
    let mut other = Store::new();
    let e = linker.instantiate(&mut other, &b).unwrap_err();
    assert!(e.to_string().contains("different store"), "{e}");
}

#[test]
fn start_function_runs_at_instantiation() {
    let m = load(
        r#"(module
             (import "host" "started" (func $started (param i32)))
             (global $g (export "g") (mut i32) (i32.const 0))
             (memory (export "memory") 1)
             (data (i32.const 0) "\05")
             (func $start
               (global.set $g (i32.add (i32.load8_u (i32.const 0)) (i32.const 37)))
               (call $started (global.get $g)))
             (start $start))"#,
        Bounds::Guard,
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let mut linker = Linker::new();
    linker
        .func_new(
            "host",
            "started",
            functype(&[ValType::I32], &[]),
            move |_, p, _| {
                s.lock().unwrap().push(p[0].i32().unwrap());
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new();
    let i = linker.instantiate(&mut store, &m).unwrap();
    assert_eq!(*seen.lock().unwrap(), [42]);
    let g = i.get_global(&mut store, "g").unwrap();
    assert_eq!(g.get(&mut store).i32(), Some(42));

    // A trapping start function fails the instantiation with the trap.
    let m = load(
        r#"(module (func $bad_start unreachable) (start $bad_start))"#,
        Bounds::Guard,
    );
    let t = expect_trap(Instance::new(&mut store, &m, &[]));
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
    assert_eq!(frame_names(&t), ["bad_start"]);
    // The store is still usable.
    assert_eq!(g.get(&mut store).i32(), Some(42));
}

const SEGMENTS: &str = r#"
(module $segments
  (memory (export "memory") 1)
  (table (export "table") 5 funcref)
  (type $r (func (result i32)))
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.const 2))
  (func $three (result i32) (i32.const 3))
  (elem (i32.const 1) $one $two)
  (elem $passive func $three)
  (data (i32.const 0) "abc")
  (data (i32.const 65530) "tail!!")
  (data $later "later")
  (func (export "call") (param i32) (result i32) (call_indirect (type $r) (local.get 0)))
  (func (export "init") (memory.init $later (i32.const 100) (i32.const 0) (i32.const 5))
    (table.init $passive (i32.const 4) (i32.const 0) (i32.const 1))))
"#;

#[test]
fn data_and_element_segments_are_applied() {
    for b in BOTH {
        let m = load(SEGMENTS, b);
        let mut store = Store::new();
        let i = instantiate(&mut store, &m);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert_eq!(&mem.data(&store)[..4], b"abc\0");
        assert_eq!(&mem.data(&store)[65530..], b"tail!!");
        assert_eq!(&mem.data(&store)[100..105], &[0; 5]);
        let call = |store: &mut Store, k| call_i32(store, &i, "call", &[Val::I32(k)]);
        assert_eq!(call(&mut store, 1).unwrap(), 1);
        assert_eq!(call(&mut store, 2).unwrap(), 2);
        assert_eq!(
            expect_trap(call(&mut store, 0)).code,
            TrapCode::IndirectCallToNull
        );
        assert_eq!(
            expect_trap(call(&mut store, 4)).code,
            TrapCode::IndirectCallToNull
        );
        i.get_func(&mut store, "init")
            .unwrap()
            .call(&mut store, &[], &mut [])
            .unwrap();
        assert_eq!(&mem.data(&store)[100..105], b"later");
        assert_eq!(call(&mut store, 4).unwrap(), 3);
        let table = i.get_table(&mut store, "table").unwrap();
        assert!(matches!(table.get(&mut store, 0), Some(Val::FuncRef(None))));
        assert!(matches!(
            table.get(&mut store, 1),
            Some(Val::FuncRef(Some(_)))
        ));
        assert!(table.get(&mut store, 5).is_none());
    }
}

#[test]
fn out_of_bounds_segments_fail_instantiation() {
    for b in BOTH {
        let mut store = Store::new();
        let data = load(
            r#"(module (memory 1) (data (i32.const 0) "ok") (data (i32.const 65534) "abc"))"#,
            b,
        );
        let e = Instance::new(&mut store, &data, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                    segment: 1,
                    memory: 0
                })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("data segment 1"), "{e}");

        let elem = load(
            r#"(module (table 2 funcref) (func $f) (elem (i32.const 1) $f $f))"#,
            b,
        );
        let e = Instance::new(&mut store, &elem, &[]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::ElementSegmentOutOfBounds {
                    segment: 0,
                    table: 0
                })
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("element segment 0"), "{e}");

        // An offset from an imported global, out of bounds by one byte.
        let imported = load(
            r#"(module (import "env" "off" (global i32)) (memory 1)
                 (data (global.get 0) "xy"))"#,
            b,
        );
        let off = |store: &mut Store, v| {
            Global::new(
                &mut *store,
                GlobalType {
                    ty: ValType::I32,
                    mutable: false,
                },
                Val::I32(v),
            )
            .unwrap()
        };
        let g = off(&mut store, 65535);
        assert!(Instance::new(&mut store, &imported, &[g.into()]).is_err());
        let g = off(&mut store, 65534);
        Instance::new(&mut store, &imported, &[g.into()]).unwrap();
        // The store stays usable after the failures.
        let ok = load(SMALL, b);
        check_small(&ok);
        let i = instantiate(&mut store, &ok);
        assert_eq!(
            call_i32(&mut store, &i, "add", &[Val::I32(1), Val::I32(2)]).unwrap(),
            3
        );
    }
}

const GROW: &str = r#"
(module $grow
  (memory (export "memory") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  (func $load (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1))))
"#;

#[test]
fn memory_grow_respects_declared_maximum_and_store_limit() {
    for b in BOTH {
        let m = load(GROW, b);
        let mut store = Store::new();
        let i = instantiate(&mut store, &m);
        let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        let size = i.get_typed_func::<(), i32>(&mut store, "size").unwrap();
        let ld = i.get_typed_func::<i32, i32>(&mut store, "load").unwrap();
        let st = i
            .get_typed_func::<(i32, i32), ()>(&mut store, "store")
            .unwrap();
        st.call(&mut store, (65532, 0x1234_5678)).unwrap();
        assert_eq!(
            expect_trap(ld.call(&mut store, 65536)).code,
            TrapCode::MemoryOutOfBounds
        );
        assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 0).unwrap(), 2);
        assert_eq!(grow.call(&mut store, 2).unwrap(), 2);
        assert_eq!(size.call(&mut store, ()).unwrap(), 4);
        // Beyond the declared maximum.
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        assert_eq!(grow.call(&mut store, -1).unwrap(), -1);
        assert_eq!(size.call(&mut store, ()).unwrap(), 4);
        // Old contents survive (explicit mode may move the memory), new
        // pages are zero and usable, the end is still enforced.
        assert_eq!(ld.call(&mut store, 65532).unwrap(), 0x1234_5678);
        assert_eq!(ld.call(&mut store, 4 * 65536 - 4).unwrap(), 0);
        st.call(&mut store, (4 * 65536 - 4, 5)).unwrap();
        assert_eq!(ld.call(&mut store, 4 * 65536 - 4).unwrap(), 5);
        assert_eq!(
            expect_trap(ld.call(&mut store, 4 * 65536 - 3)).code,
            TrapCode::MemoryOutOfBounds
        );
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert_eq!(mem.data_size(&store), 4 * 65536);
        assert!(mem.grow(&mut store, 1).is_err());

        // The store's limit applies below the declared maximum.
        let mut store = Store::new();
        store.set_max_memory_pages(2);
        let i = instantiate(&mut store, &m);
        let grow = i.get_typed_func::<i32, i32>(&mut store, "grow").unwrap();
        assert_eq!(grow.call(&mut store, 1).unwrap(), 1);
        assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        assert!(mem.grow(&mut store, 1).is_err());
        assert_eq!(mem.size(&store), 2);
        // A memory whose minimum exceeds the store's limit cannot be created.
        let mut store = Store::new();
        store.set_max_memory_pages(1);
        let big = load(r#"(module (memory 3))"#, b);
        let e = Instance::new(&mut store, &big, &[]).unwrap_err();
        assert!(
            matches!(e, Error::Instantiation(InstantiationError::Resource(_))),
            "{e:?}"
        );
    }
}

#[test]
fn typed_and_dynamic_calls_agree() {
    let m = load(
        r#"(module
             (func (export "mix") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
               (f64.add (local.get 3) (f64.convert_i32_s (local.get 0)))
               (f32.mul (local.get 2) (f32.const 2))
               (i64.sub (local.get 1) (i64.const 1))
               (i32.const -7))
             (func (export "none")))"#,
        Bounds::Guard,
    );
    let mut store = Store::new();
    let i = instantiate(&mut store, &m);
    let typed = i
        .get_typed_func::<(i32, i64, f32, f64), (f64, f32, i64, i32)>(&mut store, "mix")
        .unwrap();
    assert_eq!(
        typed.call(&mut store, (2, 10, 1.5, 0.25)).unwrap(),
        (2.25, 3.0, 9, -7)
    );
    let f = i.get_func(&mut store, "mix").unwrap();
    assert_eq!(f, typed.func());
    let mut r = vec![Val::I32(0); 4];
    f.call(
        &mut store,
        &[
            Val::I32(2),
            Val::I64(10),
            Val::from(1.5f32),
            Val::from(0.25f64),
        ],
        &mut r,
    )
    .unwrap();
    assert_eq!(r[0].f64(), Some(2.25));
    assert_eq!(r[1].f32(), Some(3.0));
    assert_eq!(r[2].i64(), Some(9));
    assert_eq!(r[3].i32(), Some(-7));
    let none = i.get_typed_func::<(), ()>(&mut store, "none").unwrap();
    none.call(&mut store, ()).unwrap();
}

#[test]
fn host_reads_and_writes_memories_tables_and_globals() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (memory (export "memory") 1)
                 (table (export "table") 3 funcref)
                 (table $refs (export "refs") 2 externref)
                 (global (export "mut") (mut f64) (f64.const 1.5))
                 (global (export "const") i64 (i64.const -3))
                 (type $r (func (result i32)))
                 (func $five (export "five") (result i32) (i32.const 5))
                 (func (export "sum") (param i32 i32) (result i32)
                   (local $s i32)
                   (block $done (loop $next
                     (br_if $done (i32.eqz (local.get 1)))
                     (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get 0))))
                     (local.set 0 (i32.add (local.get 0) (i32.const 1)))
                     (local.set 1 (i32.sub (local.get 1) (i32.const 1)))
                     (br $next)))
                   (local.get $s))
                 (func (export "double_global") (result f64)
                   (global.set 0 (f64.mul (global.get 0) (f64.const 2)))
                   (global.get 0))
                 (func (export "call") (param i32) (result i32)
                   (call_indirect (type $r) (local.get 0)))
                 (func (export "get_ref") (param i32) (result externref)
                   (table.get $refs (local.get 0))))"#,
            b,
        );
        let mut store = Store::new();
        let i = instantiate(&mut store, &m);
        let mem = i.get_memory(&mut store, "memory").unwrap();
        mem.write(&mut store, 1000, &[1, 2, 3, 4, 250]).unwrap();
        assert_eq!(
            call_i32(&mut store, &i, "sum", &[Val::I32(1000), Val::I32(5)]).unwrap(),
            260
        );
        mem.data_mut(&mut store)[65535] = 9;
        assert_eq!(
            call_i32(&mut store, &i, "sum", &[Val::I32(65535), Val::I32(1)]).unwrap(),
            9
        );
        assert!(mem.write(&mut store, 65535, &[1, 2]).is_err());
        let mut buf = [0u8; 2];
        assert!(mem.read(&store, usize::MAX, &mut buf).is_err());

        let g = i.get_global(&mut store, "mut").unwrap();
        assert_eq!(g.get(&mut store).f64(), Some(1.5));
        g.set(&mut store, Val::from(4.0f64)).unwrap();
        let d = i
            .get_typed_func::<(), f64>(&mut store, "double_global")
            .unwrap();
        assert_eq!(d.call(&mut store, ()).unwrap(), 8.0);
        assert_eq!(g.get(&mut store).f64(), Some(8.0));
        assert!(g.ty(&store).mutable);
        let c = i.get_global(&mut store, "const").unwrap();
        assert_eq!(c.get(&mut store).i64(), Some(-3));
        let e = c.set(&mut store, Val::I64(1)).unwrap_err();
        assert!(e.to_string().contains("immutable"), "{e}");
        assert_eq!(c.get(&mut store).i64(), Some(-3));

        let t = i.get_table(&mut store, "table").unwrap();
        assert_eq!(t.size(&store), 3);
        let five = i.get_func(&mut store, "five").unwrap();
        t.set(&mut store, 2, Val::FuncRef(Some(five))).unwrap();
        assert_eq!(call_i32(&mut store, &i, "call", &[Val::I32(2)]).unwrap(), 5);
        match t.get(&mut store, 2) {
            Some(Val::FuncRef(Some(f))) => assert_eq!(f, five),
            other => panic!("table.get: {other:?}"),
        }
        assert!(t.set(&mut store, 3, Val::FuncRef(None)).is_err());
        let refs = i.get_table(&mut store, "refs").unwrap();
        let r = ExternRef::new(17u64);
        refs.set(&mut store, 1, Val::ExternRef(Some(r.clone())))
            .unwrap();
        let f = i.get_func(&mut store, "get_ref").unwrap();
        let mut out = [Val::ExternRef(None)];
        f.call(&mut store, &[Val::I32(1)], &mut out).unwrap();
        let got = out[0].externref().unwrap().unwrap();
        assert_eq!(got.downcast_ref::<u64>(), Some(&17));
        assert!(ExternRef::ptr_eq(got, &r));
    }
}

#[test]
fn type_mismatches_name_both_types() {
    let m = load(SMALL, Bounds::Guard);
    let mut store = Store::new();
    let i = instantiate(&mut store, &m);
    let e = i
        .get_typed_func::<(i64, i32), f32>(&mut store, "add")
        .map(|_| ())
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::TypeMismatch { .. }), "{e:?}");
    assert!(
        msg.contains("(i64, i32) -> (f32)") && msg.contains("(i32, i32) -> (i32)"),
        "{msg}"
    );
    let add = i.get_func(&mut store, "add").unwrap();
    let e = add
        .call(&mut store, &[Val::I32(1), Val::F64(0)], &mut [Val::I32(0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("(i32, i32)") && e.contains("(i32, f64)"), "{e}");
    let e = add
        .call(&mut store, &[Val::I32(1)], &mut [Val::I32(0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("(i32, i32)") && e.contains("(i32)"), "{e}");
    let e = add
        .call(&mut store, &[Val::I32(1), Val::I32(2)], &mut [])
        .unwrap_err()
        .to_string();
    assert!(e.contains("number of results"), "{e}");
    let g = i.get_global(&mut store, "counter").unwrap();
    let e = g.set(&mut store, Val::I64(1)).unwrap_err().to_string();
    assert!(e.contains("i32") && e.contains("i64"), "{e}");
    let e = i
        .get_typed_func::<(), ()>(&mut store, "no_such")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such"), "{e}");

    // A host function of the wrong type for an import.
    let consumer = load(
        r#"(module (import "env" "f" (func (param i32) (result i64))))"#,
        Bounds::Guard,
    );
    let wrong = Func::new(&mut store, functype(&[ValType::F32], &[]), |_, _, _| Ok(()));
    let e = Instance::new(&mut store, &consumer, &[wrong.into()]).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::IncompatibleImport { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("env::f") && msg.contains("(i32) -> (i64)") && msg.contains("(f32) -> ()"),
        "{msg}"
    );
    // A global where a function is expected.
    let e = Instance::new(&mut store, &consumer, &[g.into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("env::f") && e.contains("global"), "{e}");
    // A host function whose result has the wrong type.
    let liar = load(
        r#"(module (import "env" "f" (func (result i32)))
             (func (export "g") (result i32) (call 0)))"#,
        Bounds::Guard,
    );
    let f = Func::new(&mut store, functype(&[], &[ValType::I32]), |_, _, r| {
        r[0] = Val::I64(5);
        Ok(())
    });
    let li = Instance::new(&mut store, &liar, &[f.into()]).unwrap();
    let e = call_i32(&mut store, &li, "g", &[]).unwrap_err().to_string();
    assert!(e.contains("(i32)") && e.contains("(i64)"), "{e}");
    // Still usable.
    assert_eq!(
        call_i32(&mut store, &i, "add", &[Val::I32(2), Val::I32(3)]).unwrap(),
        5
    );
}

#[test]
fn missing_imports_name_module_and_field() {
    let m = load(
        r#"(module
             (import "env" "present" (func))
             (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))"#,
        Bounds::Guard,
    );
    let mut store = Store::new();
    let mut linker = Linker::new();
    linker
        .func_new("env", "present", functype(&[], &[]), |_, _, _| Ok(()))
        .unwrap();
    let e = linker.instantiate(&mut store, &m).unwrap_err();
    assert!(
        matches!(e, Error::Link(LinkError::MissingImport { .. })),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("wasi_snapshot_preview1::fd_write") && msg.contains("func"),
        "{msg}"
    );
    let e = Instance::new(&mut store, &m, &[]).unwrap_err().to_string();
    assert!(e.contains("2 imports") && e.contains("0 were given"), "{e}");
}

// ----- traps -----

const TRAPS: &str = r#"
(module $traps
  (memory (export "memory") 1)
  (table 4 funcref)
  (type $ii (func (param i32) (result i32)))
  (elem (i32.const 0) $id $unreach)
  (func $id (export "id") (param i32) (result i32) (local.get 0))
  (func $unreach (export "unreach") (unreachable))
  (func $load (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func $store (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func $load_far (export "load_far") (param i32) (result i32)
    (i32.load offset=65536 (local.get 0)))
  (func $middle (param i32) (result i32) (call $load (local.get 0)))
  (func $outer (export "outer") (param i32) (result i32)
    (i32.add (call $middle (local.get 0)) (i32.const 1)))
  (func $div_s (export "div_s") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))
  (func $rem_u (export "rem_u") (param i64 i64) (result i64)
    (i64.rem_u (local.get 0) (local.get 1)))
  (func $trunc (export "trunc") (param f64) (result i32)
    (i32.trunc_f64_s (local.get 0)))
  (func $call_ind (export "call_ind") (param i32 i32) (result i32)
    (call_indirect (type $ii) (local.get 0) (local.get 1)))
  (func $table_get (export "table_get") (param i32) (result funcref)
    (table.get 0 (local.get 0)))
  (func $fill (export "fill") (param i32 i32)
    (memory.fill (local.get 0) (i32.const 0) (local.get 1)))
  (func $inf (export "inf") (param i32) (result i32)
    (i32.add (call $inf (i32.add (local.get 0) (i32.const 1))) (i32.const 1))))
"#;

struct TrapCase {
    export: &'static str,
    args: Vec<Val>,
    code: TrapCode,
    frames: &'static [&'static str],
}

fn trap_cases() -> Vec<TrapCase> {
    use TrapCode::*;
    let c = |export, args, code, frames| TrapCase {
        export,
        args,
        code,
        frames,
    };
    vec![
        c("load", vec![Val::I32(65536)], MemoryOutOfBounds, &["load"]),
        c("load", vec![Val::I32(65533)], MemoryOutOfBounds, &["load"]),
        c("load", vec![Val::I32(-1)], MemoryOutOfBounds, &["load"]),
        c(
            "store",
            vec![Val::I32(65534), Val::I32(1)],
            MemoryOutOfBounds,
            &["store"],
        ),
        c(
            "load_far",
            vec![Val::I32(0)],
            MemoryOutOfBounds,
            &["load_far"],
        ),
        c(
            "outer",
            vec![Val::I32(70000)],
            MemoryOutOfBounds,
            &["load", "middle", "outer"],
        ),
        c(
            "fill",
            vec![Val::I32(65000), Val::I32(1000)],
            MemoryOutOfBounds,
            &["fill"],
        ),
        c(
            "div_s",
            vec![Val::I32(1), Val::I32(0)],
            IntegerDivisionByZero,
            &["div_s"],
        ),
        c(
            "div_s",
            vec![Val::I32(i32::MIN), Val::I32(-1)],
            IntegerOverflow,
            &["div_s"],
        ),
        c(
            "rem_u",
            vec![Val::I64(5), Val::I64(0)],
            IntegerDivisionByZero,
            &["rem_u"],
        ),
        c(
            "trunc",
            vec![Val::from(f64::NAN)],
            BadConversionToInteger,
            &["trunc"],
        ),
        c(
            "trunc",
            vec![Val::from(3e9f64)],
            IntegerOverflow,
            &["trunc"],
        ),
        c("unreach", vec![], UnreachableCodeReached, &["unreach"]),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(2)],
            IndirectCallToNull,
            &["call_ind"],
        ),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(1)],
            BadSignature,
            &["call_ind"],
        ),
        c(
            "call_ind",
            vec![Val::I32(5), Val::I32(4)],
            UndefinedElement,
            &["call_ind"],
        ),
        c(
            "table_get",
            vec![Val::I32(4)],
            TableOutOfBounds,
            &["table_get"],
        ),
    ]
}

#[test]
fn traps_have_codes_and_backtraces_and_leave_the_store_usable() {
    for b in BOTH {
        let m = load(TRAPS, b);
        let mut store = Store::new();
        let victim = instantiate(&mut store, &m);
        let bystander = instantiate(&mut store, &m);
        let mut other_store = Store::new();
        let other = instantiate(&mut other_store, &m);
        for (s, i) in [(&mut store, &bystander), (&mut other_store, &other)] {
            let mem = i.get_memory(&mut *s, "memory").unwrap();
            mem.write(&mut *s, 0, b"keep").unwrap();
        }
        for case in trap_cases() {
            let f = victim.get_func(&mut store, case.export).unwrap();
            let mut r: Vec<Val> = f
                .ty(&store)
                .results
                .iter()
                .map(|t| Val::default_for(*t))
                .collect();
            let t = expect_trap(f.call(&mut store, &case.args, &mut r));
            let ctx = format!("{b:?} {}({:?}): {t}", case.export, case.args);
            assert_eq!(t.code, case.code, "{ctx}");
            assert_eq!(frame_names(&t), case.frames, "{ctx}");
            assert!(
                t.backtrace
                    .iter()
                    .all(|f| f.module_name.as_deref() == Some("traps")),
                "{ctx}"
            );
            assert!(t.backtrace[0].wasm_offset.is_some(), "{ctx}");
            let shown = t.to_string();
            assert!(
                shown.contains(case.code.message()) && shown.contains(case.frames[0]),
                "{shown}"
            );
            // The same store goes on working, for the trapping instance too.
            assert_eq!(
                call_i32(&mut store, &victim, "id", &[Val::I32(3)]).unwrap(),
                3
            );
            assert_eq!(
                call_i32(&mut store, &victim, "call_ind", &[Val::I32(8), Val::I32(0)]).unwrap(),
                8
            );
            assert_eq!(
                call_i32(&mut store, &victim, "load", &[Val::I32(65532)]).unwrap(),
                0
            );
        }
        // Other instances are unaffected.
        for (s, i) in [(&mut store, &bystander), (&mut other_store, &other)] {
            assert_eq!(
                call_i32(&mut *s, i, "load", &[Val::I32(0)]).unwrap(),
                i32::from_le_bytes(*b"keep")
            );
            assert_eq!(
                call_i32(&mut *s, i, "div_s", &[Val::I32(9), Val::I32(3)]).unwrap(),
                3
            );
        }
    }
}

/// Generates a function whose frame holds `k` i64 values across its
/// recursive call. They are loaded from memory before the call, so the
/// compiler can neither recompute them after it (the callee may write
/// memory) nor keep them in registers: every frame spills `8 * k` bytes.
/// Memory holds `j + 1` at `8 * j`, so `deep(n)` returns
/// `n * (1 + ... + k) + k * (1 + ... + n)`.
fn big_frames_wat(k: usize) -> String {
    let mut s = String::from("(module $bigframes\n  (memory 1)\n");
    for j in 0..k {
        s.push_str(&format!(
            "  (data (i32.const {}) \"\\{:02x}\")\n",
            8 * j,
            j + 1
        ));
    }
    s.push_str("  (func $deep (export \"deep\") (param $n i32) (result i64)\n");
    for j in 0..k {
        s.push_str(&format!("    (local $l{j} i64)\n"));
    }
    s.push_str("    (if (i32.eqz (local.get $n)) (then (return (i64.const 0))))\n");
    for j in 0..k {
        s.push_str(&format!(
            "    (local.set $l{j} (i64.add (i64.load (i32.const {})) (i64.extend_i32_u (local.get $n))))\n",
            8 * j
        ));
    }
    s.push_str("    (call $deep (i32.sub (local.get $n) (i32.const 1)))\n");
    for j in 0..k {
        s.push_str(&format!("    (i64.add (local.get $l{j}))\n"));
    }
    s.push_str("  ))\n");
    s
}

#[test]
fn stack_overflow_from_infinite_and_deep_recursion() {
    const K: u64 = 64;
    let wat = big_frames_wat(K as usize);
    for b in BOTH {
        let traps = load(TRAPS, b);
        let big = load(&wat, b);
        let mut store = Store::new();
        let ti = instantiate(&mut store, &traps);
        let bi = instantiate(&mut store, &big);
        let deep = bi.get_typed_func::<i32, i64>(&mut store, "deep").unwrap();
        let expect = |n: u64| n * (K * (K + 1) / 2) + K * (n * (n + 1) / 2);
        assert_eq!(deep.call(&mut store, 100).unwrap(), expect(100) as i64);

        for round in 0..3 {
            let t = expect_trap(call_i32(&mut store, &ti, "inf", &[Val::I32(0)]));
            assert_eq!(t.code, TrapCode::StackOverflow, "round {round}");
            assert!(t.backtrace.len() > 100, "{}", t.backtrace.len());
            assert!(frame_names(&t).iter().all(|n| n == "inf"));

            // Deep but finite: 20,000 frames of more than 512 bytes exceed
            // the default 512 KiB limit.
            let t = expect_trap(deep.call(&mut store, 20_000));
            assert_eq!(t.code, TrapCode::StackOverflow, "round {round}");
            assert!(frame_names(&t).iter().all(|n| n == "deep"));
            assert!(t.backtrace.len() > 100);

            // The store recovers: the limit is restored, moderate depth works.
            assert_eq!(deep.call(&mut store, 300).unwrap(), expect(300) as i64);
            assert_eq!(call_i32(&mut store, &ti, "id", &[Val::I32(1)]).unwrap(), 1);
        }
        // A smaller stack limit turns a depth that fits into an overflow.
        let mut small = Store::new();
        small.set_max_wasm_stack(16 * 1024);
        let bi = instantiate(&mut small, &big);
        let deep = bi.get_typed_func::<i32, i64>(&mut small, "deep").unwrap();
        assert_eq!(
            expect_trap(deep.call(&mut small, 300)).code,
            TrapCode::StackOverflow
        );
        assert_eq!(deep.call(&mut small, 5).unwrap(), expect(5) as i64);
    }
}

// ----- host functions: errors, panics, re-entry, faults -----

const HOSTCALLS: &str = r#"
(module $hostcalls
  (import "host" "fail" (func $fail (param i32) (result i32)))
  (import "host" "panic" (func $panic))
  (import "host" "down" (func $down (param i32 i32) (result i32)))
  (import "host" "crash" (func $crash))
  (func $calls_fail (export "calls_fail") (param i32) (result i32)
    (i32.add (call $fail (local.get 0)) (i32.const 1)))
  (func $calls_panic (export "calls_panic") (call $panic))
  (func $calls_crash (export "calls_crash") (call $crash))
  ;; rec(n, mode): n == 0: mode 0 returns 1000, else traps; otherwise asks the
  ;; host to call rec(n - 1, mode) and adds one.
  (func $rec (export "rec") (param $n i32) (param $mode i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then
        (if (result i32) (i32.eqz (local.get $mode))
          (then (i32.const 1000))
          (else (call $bottom))))
      (else
        (i32.add (call $down (local.get $n) (local.get $mode)) (i32.const 1)))))
  (func $bottom (result i32) (unreachable))
  (func (export "ok") (result i32) (i32.const 1)))
"#;

/// Levels of `down` entered, for the re-entry test.
fn hostcalls_linker(depths: Arc<Mutex<Vec<i32>>>) -> Linker {
    use ValType::*;
    let mut l = Linker::new();
    l.func_new("host", "fail", functype(&[I32], &[I32]), |_, p, r| {
        let v = p[0].i32().unwrap();
        if v < 0 {
            return Err(Error::msg(format!("host refused {v}")));
        }
        r[0] = Val::I32(v * 2);
        Ok(())
    })
    .unwrap();
    l.func_new("host", "panic", functype(&[], &[]), |_, _, _| {
        panic!("host function panicked on purpose")
    })
    .unwrap();
    l.func_new(
        "host",
        "down",
        functype(&[I32, I32], &[I32]),
        move |mut caller, p, r| {
            let (n, mode) = (p[0].i32().unwrap(), p[1].i32().unwrap());
            depths.lock().unwrap().push(n);
            let rec = caller
                .get_export("rec")
                .and_then(Extern::into_func)
                .expect("rec export");
            let mut out = [Val::I32(0)];
            match rec.call(&mut caller, &[Val::I32(n - 1), Val::I32(mode)], &mut out) {
                Ok(()) => r[0] = out[0].clone(),
                // Mode 2: the outermost host level absorbs the inner trap.
                Err(Error::Trap(t)) if mode == 2 && n == 3 => {
                    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
                    r[0] = Val::I32(-100);
                }
                Err(e) => return Err(e),
            }
            Ok(())
        },
    )
    .unwrap();
    l.func_new("host", "crash", functype(&[], &[]), |_, _, _| {
        // A fault in host code, not in Wasm: must reach the default action.
        // SAFETY: none; this deliberately reads an unmapped address.
        let v = unsafe { std::ptr::read_volatile(16usize as *const u64) };
        println!("read {v}");
        Ok(())
    })
    .unwrap();
    l
}

#[test]
fn host_errors_reach_the_caller() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let mut store = Store::new();
    let i = hostcalls_linker(Arc::default())
        .instantiate(&mut store, &m)
        .unwrap();
    assert_eq!(
        call_i32(&mut store, &i, "calls_fail", &[Val::I32(20)]).unwrap(),
        41
    );
    for _ in 0..3 {
        let e = call_i32(&mut store, &i, "calls_fail", &[Val::I32(-3)]).unwrap_err();
        assert!(e.as_trap().is_none(), "{e:?}");
        assert_eq!(e.to_string(), "host refused -3");
        assert_eq!(
            call_i32(&mut store, &i, "calls_fail", &[Val::I32(1)]).unwrap(),
            3
        );
    }
}

#[test]
fn host_panics_reach_the_host_caller_and_the_store_survives() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let mut store = Store::new();
    let i = hostcalls_linker(Arc::default())
        .instantiate(&mut store, &m)
        .unwrap();
    let f = i.get_func(&mut store, "calls_panic").unwrap();
    for _ in 0..3 {
        let r = catch_unwind(AssertUnwindSafe(|| f.call(&mut store, &[], &mut [])));
        let payload = r.expect_err("the panic must reach the host");
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert_eq!(msg, "host function panicked on purpose");
        assert_eq!(call_i32(&mut store, &i, "ok", &[]).unwrap(), 1);
        assert_eq!(
            call_i32(&mut store, &i, "rec", &[Val::I32(2), Val::I32(0)]).unwrap(),
            1002
        );
    }
}

#[test]
fn host_wasm_reentry_over_several_levels() {
    let m = load(HOSTCALLS, Bounds::Guard);
    let depths: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mut store = Store::new();
    let i = hostcalls_linker(depths.clone())
        .instantiate(&mut store, &m)
        .unwrap();
    // host -> rec(5) -> down(5) -> rec(4) -> ... -> rec(0) = 1000.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(5), Val::I32(0)]).unwrap(),
        1005
    );
    assert_eq!(*depths.lock().unwrap(), [5, 4, 3, 2, 1]);
    depths.lock().unwrap().clear();

    // A trap in the innermost Wasm propagates through every host level.
    let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(4), Val::I32(1)]));
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
    assert_eq!(frame_names(&t), ["bottom", "rec"]);
    assert_eq!(*depths.lock().unwrap(), [4, 3, 2, 1]);
    depths.lock().unwrap().clear();

    // A host level that handles the inner trap lets the outer Wasm go on:
    // rec(5) -> down(5) -> rec(4) -> down(4) -> rec(3) -> down(3) absorbs
    // the trap from below and returns -100; rec(3), rec(4) and rec(5) each
    // add one.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(5), Val::I32(2)]).unwrap(),
        -97
    );
    assert_eq!(*depths.lock().unwrap(), [5, 4, 3, 2, 1]);
    // And the store still works at every depth.
    assert_eq!(
        call_i32(&mut store, &i, "rec", &[Val::I32(8), Val::I32(0)]).unwrap(),
        1008
    );
}

/// A segfault in a host function called from Wasm is not a Wasm trap: the
/// handler passes it on and the process dies of SIGSEGV.
#[test]
fn faults_outside_wasm_code_are_not_swallowed() {
    if child_job().as_deref() == Some("crash") {
        let m = load(HOSTCALLS, Bounds::Guard);
        let mut store = Store::new();
        let i = hostcalls_linker(Arc::default())
            .instantiate(&mut store, &m)
            .unwrap();
        // A Wasm trap first, so the handlers are installed and exercised.
        let t = expect_trap(call_i32(&mut store, &i, "rec", &[Val::I32(1), Val::I32(1)]));
        assert_eq!(t.code, TrapCode::UnreachableCodeReached);
        let f = i.get_func(&mut store, "calls_crash").unwrap();
        let r = f.call(&mut store, &[], &mut []);
        println!("survived the fault: {r:?}");
        return;
    }
    let out = run_child("faults_outside_wasm_code_are_not_swallowed", "crash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(11),
        "expected death by SIGSEGV, got {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("survived"), "{stdout}");
}

// ----- threads -----

#[test]
fn threads_trap_and_recover_concurrently() {
    for b in BOTH {
        let m = load(TRAPS, b);
        std::thread::scope(|s| {
            for t in 0..6 {
                let m = m.clone();
                s.spawn(move || {
                    let mut store = Store::new();
                    let i = instantiate(&mut store, &m);
                    let cases = trap_cases();
                    for k in 0..150usize {
                        let case = &cases[(k + t) % cases.len()];
                        let f = i.get_func(&mut store, case.export).unwrap();
                        let mut r: Vec<Val> = f
                            .ty(&store)
                            .results
                            .iter()
                            .map(|t| Val::default_for(*t))
                            .collect();
                        let tr = expect_trap(f.call(&mut store, &case.args, &mut r));
                        assert_eq!(tr.code, case.code);
                        assert_eq!(frame_names(&tr), case.frames);
                        let v = (t * 1000 + k) as i32;
                        assert_eq!(
                            call_i32(&mut store, &i, "call_ind", &[Val::I32(v), Val::I32(0)])
                                .unwrap(),
                            v
                        );
                    }
                    // Stack overflow on every thread too.
                    let tr = expect_trap(call_i32(&mut store, &i, "inf", &[Val::I32(0)]));
                    assert_eq!(tr.code, TrapCode::StackOverflow);
                });
            }
        });
    }
}
