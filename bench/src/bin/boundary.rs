//! Host <-> Wasm boundary crossings, wasmc against Wasmtime 25, with
//! sub-nanosecond resolution (the main benchmark's rows are whole
//! nanoseconds per call).
//!
//! `cargo run --release --bin boundary [-- ROUNDS]` (here, in `bench/`).
//! Each round times every row on both runtimes, alternating, for 0.5 s each
//! (median of batches of 1,000 calls); the table shows each row's lowest
//! and highest round median, so a shared, noisy machine shows up as a wide
//! range in both columns rather than as a false difference.
//!
//! - `host -> Wasm`: a typed call of an `i32 -> i32` identity function;
//! - `Wasm -> host, typed`: one call of a Wasm loop making 1,000 calls to a
//!   `Func::wrap` `i32 -> i32` host function, per call;
//! - `Wasm -> host, dynamic`: the same with a `Func::new` (`Val`) host
//!   function.

#[path = "../harness.rs"]
mod harness;

use anyhow::Result;
use std::hint::black_box;
use std::time::Duration;

const MODULE: &str = r#"
(module
  (import "host" "id" (func $host_id (param i32) (result i32)))
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

/// Calls per timed iteration.
const N: i32 = 1000;

/// Median time of one of `N` calls made by `f`, in nanoseconds, from 0.5 s
/// of samples.
fn per_call(mut f: impl FnMut()) -> f64 {
    let mut s = harness::samples(Duration::from_millis(500), &mut f);
    s.sort();
    s[s.len() / 2].as_secs_f64() * 1e9 / f64::from(N)
}

type Bench<'a> = Box<dyn FnMut() -> f64 + 'a>;

fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(Ok(5), |s| s.parse())
        .unwrap_or(5);
    let sum = N * (N + 1) / 2;

    // wasmc
    use wasmc_loader as wc;
    let opts = wasmc_compiler::CompileOptions::default();
    let engine = wc::Engine::default();
    let module =
        wc::Module::from_bytes(&engine, &wasmc_compiler::compile(MODULE.as_bytes(), &opts)?)?;
    let mut s = wc::Store::new(&engine, ());
    let f = wc::Func::wrap(&mut s, |x: i32| x);
    let i = wc::Instance::new(&mut s, &module, &[f.into()])?;
    let id = i.get_typed_func::<i32, i32>(&mut s, "id")?;
    // A second store for the Wasm -> host row (each row's closure borrows
    // its store mutably).
    let mut s2 = wc::Store::new(&engine, ());
    let f = wc::Func::wrap(&mut s2, |x: i32| x);
    let i2 = wc::Instance::new(&mut s2, &module, &[f.into()])?;
    let call_host = i2.get_typed_func::<i32, i32>(&mut s2, "call_host")?;
    assert_eq!(call_host.call(&mut s2, N)?, sum);
    let mut ds = wc::Store::new(&engine, ());
    let ty = wc::FuncType {
        params: vec![wc::ValType::I32],
        results: vec![wc::ValType::I32],
    };
    let f = wc::Func::new(&mut ds, ty, |_, p, r| {
        r[0] = p[0].clone();
        Ok(())
    });
    let di = wc::Instance::new(&mut ds, &module, &[f.into()])?;
    let dcall_host = di.get_typed_func::<i32, i32>(&mut ds, "call_host")?;
    assert_eq!(dcall_host.call(&mut ds, N)?, sum);

    // Wasmtime
    let wengine = wasmtime::Engine::default();
    let wmodule = wasmtime::Module::new(&wengine, wat::parse_str(MODULE)?)?;
    let mut ws = wasmtime::Store::new(&wengine, ());
    let f = wasmtime::Func::wrap(&mut ws, |x: i32| x);
    let wi = wasmtime::Instance::new(&mut ws, &wmodule, &[f.into()])?;
    let wid = wi.get_typed_func::<i32, i32>(&mut ws, "id")?;
    let mut ws2 = wasmtime::Store::new(&wengine, ());
    let f = wasmtime::Func::wrap(&mut ws2, |x: i32| x);
    let wi2 = wasmtime::Instance::new(&mut ws2, &wmodule, &[f.into()])?;
    let wcall_host = wi2.get_typed_func::<i32, i32>(&mut ws2, "call_host")?;
    assert_eq!(wcall_host.call(&mut ws2, N)?, sum);
    let mut wds = wasmtime::Store::new(&wengine, ());
    let ty = wasmtime::FuncType::new(&wengine, [wasmtime::ValType::I32], [wasmtime::ValType::I32]);
    let f = wasmtime::Func::new(&mut wds, ty, |_, p, r| {
        r[0] = p[0];
        Ok(())
    });
    let wdi = wasmtime::Instance::new(&mut wds, &wmodule, &[f.into()])?;
    let wdcall_host = wdi.get_typed_func::<i32, i32>(&mut wds, "call_host")?;
    assert_eq!(wdcall_host.call(&mut wds, N)?, sum);

    let rows: Vec<(&str, Bench<'_>, Bench<'_>)> = vec![
        (
            "host -> Wasm, typed i32 -> i32",
            Box::new(|| {
                per_call(|| {
                    for _ in 0..N {
                        black_box(id.call(&mut s, black_box(7)).unwrap());
                    }
                })
            }),
            Box::new(|| {
                per_call(|| {
                    for _ in 0..N {
                        black_box(wid.call(&mut ws, black_box(7)).unwrap());
                    }
                })
            }),
        ),
        (
            "Wasm -> host, typed `Func::wrap`",
            Box::new(|| {
                per_call(|| {
                    black_box(call_host.call(&mut s2, black_box(N)).unwrap());
                })
            }),
            Box::new(|| {
                per_call(|| {
                    black_box(wcall_host.call(&mut ws2, black_box(N)).unwrap());
                })
            }),
        ),
        (
            "Wasm -> host, dynamic `Func::new`",
            Box::new(|| {
                per_call(|| {
                    black_box(dcall_host.call(&mut ds, black_box(N)).unwrap());
                })
            }),
            Box::new(|| {
                per_call(|| {
                    black_box(wdcall_host.call(&mut wds, black_box(N)).unwrap());
                })
            }),
        ),
    ];
    // The rows borrow the stores mutably, so run them one row at a time,
    // alternating runtimes within each round.
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); rows.len()];
    let mut rows = rows;
    // For profiling one side of one row: `BOUNDARY_ROW=0` (the row's
    // index), `BOUNDARY_SIDE=wasmc` or `wasmtime`.
    let only_row: Option<usize> = std::env::var("BOUNDARY_ROW")
        .ok()
        .and_then(|s| s.parse().ok());
    let side = std::env::var("BOUNDARY_SIDE").unwrap_or_default();
    for _ in 0..rounds {
        for (k, (_, ours, theirs)) in rows.iter_mut().enumerate() {
            if only_row.is_some_and(|r| r != k) {
                continue;
            }
            if side != "wasmtime" {
                results[k].0.push(ours());
            }
            if side != "wasmc" {
                results[k].1.push(theirs());
            }
        }
    }
    let range = |v: &[f64]| {
        if v.is_empty() {
            return "-".to_string();
        }
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(0.0, f64::max);
        format!("{lo:.2}-{hi:.2} ns")
    };
    println!("| per call ({rounds} rounds, min-max of round medians) | wasmc | wasmtime 25 |");
    println!("|---|---:|---:|");
    for (k, (name, _, _)) in rows.iter().enumerate() {
        println!(
            "| {name} | {} | {} |",
            range(&results[k].0),
            range(&results[k].1)
        );
    }
    Ok(())
}
