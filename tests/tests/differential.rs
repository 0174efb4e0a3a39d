//! Differential execution against the `wasmi` interpreter: a bounded run of
//! fixed seeds in `make test` (see `wasmc_tests::fuzz::differential`).

use std::process::Command;
use wasmc_tests::fuzz::differential::Profile;

/// Seeds 1 to 500: 176 of the 2.0 profile, 230 of the 3.0 one and
/// 94 of the edges one (all with both optimization levels and bounds-check
/// strategies, some with fuel and epochs, some pooled). Fewer than the
/// 1,500 of the 2.0 profile alone this test ran before: a 3.0 or edges
/// module always has functions and a memory (most 2.0 seeds make an empty
/// module), so a case costs about three times as much, and the test keeps
/// its time (about 3.5 s on an idle machine).
#[test]
fn differential_fuzz_bounded() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmc-fuzz"))
        .args(["diff", "--cases", "500", "--seed", "1", "--jobs", "2"])
        .arg("--out")
        .arg(concat!(env!("CARGO_TARGET_TMPDIR"), "/fuzz-failures"))
        .output()
        .expect("run wasmc-fuzz");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Most cases must be judged, not skipped.
    let skipped: u64 = stdout
        .split(", ")
        .find_map(|p| {
            p.split_once(" skipped")
                .and_then(|(n, _)| n.trim().parse().ok())
        })
        .unwrap_or(u64::MAX);
    assert!(skipped < 50, "too many skipped: {stdout}");
}

/// A handwritten module whose exports reach every kind of compared state
/// (results with a NaN and a v128, a trap, a memory, a global, a table)
/// gives the same answers in both engines.
#[test]
fn differential_compares_results_memories_and_globals() {
    let wasm = wat::parse_str(
        r#"(module
          (memory (export "m") 1)
          (global $g (export "g") (mut i64) (i64.const 7))
          (table (export "t") 2 funcref)
          (func (export "f") (param i32 f32) (result i32 f32 v128)
            (i32.store (i32.const 8) (local.get 0))
            (global.set $g (i64.extend_i32_u (local.get 0)))
            (local.get 0) (f32.div (local.get 1) (f32.const 0)) (v128.const i32x4 1 2 3 4))
          (func (export "trap") (i32.div_u (i32.const 1) (i32.const 0)) drop))"#,
    )
    .unwrap();
    match wasmc_tests::fuzz::differential::run_module(7, &wasm) {
        wasmc_tests::fuzz::Outcome::Pass => {}
        other => panic!("{other:?}"),
    }
}

/// Cases the fuzzer reported where the engines only name the same outcome
/// differently; each must compare equal (and keeps the mapping honest):
/// a `table.copy` out of bounds (wasmi 1.0: a table error, not a trap code).
/// These seeds were reported before there were profiles: they are run in
/// the 2.0 profile, which makes the modules they made then.
#[test]
fn differential_regressions() {
    for seed in [1_006_267, 1_007_669, 1_009_273] {
        match wasmc_tests::fuzz::differential::run_profile(seed, Profile::Wasm2) {
            wasmc_tests::fuzz::Outcome::Pass => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    // The first reports, as modules: `call_indirect` past the end of its
    // table (wasmc: "undefined element", wasmi: table out of bounds), and an
    // active data segment out of bounds (wasmc: an instantiation error with
    // the trap's text, wasmi: a trap).
    for text in [
        r#"(module (type $t (func)) (table 1 funcref)
             (func (export "f") (call_indirect (type $t) (i32.const 5))))"#,
        r#"(module (table 2 externref)
             (func (export "f") (table.copy (i32.const 1) (i32.const 0) (i32.const 2))))"#,
        r#"(module (memory 1) (data (i32.const 65535) "ab"))"#,
    ] {
        let wasm = wat::parse_str(text).unwrap();
        match wasmc_tests::fuzz::differential::run_module(1, &wasm) {
            wasmc_tests::fuzz::Outcome::Pass => {}
            other => panic!("{text}: {other:?}"),
        }
    }
}

