//! Cold-start and call benchmarks: the wasmc loader against Wasmtime 25
//! (the same Cranelift line, 0.112) on the same modules.
//!
//! Measured, for each runtime:
//! - **load:** `wasmc_loader::Module::from_file` vs `wasmtime::Module::
//!   deserialize_file`, for artifacts of 10, 1,000 and 10,000 functions
//!   (compiled and serialized to a file once, before timing);
//! - **instantiate:** a fresh store plus `Instance::new` (and dropping both)
//!   for a module with one memory, a small data segment and one host import;
//! - **host -> Wasm:** a typed call of an `i32 -> i32` identity function;
//! - **Wasm -> host:** a Wasm loop calling an `i32 -> i32` host function
//!   1,000 times, per call: typed (`Func::wrap`) and dynamic (`Func::new`,
//!   `Val`s) host functions on both sides;
//! - **large modules** (`large.rs`): load, instantiate and teardown with
//!   64 KiB to 16 MiB of data and 10 or 10,000 functions, on demand and with
//!   both runtimes' pooling allocators, a small module, and an
//!   esbuild-sized synthetic module (with compile time and artifact size).
//!
//! The harness is hand-rolled: each benchmark warms up, picks a batch size
//! so that one sample takes at least ~100 µs, then takes samples for a fixed
//! time and reports the median and the 90th percentile per iteration.
//! Usage: `cargo run --release [-- FILTER]` (or `make bench` at the root).

mod harness;
mod large;

use anyhow::Result;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The engine every wasmc module and store here is made with.
fn wasmc_engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}

/// Per-iteration statistics of one benchmark.
#[derive(Clone)]
struct Stats {
    median: Duration,
    p90: Duration,
    samples: usize,
}

