//! Wasm -> Wasm call benchmark: what ordinary calls cost with wasmc's Wasm
//! calling convention (Cranelift's `tail` since tail calls landed), against
//! Wasmtime 25 (which also uses `tail` for Wasm functions).
//!
//! `cargo run --release --bin calls` (here, in `bench/`). Each row runs one
//! exported function whose body makes many calls, and reports the median time
//! per call (whole run / number of calls), from 1 s of samples.
//!
//! - `fib`: recursive `fib(25)`, direct calls (242,785 calls).
//! - `indirect`: a loop of `call_indirect` to a two-argument function.
//! - `stack args`: a loop of direct calls with 12 `i64` parameters (some on
//!   the stack).
//! - `import`: a loop of calls to a function of another instance.
//! - `tail loop`: a loop made of `return_call`s (wasmc only counts it if the
//!   build supports tail calls).

#[path = "../harness.rs"]
mod harness;

use anyhow::Result;
use std::hint::black_box;
use std::time::Duration;

const CALLEE: &str = r#"
(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"#;

const MODULE: &str = r#"
(module
  (import "callee" "add" (func $ext_add (param i32 i32) (result i32)))
  (type $bin (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) func $add)
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "indirect") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call_indirect (type $bin) (local.get $acc) (local.get $n) (i32.const 0)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func $wide (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
    (i64.add (i64.add (local.get 0) (local.get 5)) (i64.add (local.get 10) (local.get 11))))
  (func (export "stack_args") (param $n i32) (result i64)
    (local $acc i64)
    (loop $l
      (local.set $acc (call $wide (local.get $acc) (i64.const 1) (i64.const 2) (i64.const 3)
                                  (i64.const 4) (i64.const 5) (i64.const 6) (i64.const 7)
                                  (i64.const 8) (i64.const 9) (i64.const 10)
                                  (i64.extend_i32_u (local.get $n))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func (export "import") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call $ext_add (local.get $acc) (local.get $n)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
)
"#;

const TAIL: &str = r#"
(module
  (func $count (export "tail_loop") (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))
                                (i32.add (local.get $acc) (local.get $n)))))))
"#;

/// Median of 1 s of samples of `f`, divided by `calls`, in nanoseconds.
fn per_call(calls: u32, f: impl FnMut()) -> f64 {
    let mut s = harness::samples(Duration::from_secs(1), f);
    s.sort();
    s[s.len() / 2].as_secs_f64() * 1e9 / f64::from(calls)
}

fn show(ns: f64) -> String {
    format!("{ns:.2} ns")
}

const N: i32 = 100_000;
const FIB: i32 = 25;
const FIB_CALLS: u32 = 242_785;

fn wasmc_rows() -> Result<Vec<(&'static str, f64)>> {
    use wasmc_loader::{Engine, Instance, Linker, Module, Store};
    let opts = wasmc_compiler::CompileOptions::default();
    let engine = Engine::default();
    let callee = Module::from_bytes(&engine, &wasmc_compiler::compile(CALLEE.as_bytes(), &opts)?)?;
    let module = Module::from_bytes(&engine, &wasmc_compiler::compile(MODULE.as_bytes(), &opts)?)?;
    let mut store = Store::new(&engine, ());
    let ci = Instance::new(&mut store, &callee, &[])?;
    let mut linker = Linker::new(&engine);
    linker.instance(&mut store, "callee", ci)?;
    let i = linker.instantiate(&mut store, &module)?;
    let fib = i.get_typed_func::<i32, i32>(&mut store, "fib")?;
    let ind = i.get_typed_func::<i32, i32>(&mut store, "indirect")?;
    let wide = i.get_typed_func::<i32, i64>(&mut store, "stack_args")?;
    let imp = i.get_typed_func::<i32, i32>(&mut store, "import")?;
    assert_eq!(fib.call(&mut store, 20)?, 6765);
    let mut rows = vec![
        (
            "fib (direct calls)",
            per_call(FIB_CALLS, || {
                black_box(fib.call(&mut store, FIB).unwrap());
            }),
        ),
        (
            "call_indirect",
            per_call(N as u32, || {
                black_box(ind.call(&mut store, N).unwrap());
            }),
        ),
        (
            "12 i64 arguments",
            per_call(N as u32, || {
                black_box(wide.call(&mut store, N).unwrap());
            }),
        ),
        (
            "call to another instance",
            per_call(N as u32, || {
                black_box(imp.call(&mut store, N).unwrap());
            }),
        ),
    ];
    // Builds without tail calls refuse the module: no row then.
    if let Ok(bytes) = wasmc_compiler::compile(TAIL.as_bytes(), &opts) {
        let m = Module::from_bytes(&engine, &bytes)?;
        let i = Instance::new(&mut store, &m, &[])?;
        let t = i.get_typed_func::<(i32, i32), i32>(&mut store, "tail_loop")?;
        rows.push((
            "return_call loop",
            per_call(N as u32, || {
                black_box(t.call(&mut store, (N, 0)).unwrap());
            }),
        ));
    }
    Ok(rows)
}

fn wasmtime_rows() -> Result<Vec<(&'static str, f64)>> {
    use wasmtime::{Engine, Instance, Linker, Module, Store};
    let mut config = wasmtime::Config::new();
    config.wasm_tail_call(true);
    let engine = Engine::new(&config)?;
    let callee = Module::new(&engine, wat::parse_str(CALLEE)?)?;
    let module = Module::new(&engine, wat::parse_str(MODULE)?)?;
    let tail = Module::new(&engine, wat::parse_str(TAIL)?)?;
    let mut store = Store::new(&engine, ());
    let ci = Instance::new(&mut store, &callee, &[])?;
    let mut linker = Linker::new(&engine);
    linker.instance(&mut store, "callee", ci)?;
    let i = linker.instantiate(&mut store, &module)?;
    let fib = i.get_typed_func::<i32, i32>(&mut store, "fib")?;
    let ind = i.get_typed_func::<i32, i32>(&mut store, "indirect")?;
    let wide = i.get_typed_func::<i32, i64>(&mut store, "stack_args")?;
    let imp = i.get_typed_func::<i32, i32>(&mut store, "import")?;
    let ti = Instance::new(&mut store, &tail, &[])?;
    let t = ti.get_typed_func::<(i32, i32), i32>(&mut store, "tail_loop")?;
    Ok(vec![
        (
            "fib (direct calls)",
            per_call(FIB_CALLS, || {
                black_box(fib.call(&mut store, FIB).unwrap());
            }),
        ),
        (
            "call_indirect",
            per_call(N as u32, || {
                black_box(ind.call(&mut store, N).unwrap());
            }),
        ),
        (
            "12 i64 arguments",
            per_call(N as u32, || {
                black_box(wide.call(&mut store, N).unwrap());
            }),
        ),
        (
            "call to another instance",
            per_call(N as u32, || {
                black_box(imp.call(&mut store, N).unwrap());
            }),
        ),
        (
            "return_call loop",
            per_call(N as u32, || {
                black_box(t.call(&mut store, (N, 0)).unwrap());
            }),
        ),
    ])
}

fn main() -> Result<()> {
    let ours = wasmc_rows()?;
    let theirs = wasmtime_rows()?;
    println!("| benchmark (per call) | wasmc | wasmtime 25 |");
    println!("|---|---:|---:|");
    for (name, t) in &theirs {
        let o = ours
            .iter()
            .find(|(n, _)| n == name)
            .map_or("-".to_string(), |(_, d)| show(*d));
        println!("| {name} | {o} | {} |", show(*t));
    }
    Ok(())
}
