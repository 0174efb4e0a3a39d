//! Differential execution against the `wasmi` interpreter: a bounded run of
//! fixed seeds in `make test` (see `wasmc_tests::fuzz::differential`).

use std::process::Command;
use wasmc_tests::fuzz::differential::Profile;

#[test]
fn differential_fuzz_bounded() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmc-fuzz"))
        .args(["diff", "--cases", "1500", "--seed", "1", "--jobs", "2"])
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
    assert!(skipped < 150, "too many skipped: {stdout}");
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