/// Times `f`, per iteration (see `harness`), sampling for 1.5 s.
fn bench(f: impl FnMut()) -> Stats {
    let mut per_iter = harness::samples(Duration::from_millis(1500), f);
    per_iter.sort();
    let at = |q: f64| per_iter[((per_iter.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p90: at(0.9),
        samples: per_iter.len(),
    }
}

fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// A module of `n` small functions; every tenth is exported and each calls
/// its successor, so none is dead code.
fn many_functions(n: usize) -> String {
    let mut s = String::from("(module\n");
    for i in 0..n {
        let export = if i % 10 == 0 {
            format!(" (export \"f{i}\")")
        } else {
            String::new()
        };
        let next = if i + 1 < n {
            format!("(call {} (i32.sub (local.get 0) (i32.const 1)))", i + 1)
        } else {
            "(local.get 0)".to_string()
        };
        s.push_str(&format!(
            "  (func{export} (param i32) (result i32)\n    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const {i})) (else (i32.add {next} (i32.const {i})))))\n"
        ));
    }
    s.push_str(")\n");
    s
}

/// Byte `i` of the data in [`data_module`]: no all-zero page.
fn data_byte(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

/// A module with one exported memory holding `bytes` of data at offset 0 in
/// 4 KiB active segments, and `nfuncs` small functions.
fn data_module(bytes: usize, nfuncs: usize) -> String {
    let pages = bytes.div_ceil(65536) + 1;
    let mut s = format!("(module (memory (export \"memory\") {pages})\n");
    for chunk in 0..bytes.div_ceil(4096) {
        let start = chunk * 4096;
        let text: String = (start..(start + 4096).min(bytes))
            .map(|i| format!("\\{:02x}", data_byte(i)))
            .collect();
        s.push_str(&format!("(data (i32.const {start}) \"{text}\")\n"));
    }
    for i in 0..nfuncs {
        s.push_str(&format!(
            "(func (export \"f{i}\") (param i32) (result i32) (i32.add (local.get 0) (i32.const {i})))\n"
        ));
    }
    s.push(')');
    s
}

/// The instantiation and call module: one memory with a small data segment,
/// one host import, an identity function and a loop calling the host.
const CALLS: &str = r#"
(module
  (import "host" "id" (func $host_id (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "a small data segment of some bytes, as a real module has")
  (global $g (mut i32) (i32.const 0))
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "call_host") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $host_id (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc)))
"#;

const HOST_CALLS_PER_ITER: i32 = 1000;

struct Row {
    what: String,
    wasmc: Stats,
    wasmtime: Stats,
}

fn artifacts_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wasmc_artifact(dir: &Path, name: &str, wat: &str) -> Result<PathBuf> {
    let bytes =
        wasmc_compiler::compile(wat.as_bytes(), &wasmc_compiler::CompileOptions::default())?;
    let p = dir.join(format!("{name}.wasmc.o"));
    std::fs::write(&p, bytes)?;
    Ok(p)
}

fn wasmtime_artifact(
    engine: &wasmtime::Engine,
    dir: &Path,
    name: &str,
    wat: &str,
) -> Result<PathBuf> {
    let wasm = wat::parse_str(wat)?;
    let m = wasmtime::Module::new(engine, wasm)?;
    let p = dir.join(format!("{name}.cwasm"));
    std::fs::write(&p, m.serialize()?)?;
    Ok(p)
}

/// Where `Module::from_file` spends its time, for the 10,000-function
/// artifact (`cargo run --release -- breakdown`).
fn breakdown(dir: &Path) -> Result<()> {
    use wasmc_loader::artifact::ParsedArtifact;
    use wasmc_loader::format::header::{decode_header, decode_module_info};
    let path = wasmc_artifact(dir, "funcs10000", &many_functions(10_000))?;
    let bytes = std::fs::read(&path)?;
    let parsed = ParsedArtifact::parse(&bytes)?;
    let meta = &bytes[parsed.ranges().meta.clone()];
    let (_, info_bytes) = decode_header(meta)?;
    let info = decode_module_info(info_bytes)?;
    let text_len = parsed.ranges().text.len() as u64;
    let data_len = parsed.ranges().data.len() as u64;
    let steps: Vec<(&str, Stats)> = vec![
        (
            "Module::from_file",
            bench(|| {
                black_box(wasmc_loader::Module::from_file(wasmc_engine(), &path).unwrap());
            }),
        ),
        (
            "Module::from_bytes",
            bench(|| {
                black_box(wasmc_loader::Module::from_bytes(wasmc_engine(), &bytes).unwrap());
            }),
        ),
        (
            "ParsedArtifact::parse (ELF + decode + validate + tables)",
            bench(|| {
                black_box(ParsedArtifact::parse(&bytes).unwrap());
            }),
        ),
        (
            "  decode_header",
            bench(|| {
                black_box(decode_header(meta).unwrap());
            }),
        ),
        (
            "  decode_module_info",
            bench(|| {
                black_box(decode_module_info(info_bytes).unwrap());
            }),
        ),
        (
            "  ModuleInfo::validate",
            bench(|| {
                info.validate(text_len, data_len).unwrap();
            }),
        ),
        (
            "  drop(ModuleInfo)",
            bench_with_setup(|| info.clone(), drop),
        ),
    ];
    let funcs = parsed.funcs()?;
    let steps = steps.into_iter().chain([
        (
            "  FuncTable::parse + NameTable::parse (O(1))",
            bench(|| {
                black_box(parsed.funcs().unwrap());
                black_box(parsed.names().unwrap());
            }),
        ),
        (
            "  FuncTable::validate (O(n), `inspect` only)",
            bench(|| {
                funcs.validate().unwrap();
            }),
        ),
    ]);
    // Instantiation pieces.
    let calls =
        wasmc_loader::Module::from_file(wasmc_engine(), wasmc_artifact(dir, "calls", CALLS)?)?;
    let nomem = wasmc_loader::Module::from_file(
        wasmc_engine(),
        wasmc_artifact(
            dir,
            "nomem",
            r#"(module (import "host" "id" (func (param i32) (result i32))))"#,
        )?,
    )?;
    let host_ty = wasmc_loader::FuncType {
        params: vec![wasmc_loader::ValType::I32],
        results: vec![wasmc_loader::ValType::I32],
    };
    let host = |s: &mut wasmc_loader::Store<()>| {
        wasmc_loader::Func::new(&mut *s, host_ty.clone(), |_, p, r| {
            r[0] = p[0].clone();
            Ok(())
        })
    };
    let steps = steps.chain([
        (
            "Store::new + drop",
            bench(|| {
                black_box(wasmc_loader::Store::new(wasmc_engine(), ()));
            }),
        ),
        (
            "Store::new + Func::new + drop",
            bench(|| {
                let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
                black_box(host(&mut s));
            }),
        ),
        (
            "... + Instance::new, no memory",
            bench(|| {
                let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
                let f = host(&mut s);
                black_box(wasmc_loader::Instance::new(&mut s, &nomem, &[f.into()]).unwrap());
            }),
        ),
        (
            "... + Instance::new, memory + data",
            bench(|| {
                let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
                let f = host(&mut s);
                black_box(wasmc_loader::Instance::new(&mut s, &calls, &[f.into()]).unwrap());
            }),
        ),
    ]);
    let big = wasmc_loader::Module::from_file(wasmc_engine(), &path)?;
    let steps = steps.chain([(
        "Store::new + Instance::new, 10,000 functions",
        bench(|| {
            let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
            black_box(wasmc_loader::Instance::new(&mut s, &big, &[]).unwrap());
        }),
    )]);
    for (what, st) in steps {
        println!("{what:<60} {:>10} (p90 {})", show(st.median), show(st.p90));
    }
    Ok(())
}

/// Times `f` on a fresh value from `setup`; neither `setup` nor dropping
/// the value is timed.
fn bench_timed_part<T>(mut setup: impl FnMut() -> T, mut f: impl FnMut(&mut T)) -> Stats {
    let mut per_iter = Vec::new();
    for _ in 0..300 {
        let mut v = setup();
        let t = Instant::now();
        f(&mut v);
        per_iter.push(t.elapsed());
        drop(v);
    }
    per_iter.sort();
    Stats {
        median: per_iter[per_iter.len() / 2],
        p90: per_iter[per_iter.len() * 9 / 10],
        samples: per_iter.len(),
    }
}

/// Times `f` on a fresh value from `setup` (setup not timed), per iteration.
fn bench_with_setup<T>(mut setup: impl FnMut() -> T, mut f: impl FnMut(T)) -> Stats {
    let mut per_iter = Vec::new();
    for _ in 0..300 {
        let v = setup();
        let t = Instant::now();
        f(v);
        per_iter.push(t.elapsed());
    }
    per_iter.sort();
    Stats {
        median: per_iter[per_iter.len() / 2],
        p90: per_iter[per_iter.len() * 9 / 10],
        samples: per_iter.len(),
    }
}

fn main() -> Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    if filter == "breakdown" {
        return breakdown(&artifacts_dir());
    }
    let want = |name: &str| name.contains(&filter);
    let dir = artifacts_dir();
    let engine = wasmtime::Engine::default();
    let mut rows = Vec::new();

    // ----- load -----
    for n in [10usize, 1_000, 10_000] {
        let what = format!("load, {n} functions");
        if !want(&what) {
            continue;
        }
        let wat = many_functions(n);
        let ours = wasmc_artifact(&dir, &format!("funcs{n}"), &wat)?;
        let theirs = wasmtime_artifact(&engine, &dir, &format!("funcs{n}"), &wat)?;
        let sizes = (
            std::fs::metadata(&ours)?.len(),
            std::fs::metadata(&theirs)?.len(),
        );
        // Sanity: both load and agree.
        let m = wasmc_loader::Module::from_file(wasmc_engine(), &ours)?;
        let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
        let i = wasmc_loader::Instance::new(&mut s, &m, &[])?;
        let f = i.get_typed_func::<i32, i32>(&mut s, "f0")?;
        let expect = f.call(&mut s, 3)?;
        // SAFETY: the file was just written by `Module::serialize` of this engine.
        let wm = unsafe { wasmtime::Module::deserialize_file(&engine, &theirs)? };
        let mut ws = wasmtime::Store::new(&engine, ());
        let wi = wasmtime::Instance::new(&mut ws, &wm, &[])?;
        let wf = wi.get_typed_func::<i32, i32>(&mut ws, "f0")?;
        assert_eq!(wf.call(&mut ws, 3)?, expect);

        let wasmtime = bench(|| {
            // SAFETY: the file was written by `Module::serialize` of this
            // engine and is not modified while the benchmark runs.
            black_box(unsafe { wasmtime::Module::deserialize_file(&engine, &theirs).unwrap() });
        });
        // Like for like: wasmc's trusted path is `unsafe` like Wasmtime's
        // `deserialize_file` (neither verifies the file); the safe default
        // copies the artifact into a sealed memfd and checks its digest
        // first (issue 11).
        let unchecked = bench(|| {
            // SAFETY: the artifact was just written by `wasmc_artifact` and
            // is not modified while the benchmark runs.
            black_box(unsafe {
                wasmc_loader::Module::from_file_unchecked(wasmc_engine(), &ours).unwrap()
            });
        });
        rows.push(Row {
            what: format!(
                "{what}, trusted (`unsafe`) path ({} KiB / {} KiB)",
                sizes.0 / 1024,
                sizes.1 / 1024
            ),
            wasmc: unchecked,
            wasmtime: wasmtime.clone(),
        });
        let wasmc = bench(|| {
            black_box(wasmc_loader::Module::from_file(wasmc_engine(), &ours).unwrap());
        });
        rows.push(Row {
            what: format!("{what}, wasmc verified (safe default) vs Wasmtime `deserialize_file`"),
            wasmc,
            wasmtime,
        });
    }

    // ----- instantiate and call -----
    let ours = wasmc_artifact(&dir, "calls", CALLS)?;
    let theirs = wasmtime_artifact(&engine, &dir, "calls", CALLS)?;
    let m = wasmc_loader::Module::from_file(wasmc_engine(), &ours)?;
    // SAFETY: written by `Module::serialize` of this engine above.
    let wm = unsafe { wasmtime::Module::deserialize_file(&engine, &theirs)? };
    let host_ty = wasmc_loader::FuncType {
        params: vec![wasmc_loader::ValType::I32],
        results: vec![wasmc_loader::ValType::I32],
    };
    // Typed host functions on both sides (`Func::wrap`).
    let wasmc_instance = |s: &mut wasmc_loader::Store<()>| {
        let f = wasmc_loader::Func::wrap(&mut *s, |x: i32| x);
        wasmc_loader::Instance::new(&mut *s, &m, &[f.into()]).unwrap()
    };
    // Dynamic (`Val`) host functions on both sides (`Func::new`).
    let wasmc_dyn_instance = |s: &mut wasmc_loader::Store<()>| {
        let f = wasmc_loader::Func::new(&mut *s, host_ty.clone(), |_, p, r| {
            r[0] = p[0].clone();
            Ok(())
        });
        wasmc_loader::Instance::new(&mut *s, &m, &[f.into()]).unwrap()
    };
    let wasmtime_instance = |s: &mut wasmtime::Store<()>| {
        let f = wasmtime::Func::wrap(&mut *s, |x: i32| x);
        wasmtime::Instance::new(&mut *s, &wm, &[f.into()]).unwrap()
    };

    if want("instantiate") {
        let wasmc = bench(|| {
            let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
            black_box(wasmc_instance(&mut s));
        });
        let wasmtime = bench(|| {
            let mut s = wasmtime::Store::new(&engine, ());
            black_box(wasmtime_instance(&mut s));
        });
        rows.push(Row {
            what: "store + Instance::new (1 memory, data, 1 import)".into(),
            wasmc,
            wasmtime,
        });
    }

    // ----- large modules: load, instantiate, teardown; on demand and pooled -----
    rows.extend(large::rows(&filter, &dir)?);

    let mut s = wasmc_loader::Store::new(wasmc_engine(), ());
    let i = wasmc_instance(&mut s);
    let id = i.get_typed_func::<i32, i32>(&mut s, "id")?;
    let call_host = i.get_typed_func::<i32, i32>(&mut s, "call_host")?;
    let mut ws = wasmtime::Store::new(&engine, ());
    let wi = wasmtime_instance(&mut ws);
    let wid = wi.get_typed_func::<i32, i32>(&mut ws, "id")?;
    let wcall_host = wi.get_typed_func::<i32, i32>(&mut ws, "call_host")?;
    let n = HOST_CALLS_PER_ITER;
    let sum = n * (n + 1) / 2;
    assert_eq!(call_host.call(&mut s, n)?, sum);
    assert_eq!(wcall_host.call(&mut ws, n)?, sum);

    if want("host -> wasm") {
        let wasmc = bench(|| {
            black_box(id.call(&mut s, black_box(7)).unwrap());
        });
        let wasmtime = bench(|| {
            black_box(wid.call(&mut ws, black_box(7)).unwrap());
        });
        rows.push(Row {
            what: "host -> Wasm call, i32 -> i32 identity".into(),
            wasmc,
            wasmtime,
        });
    }
    if want("wasm -> host") {
        let per = |st: Stats| Stats {
            median: st.median / n as u32,
            p90: st.p90 / n as u32,
            samples: st.samples,
        };
        let wasmc = per(bench(|| {
            black_box(call_host.call(&mut s, black_box(n)).unwrap());
        }));
        let wasmtime = per(bench(|| {
            black_box(wcall_host.call(&mut ws, black_box(n)).unwrap());
        }));
        rows.push(Row {
            what: "Wasm -> host call, i32 -> i32, typed `Func::wrap` (per call)".into(),
            wasmc,
            wasmtime,
        });
        // Host functions that take `Val`s: wasmc's `Func::new` and
        // Wasmtime's `Func::new`.
        let mut dyn_s = wasmc_loader::Store::new(wasmc_engine(), ());
        let dyn_i = wasmc_dyn_instance(&mut dyn_s);
        let dyn_call_host = dyn_i.get_typed_func::<i32, i32>(&mut dyn_s, "call_host")?;
        assert_eq!(dyn_call_host.call(&mut dyn_s, n)?, sum);
        let mut ds = wasmtime::Store::new(&engine, ());
        let ty =
            wasmtime::FuncType::new(&engine, [wasmtime::ValType::I32], [wasmtime::ValType::I32]);
        let df = wasmtime::Func::new(&mut ds, ty, |_, p, r| {
            r[0] = p[0];
            Ok(())
        });
        let di = wasmtime::Instance::new(&mut ds, &wm, &[df.into()])?;
        let dcall = di.get_typed_func::<i32, i32>(&mut ds, "call_host")?;
        assert_eq!(dcall.call(&mut ds, n)?, sum);
        let wasmc = per(bench(|| {
            black_box(dyn_call_host.call(&mut dyn_s, black_box(n)).unwrap());
        }));
        let wasmtime = per(bench(|| {
            black_box(dcall.call(&mut ds, black_box(n)).unwrap());
        }));
        rows.push(Row {
            what: "Wasm -> host call, dynamic (`Val`) host function (per call)".into(),
            wasmc,
            wasmtime,
        });
    }

    println!(
        "| benchmark | wasmc median | wasmc p90 | wasmtime median | wasmtime p90 | wasmc / wasmtime |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2}x |",
            r.what,
            show(r.wasmc.median),
            show(r.wasmc.p90),
            show(r.wasmtime.median),
            show(r.wasmtime.p90),
            r.wasmc.median.as_secs_f64() / r.wasmtime.median.as_secs_f64()
        );
    }
    let samples: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r.wasmc.samples, r.wasmtime.samples))
        .collect();
    println!("\nsamples (wasmc/wasmtime): {}", samples.join(", "));
    Ok(())
}
