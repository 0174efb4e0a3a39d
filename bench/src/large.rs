//! Large modules (issue 15): load, instantiate and teardown with 64 KiB,
//! 1 MiB and 16 MiB of data and 10 or 10,000 functions, on demand and with
//! the pooling allocator, against Wasmtime 25 configured the same way
//! (copy-on-write memory images are on by default there); a small module;
//! and `esbuild.wasm` of the npm package `esbuild-wasm` (fetched by
//! `bench/fetch-esbuild.sh`, which `make bench` runs; an esbuild-sized
//! synthetic module stands in when it is absent) for load, instantiation,
//! compile time and artifact size.
//!
//! Rows: `cargo run --release -- large` (or a narrower filter: `64 KiB`,
//! `esbuild`, `small`, ...).

use crate::{
    bench, bench_timed_part, bench_with_setup, data_byte, data_module, many_functions,
    wasmc_artifact, wasmtime_artifact, Row, Stats,
};
use anyhow::Result;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// Slots for the pooled engines on both sides: more than any row keeps
/// alive, memories of up to 64 MiB.
const POOL_SLOTS: u32 = 64;
const POOL_MAX_MEMORY: u64 = 64 << 20;

/// A wasmc engine with the pooling allocator.
fn wasmc_pooled_engine() -> wasmc_loader::Engine {
    let mut p = wasmc_loader::PoolingAllocationConfig::default();
    p.total_memories(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .total_core_instances(POOL_SLOTS)
        .max_memory_size(POOL_MAX_MEMORY);
    let mut c = wasmc_loader::Config::new();
    c.allocation_strategy(wasmc_loader::InstanceAllocationStrategy::Pooling(p));
    wasmc_loader::Engine::new(&c).expect("pooled wasmc engine")
}

/// A Wasmtime engine with its pooling allocator, the same limits.
fn wasmtime_pooled_engine() -> wasmtime::Engine {
    let mut p = wasmtime::PoolingAllocationConfig::default();
    p.total_memories(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .total_core_instances(POOL_SLOTS)
        .max_memory_size(POOL_MAX_MEMORY as usize);
    let mut c = wasmtime::Config::new();
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
    wasmtime::Engine::new(&c).expect("pooled wasmtime engine")
}

/// One small module: one memory, one data segment, one function.
const SMALL: &str = r#"(module
  (memory (export "memory") 1)
  (data (i32.const 64) "a small data segment of some bytes, as a real module has")
  (func (export "id") (param i32) (result i32) (local.get 0)))"#;

/// An esbuild-sized module: `segments` active data segments of `seg_len`
/// bytes each, back to back from offset 1024, and `funcs` functions.
/// (`esbuild.wasm` of `esbuild-wasm` 0.28 has 5,307 functions and 98,450
/// data segments in 13.9 MB.)
fn esbuild_like(funcs: usize, segments: usize, seg_len: usize) -> String {
    let bytes = segments * seg_len;
    let pages = (1024 + bytes).div_ceil(65536) + 16;
    let mut s = many_functions(funcs);
    s.pop(); // ")\n"
    s.pop();
    s.push_str(&format!("(memory (export \"memory\") {pages})\n"));
    for i in 0..segments {
        let start = 1024 + i * seg_len;
        let text: String = (start..start + seg_len)
            .map(|j| format!("\\{:02x}", data_byte(j)))
            .collect();
        s.push_str(&format!("(data (i32.const {start}) \"{text}\")\n"));
    }
    s.push(')');
    s
}

/// The memory pages a benchmark writes before teardown.
const TOUCHED_PAGES: usize = 16;

fn touch(m: &mut [u8]) {
    for p in 0..TOUCHED_PAGES.min(m.len() / 65536) {
        m[p * 65536 + 1] ^= 1;
    }
}

/// Both runtimes' modules of one Wasm text, on demand and pooled.
struct Pair {
    ours: wasmc_loader::Module,
    ours_pooled: wasmc_loader::Module,
    theirs: wasmtime::Module,
    theirs_pooled: wasmtime::Module,
}

struct Engines {
    wasmc: wasmc_loader::Engine,
    wasmc_pooled: wasmc_loader::Engine,
    wasmtime: wasmtime::Engine,
    wasmtime_pooled: wasmtime::Engine,
}

fn load_pair(e: &Engines, ours: &Path, theirs: &Path) -> Result<Pair> {
    // SAFETY: the artifacts were just written by this benchmark and are
    // not changed while loaded.
    unsafe {
        Ok(Pair {
            ours: wasmc_loader::Module::from_file(&e.wasmc, ours)?,
            ours_pooled: wasmc_loader::Module::from_file(&e.wasmc_pooled, ours)?,
            theirs: wasmtime::Module::deserialize_file(&e.wasmtime, theirs)?,
            theirs_pooled: wasmtime::Module::deserialize_file(&e.wasmtime_pooled, theirs)?,
        })
    }
}

/// `from_file` (safe: images copied into a sealed memfd) and
/// `from_file_unchecked` against `deserialize_file`.
fn load_rows(rows: &mut Vec<Row>, what: &str, e: &Engines, ours: &Path, theirs: &Path) {
    let wasmtime = || {
        bench(|| {
            // SAFETY: written by this benchmark, not changed while loaded.
            black_box(unsafe { wasmtime::Module::deserialize_file(&e.wasmtime, theirs).unwrap() });
        })
    };
    let wasmc = bench(|| {
        black_box(wasmc_loader::Module::from_file(&e.wasmc, ours).unwrap());
    });
    rows.push(Row {
        what: format!("load, {what}: from_file / deserialize_file"),
        wasmc,
        wasmtime: wasmtime(),
    });
    let wasmc = bench(|| {
        // SAFETY: as above.
        black_box(unsafe { wasmc_loader::Module::from_file_unchecked(&e.wasmc, ours).unwrap() });
    });
    rows.push(Row {
        what: format!("load, {what}: from_file_unchecked / deserialize_file"),
        wasmc,
        wasmtime: wasmtime(),
    });
}

fn once(d: Duration) -> Stats {
    Stats {
        median: d,
        p90: d,
        samples: 1,
    }
}

/// Every row of this benchmark whose name contains `filter` (all for
/// `large`).
pub fn rows(filter: &str, dir: &Path) -> Result<Vec<Row>> {
    let want = |name: &str| filter == "large" || name.contains(filter);
    let e = Engines {
        wasmc: wasmc_loader::Engine::default(),
        wasmc_pooled: wasmc_pooled_engine(),
        wasmtime: wasmtime::Engine::default(),
        wasmtime_pooled: wasmtime_pooled_engine(),
    };
    let mut rows = Vec::new();

    if want("small module") {
        let ours = wasmc_artifact(dir, "small", SMALL)?;
        let theirs = wasmtime_artifact(&e.wasmtime, dir, "small", SMALL)?;
        let p = load_pair(&e, &ours, &theirs)?;
        instance_rows(
            &mut rows,
            "small module (1 memory, 1 data segment)",
            &e,
            &p,
            "memory",
            Link::None,
        )?;
    }

    for (kib, nfuncs) in [
        (64usize, 10usize),
        (64, 10_000),
        (1024, 10),
        (1024, 10_000),
        (16 * 1024, 10),
        (16 * 1024, 10_000),
    ] {
        let what = format!("{kib} KiB data, {nfuncs} functions");
        if !want(&what) {
            continue;
        }
        let wat = data_module(kib * 1024, nfuncs);
        let name = format!("large{kib}k-{nfuncs}");
        let ours = wasmc_artifact(dir, &name, &wat)?;
        let theirs = wasmtime_artifact(&e.wasmtime, dir, &name, &wat)?;
        let p = load_pair(&e, &ours, &theirs)?;
        // Sanity: both see the same data, pooled or not, again and again.
        for _ in 0..3 {
            for (m, wm, we, te) in [
                (&p.ours, &p.theirs, &e.wasmc, &e.wasmtime),
                (&p.ours_pooled, &p.theirs_pooled, &e.wasmc_pooled, &e.wasmtime_pooled),
            ] {
                let mut s = wasmc_loader::Store::new(we, ());
                let i = wasmc_loader::Instance::new(&mut s, m, &[])?;
                let mem = i.get_memory(&mut s, "memory").unwrap();
                let mut ws = wasmtime::Store::new(te, ());
                let wi = wasmtime::Instance::new(&mut ws, wm, &[])?;
                let wmem = wi.get_memory(&mut ws, "memory").unwrap();
                assert!(mem.data(&s) == wmem.data(&ws));
                assert_eq!(mem.data(&s)[kib * 1024 - 1], data_byte(kib * 1024 - 1));
                touch(mem.data_mut(&mut s));
            }
        }
        load_rows(&mut rows, &what, &e, &ours, &theirs);
        instance_rows(&mut rows, &what, &e, &p, "memory", Link::None)?;
    }

    if want("esbuild") {
        let real = esbuild_path();
        let (wasm, what, memory) = match &real {
            Some(p) => (
                std::fs::read(p)?,
                "esbuild.wasm (esbuild-wasm 0.28.2: 13.9 MB, 5,307 functions, 98,450 data segments)"
                    .to_string(),
                "mem",
            ),
            None => {
                eprintln!(
                    "note: bench/target/esbuild/esbuild.wasm is absent (run bench/fetch-esbuild.sh): \
                     the esbuild rows use a synthetic module of its size"
                );
                // 5,307 functions; 98,450 segments of 128 bytes (12.6 MB).
                (
                    wat::parse_str(esbuild_like(5_307, 98_450, 128))?,
                    "esbuild-sized synthetic (5,307 functions, 98,450 segments, 12.6 MB)"
                        .to_string(),
                    "memory",
                )
            }
        };
        let t = Instant::now();
        let ours_bytes =
            wasmc_compiler::compile(&wasm, &wasmc_compiler::CompileOptions::default())?;
        let wasmc_compile = t.elapsed();
        let t = Instant::now();
        let theirs_bytes = e.wasmtime.precompile_module(&wasm)?;
        let wasmtime_compile = t.elapsed();
        let ours = dir.join("esbuild.wasmc.o");
        let theirs = dir.join("esbuild.cwasm");
        std::fs::write(&ours, &ours_bytes)?;
        std::fs::write(&theirs, &theirs_bytes)?;
        rows.push(Row {
            what: format!("compile, {what} (one run): compile / precompile_module"),
            wasmc: once(wasmc_compile),
            wasmtime: once(wasmtime_compile),
        });
        println!(
            "artifact size, {what}: wasmc {} bytes, Wasmtime {} bytes ({:.2}x)",
            ours_bytes.len(),
            theirs_bytes.len(),
            ours_bytes.len() as f64 / theirs_bytes.len() as f64
        );
        let p = load_pair(&e, &ours, &theirs)?;
        load_rows(&mut rows, &what, &e, &ours, &theirs);
        instance_rows(&mut rows, &what, &e, &p, memory, Link::Pre)?;
    }
    Ok(rows)
}

/// `bench/target/esbuild/esbuild.wasm`, if `fetch-esbuild.sh` fetched it.
fn esbuild_path() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/esbuild/esbuild.wasm");
    p.exists().then_some(p)
}