/// The 3.0 profile reaches every feature it is there for: among the first
/// 100 seeds' modules are 64-bit memories and tables, several memories, an
/// access to a memory other than the first, `return_call`,
/// `return_call_indirect` and extended constant expressions.
#[test]
fn differential_3_0_profile_reaches_its_features() {
    use wasmc_tests::fuzz::differential::{module_of, Profile};
    use wasmparser::{Operator, Payload};
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..100 {
        let Some(wasm) = module_of(seed, Profile::Wasm3) else {
            continue;
        };
        let mut memories = 0;
        for p in wasmparser::Parser::new(0).parse_all(&wasm) {
            match p.unwrap() {
                Payload::MemorySection(r) => {
                    for m in r {
                        memories += 1;
                        if m.unwrap().memory64 {
                            seen.insert("64-bit memory");
                        }
                    }
                }
                Payload::TableSection(r) => {
                    for t in r {
                        if t.unwrap().ty.table64 {
                            seen.insert("64-bit table");
                        }
                    }
                }
                Payload::GlobalSection(r) => {
                    for g in r {
                        let ops = g.unwrap().init_expr.get_operators_reader();
                        if ops
                            .into_iter()
                            .any(|o| matches!(o.unwrap(), Operator::I32Add | Operator::I64Mul))
                        {
                            seen.insert("extended constant");
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    for op in body.get_operators_reader().unwrap() {
                        match op.unwrap() {
                            Operator::ReturnCall { .. } => seen.insert("return_call"),
                            Operator::ReturnCallIndirect { .. } => {
                                seen.insert("return_call_indirect")
                            }
                            Operator::I32Load { memarg } | Operator::I64Store { memarg }
                                if memarg.memory > 0 =>
                            {
                                seen.insert("second memory")
                            }
                            _ => false,
                        };
                    }
                }
                _ => {}
            }
        }
        if memories > 1 {
            seen.insert("several memories");
        }
    }
    let want = [
        "64-bit memory",
        "64-bit table",
        "extended constant",
        "return_call",
        "return_call_indirect",
        "second memory",
        "several memories",
    ];
    for w in want {
        assert!(seen.contains(w), "no {w} in 100 modules: {seen:?}");
    }
}

/// The rewrite into extended constant expressions keeps every value: a
/// global, a data offset of a 64-bit memory and an element offset of a
/// 64-bit table read back the same through wasmc, for many rewrites.
#[test]
fn differential_extended_constants_keep_their_values() {
    use wasmc_loader::Val;
    use wasmc_tests::fuzz::{differential::rewrite, Rng};
    let wasm = wat::parse_str(
        r#"(module
          (memory (export "m") i64 1)
          (table (export "t") i64 4 funcref)
          (func $f)
          (global (export "a") i32 (i32.const -123456789))
          (global (export "b") i64 (i64.const 0x7edc_ba98_7654_3210))
          (global (export "fuel") (mut i32) (i32.const 5))
          (data (i64.const 65530) "abcdef")
          (elem (table 0) (i64.const 3) func $f))"#,
    )
    .unwrap();
    for seed in 0..50 {
        let w = rewrite(&wasm, Rng::new(seed), Some(2)).unwrap();
        let art = wasmc_compiler::compile(&w, &Default::default()).unwrap();
        let engine = wasmc_tests::engine();
        let m = wasmc_loader::Module::from_bytes(engine, &art).unwrap();
        let mut s = wasmc_loader::Store::new(engine, ());
        let i = wasmc_loader::Linker::new(engine)
            .instantiate(&mut s, &m)
            .unwrap();
        let mut g = |n: &str| i.get_global(&mut s, n).unwrap().get(&mut s);
        assert!(matches!(g("a"), Val::I32(-123456789)), "seed {seed}");
        assert!(
            matches!(g("b"), Val::I64(0x7edc_ba98_7654_3210)),
            "seed {seed}"
        );
        assert!(matches!(g("\0fuel"), Val::I32(5)), "seed {seed}");
        let mem = i.get_memory(&mut s, "m").unwrap();
        assert_eq!(&mem.data(&s)[65530..], b"abcdef");
        let t = i.get_table(&mut s, "t").unwrap();
        assert!(matches!(t.get(&mut s, 3), Some(Val::FuncRef(Some(_)))));
    }
}

/// Out-of-bounds accesses to a 32-bit and a 64-bit memory, just past the
/// end and far away, pass the missing-bounds-check oracle under both
/// strategies (seed 6 compiles with explicit checks, seed 7 with guard
/// pages): the guard-mode faults of the 32-bit memory are legitimate, and
/// every other trap comes from a check, not from a guard region.
#[test]
fn differential_accepts_checked_out_of_bounds_traps() {
    let wasm = wat::parse_str(
        r#"(module
          (memory $m32 (export "m32") 1)
          (memory $m64 (export "m64") i64 1)
          (func (export "end32") (result i32) (i32.load $m32 (i32.const 65534)))
          (func (export "far32") (result i32) (i32.load $m32 offset=4096 (i32.const -1)))
          (func (export "end64") (result i32) (i32.load $m64 (i64.const 65534)))
          (func (export "far64") (result i32) (i32.load $m64 (i64.const 0x1_0000_0000))))"#,
    )
    .unwrap();
    for seed in [6, 7] {
        assert_eq!(
            wasmc_tests::fuzz::differential::options(seed).memory,
            if seed == 6 {
                wasmc_compiler::MemoryStrategy::Explicit
            } else {
                wasmc_compiler::MemoryStrategy::Guard
            }
        );
        match wasmc_tests::fuzz::differential::run_module(seed, &wasm) {
            wasmc_tests::fuzz::Outcome::Pass => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }
}
