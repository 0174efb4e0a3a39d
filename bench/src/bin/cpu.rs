//! Run time of CPU-bound programs: wasmc vs Wasmtime vs native code.
//!
//! The kernels are `programs/cpu.c`, compiled to `programs/cpu.wasm` by
//! `programs/build.sh` (checked in) and natively by `build.rs`. Each kernel
//! runs `RUNS` times per engine after one warm-up run; the table shows the
//! median and the ratios. Every engine's checksum must equal native's.
//!
//! The columns `wasmc+epoch` and `wasmc+fuel` run the same kernels compiled
//! with `--epoch-interruption` (deadline never reached) and `--fuel` (fuel
//! never used up); `epoch cost` and `fuel cost` are their time over plain
//! wasmc's.
//!
//! `cargo run --release --bin cpu [FILTER]`.

use anyhow::{ensure, Result};
use std::time::{Duration, Instant};

/// The engine every wasmc module and store here is made with.
fn wasmc_engine() -> &'static wasmc_loader::Engine {
    static E: std::sync::OnceLock<wasmc_loader::Engine> = std::sync::OnceLock::new();
    E.get_or_init(wasmc_loader::Engine::default)
}

const RUNS: usize = 7;

/// (export name, argument): each takes tens of milliseconds natively.
const KERNELS: &[(&str, i32)] = &[
    ("bench_fib", 32),
    ("bench_sieve", 4_000_000),
    ("bench_matmul", 256),
    ("bench_nbody", 300_000),
    ("bench_crc32", 40),
    ("bench_qsort", 1_000_000),
];

extern "C" {
    fn bench_fib(n: i32) -> i64;
    fn bench_sieve(n: i32) -> i64;
    fn bench_matmul(n: i32) -> i64;
    fn bench_nbody(n: i32) -> i64;
    fn bench_crc32(n: i32) -> i64;
    fn bench_qsort(n: i32) -> i64;
}

fn native(name: &str, n: i32) -> i64 {
    // SAFETY: the kernels are plain C functions of the signature declared
    // above (programs/cpu.c, built by build.rs) that touch only their own
    // static buffers; the benchmark is single-threaded.
    unsafe {
        match name {
            "bench_fib" => bench_fib(n),
            "bench_sieve" => bench_sieve(n),
            "bench_matmul" => bench_matmul(n),
            "bench_nbody" => bench_nbody(n),
            "bench_crc32" => bench_crc32(n),
            "bench_qsort" => bench_qsort(n),
            _ => unreachable!("unknown kernel {name}"),
        }
    }
}

fn median(mut f: impl FnMut() -> i64, expect: i64) -> Result<Duration> {
    ensure!(f() == expect, "checksum differs from native");
    let mut t: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let s = Instant::now();
            std::hint::black_box(f());
            s.elapsed()
        })
        .collect();
    t.sort();
    Ok(t[RUNS / 2])
}

fn main() -> Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let wasm = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/programs/cpu.wasm"))?;

    // Plain, with epoch checks (a deadline that is never reached) and with
    // fuel counting (more fuel than any run uses): the two last measure the
    // cost of the instrumentation alone.
    let instantiate = |epochs: bool, fuel: bool| -> Result<_> {
        let opts = wasmc_compiler::CompileOptions {
            interruption: wasmc_compiler::Interruption { epochs, fuel },
            ..Default::default()
        };
        let artifact = wasmc_compiler::compile(&wasm, &opts)?;
        let module = wasmc_loader::Module::from_bytes(wasmc_engine(), &artifact)?;
        let mut store = wasmc_loader::Store::new(wasmc_engine(), ());
        if epochs {
            store.set_epoch_deadline(u64::MAX / 2)?;
        }
        if fuel {
            store.set_fuel(u64::MAX)?;
        }
        let instance = wasmc_loader::Instance::new(&mut store, &module, &[])?;
        Ok((store, instance))
    };
    let (mut store, instance) = instantiate(false, false)?;
    let (mut estore, einstance) = instantiate(true, false)?;
    let (mut fstore, finstance) = instantiate(false, true)?;

    let engine = wasmtime::Engine::default();
    let wmodule = wasmtime::Module::new(&engine, &wasm)?;
    let mut wstore = wasmtime::Store::new(&engine, ());
    let winstance = wasmtime::Instance::new(&mut wstore, &wmodule, &[])?;

    println!(
        "| kernel | native | wasmc | Wasmtime 25 | wasmc / native | wasmc / Wasmtime \
         | wasmc+epoch | wasmc+fuel | epoch cost | fuel cost |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = (Vec::new(), Vec::new());
    let mut costs = (Vec::new(), Vec::new());
    for &(name, n) in KERNELS {
        if !name.contains(&filter) {
            continue;
        }
        let expect = native(name, n);
        let tn = median(|| native(name, n), expect)?;
        let f = instance.get_typed_func::<i32, i64>(&mut store, name)?;
        let tc = median(|| f.call(&mut store, n).unwrap(), expect)?;
        let wf = winstance.get_typed_func::<i32, i64>(&mut wstore, name)?;
        let tw = median(|| wf.call(&mut wstore, n).unwrap(), expect)?;
        let ef = einstance.get_typed_func::<i32, i64>(&mut estore, name)?;
        let te = median(|| ef.call(&mut estore, n).unwrap(), expect)?;
        let ff = finstance.get_typed_func::<i32, i64>(&mut fstore, name)?;
        let tf = median(|| ff.call(&mut fstore, n).unwrap(), expect)?;
        let (ce, cf) = (
            te.as_secs_f64() / tc.as_secs_f64(),
            tf.as_secs_f64() / tc.as_secs_f64(),
        );
        costs.0.push(ce);
        costs.1.push(cf);
        let (rn, rw) = (
            tc.as_secs_f64() / tn.as_secs_f64(),
            tc.as_secs_f64() / tw.as_secs_f64(),
        );
        ratios.0.push(rn);
        ratios.1.push(rw);
        println!(
            "| {name}({n}) | {:.1} ms | {:.1} ms | {:.1} ms | {rn:.2}x | {rw:.2}x \
             | {:.1} ms | {:.1} ms | {ce:.3}x | {cf:.3}x |",
            ms(tn),
            ms(tc),
            ms(tw),
            ms(te),
            ms(tf)
        );
    }
    let geo = |v: &[f64]| (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp();
    if !ratios.0.is_empty() {
        println!(
            "| geomean | | | | {:.2}x | {:.2}x | | | {:.3}x | {:.3}x |",
            geo(&ratios.0),
            geo(&ratios.1),
            geo(&costs.0),
            geo(&costs.1)
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