/// How a row instantiates.
#[derive(Clone, Copy)]
enum Link {
    /// `Instance::new` without imports.
    None,
    /// The way a service does it: a linker that defines every import (here
    /// as a trap; esbuild's `gojs` imports are not called by
    /// instantiation), an `InstancePre` made once, then
    /// `InstancePre::instantiate` per store.
    Pre,
}

type WasmcNew<'a> = Box<dyn Fn(&mut wasmc_loader::Store<()>) -> wasmc_loader::Instance + 'a>;
type WasmtimeNew<'a> = Box<dyn Fn(&mut wasmtime::Store<()>) -> wasmtime::Instance + 'a>;

/// The instantiate and teardown rows of one module, which exports its
/// memory as `memory`: on demand and pooled, instantiated as `link` says.
fn instance_rows(
    rows: &mut Vec<Row>,
    what: &str,
    e: &Engines,
    p: &Pair,
    memory: &str,
    link: Link,
) -> Result<()> {
    let cases: [(&str, &wasmc_loader::Module, &wasmtime::Module, bool); 2] = [
        ("on demand", &p.ours, &p.theirs, false),
        ("pooled", &p.ours_pooled, &p.theirs_pooled, true),
    ];
    for (how, ours, theirs, pooled) in cases {
        let (we, te) = if pooled {
            (&e.wasmc_pooled, &e.wasmtime_pooled)
        } else {
            (&e.wasmc, &e.wasmtime)
        };
        let (new_ours, new_theirs): (WasmcNew<'_>, WasmtimeNew<'_>) = match link {
            Link::None => (
                Box::new(|s| wasmc_loader::Instance::new(s, ours, &[]).unwrap()),
                Box::new(|s| wasmtime::Instance::new(s, theirs, &[]).unwrap()),
            ),
            Link::Pre => {
                let mut l = wasmc_loader::Linker::<()>::new(we);
                l.define_unknown_imports_as_traps(ours)?;
                let pre = l.instantiate_pre(ours)?;
                let mut wl = wasmtime::Linker::<()>::new(te);
                wl.define_unknown_imports_as_traps(theirs)?;
                let wpre = wl.instantiate_pre(theirs)?;
                (
                    Box::new(move |s| pre.instantiate(s).unwrap()),
                    Box::new(move |s| wpre.instantiate(s).unwrap()),
                )
            }
        };
        // Warm (the pooled slots have held this module before), and a
        // sanity check: both see the same initial memory.
        for _ in 0..3 {
            let mut s = wasmc_loader::Store::new(we, ());
            let i = new_ours(&mut s);
            let mut ws = wasmtime::Store::new(te, ());
            let wi = new_theirs(&mut ws);
            let m = i.get_memory(&mut s, memory).expect("memory export");
            let wm = wi.get_memory(&mut ws, memory).expect("memory export");
            assert!(m.data(&s) == wm.data(&ws), "initial memories differ");
        }
        let wasmc = bench_timed_part(
            || wasmc_loader::Store::new(we, ()),
            |s| {
                black_box(new_ours(s));
            },
        );
        let wasmtime = bench_timed_part(
            || wasmtime::Store::new(te, ()),
            |s| {
                black_box(new_theirs(s));
            },
        );
        let prefix = match link {
            Link::None => "instantiate",
            Link::Pre => "instantiate (InstancePre)",
        };
        rows.push(Row {
            what: format!("{prefix}, {what}, {how}"),
            wasmc,
            wasmtime,
        });
        let wasmc = bench_with_setup(
            || {
                let mut s = wasmc_loader::Store::new(we, ());
                let i = new_ours(&mut s);
                let m = i.get_memory(&mut s, memory).unwrap();
                touch(m.data_mut(&mut s));
                s
            },
            drop,
        );
        let wasmtime = bench_with_setup(
            || {
                let mut s = wasmtime::Store::new(te, ());
                let i = new_theirs(&mut s);
                let m = i.get_memory(&mut s, memory).unwrap();
                touch(m.data_mut(&mut s));
                s
            },
            drop,
        );
        rows.push(Row {
            what: format!("teardown, {what}, {how}, {TOUCHED_PAGES} pages touched"),
            wasmc,
            wasmtime,
        });
    }
    Ok(())
}
