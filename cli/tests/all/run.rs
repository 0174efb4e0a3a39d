//! `wasmc run` through the real binary: `--invoke` with i32/i64/f32/f64
//! arguments prints the results one per line; a trap prints the trap and its
//! backtrace and exits non-zero; without `--invoke` the `_start` or `main`
//! export runs; a wrong argument count or type is a clear error; corrupted,
//! truncated, foreign and missing artifacts are errors, never panics or
//! signals (`wasmc run` verifies the content hash before running anything).

use crate::common::{tmp_dir, wasmc, wasmc_compile};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    tmp_dir("run").join(name)
}

/// Compiles `wat` with the `wasmc compile` command into `name` and returns
/// the artifact's path.
fn compile(name: &str, wat: &str, extra: &[&str]) -> PathBuf {
    let src = tmp(&format!("{name}.wat"));
    std::fs::write(&src, wat).unwrap();
    let out = tmp(&format!("{name}.o"));
    wasmc_compile(&src, &out, extra);
    out
}

fn run(artifact: &Path, args: &[&str]) -> (bool, Option<i32>, String, String) {
    let mut all = vec!["run", artifact.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = wasmc(&all);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "wasmc panicked on {args:?}: {stderr}"
    );
    (
        o.status.success(),
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    )
}

const CALC: &str = r#"
(module $calc
  (func $add (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "mul64") (param i64 i64) (result i64)
    (i64.mul (local.get 0) (local.get 1)))
  (func (export "half32") (param f32) (result f32)
    (f32.div (local.get 0) (f32.const 2)))
  (func (export "sqrt64") (param f64) (result f64)
    (f64.sqrt (local.get 0)))
  (func (export "split") (param i64) (result i32 i64 f64)
    (i32.wrap_i64 (local.get 0))
    (i64.shr_u (local.get 0) (i64.const 32))
    (f64.convert_i64_s (local.get 0)))
  (func (export "nothing"))
  (func $inner (param i32) (result i32)
    (i32.div_u (i32.const 10) (local.get 0)))
  (func $crash (export "crash") (param i32) (result i32)
    (i32.add (call $inner (local.get 0)) (i32.const 1)))
  (func $boom (export "boom") (unreachable)))
"#;

#[test]
fn invoke_prints_results_one_per_line() {
    for bounds in ["guard", "explicit"] {
        let a = compile(
            &format!("calc-{bounds}"),
            CALC,
            &["--bounds-checks", bounds],
        );
        let cases: &[(&[&str], &str)] = &[
            (&["--invoke", "add", "40", "2"], "42\n"),
            (&["--invoke", "add", "-5", "3"], "-2\n"),
            // An unsigned spelling of an i32 wraps.
            (&["--invoke", "add", "4294967295", "1"], "0\n"),
            (&["--invoke", "mul64", "4294967296", "-3"], "-12884901888\n"),
            (&["--invoke", "half32", "3"], "1.5\n"),
            (&["--invoke", "half32", "-0.5"], "-0.25\n"),
            (&["--invoke", "sqrt64", "2"], "1.4142135623730951\n"),
            (&["--invoke", "split", "8589934597"], "5\n2\n8589934597\n"),
            (&["--invoke", "nothing"], ""),
        ];
        for (args, want) in cases {
            let (ok, _, stdout, stderr) = run(&a, args);
            assert!(ok, "{args:?}: {stderr}");
            assert_eq!(stdout, *want, "{bounds} {args:?}");
        }
    }
}

#[test]
fn a_trap_prints_the_trap_and_backtrace_and_fails() {
    let a = compile("calc-trap", CALC, &[]);
    let (ok, code, stdout, stderr) = run(&a, &["--invoke", "crash", "0"]);
    assert!(!ok);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert!(stderr.contains("integer divide by zero"), "{stderr}");
    assert!(stderr.contains("wasm backtrace"), "{stderr}");
    let inner = stderr.find("calc!inner").expect("inner frame");
    let crash = stderr.find("calc!crash").expect("crash frame");
    assert!(inner < crash, "innermost frame first: {stderr}");
    // The same function without the trap.
    let (ok, _, stdout, _) = run(&a, &["--invoke", "crash", "5"]);
    assert!(ok);
    assert_eq!(stdout, "3\n");

    let (ok, code, _, stderr) = run(&a, &["--invoke", "boom"]);
    assert!(!ok && code == Some(1));
    assert!(
        stderr.contains("unreachable") && stderr.contains("calc!boom"),
        "{stderr}"
    );
}

#[test]
fn without_invoke_runs_start_or_main() {
    // `_start` wins over `main`.
    let both = compile(
        "both",
        r#"(module (func (export "_start") (result i32) (i32.const 1))
                   (func (export "main") (result i32) (i32.const 2)))"#,
        &[],
    );
    let (ok, _, stdout, stderr) = run(&both, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "1\n");

    let main = compile(
        "main",
        r#"(module (func (export "main") (result i64) (i64.const 832040)))"#,
        &[],
    );
    let (ok, _, stdout, _) = run(&main, &[]);
    assert!(ok);
    assert_eq!(stdout, "832040\n");

    // A start function runs at instantiation; a trapping `_start` fails.
    let start = compile("start", r#"(module (func $s unreachable) (start $s))"#, &[]);
    let (ok, code, _, stderr) = run(&start, &[]);
    assert!(!ok && code == Some(1));
    assert!(
        stderr.contains("instantiating") && stderr.contains("unreachable"),
        "{stderr}"
    );

    // No entry point: nothing runs, success; arguments are an error.
    let none = compile("none", r#"(module (func (export "f")))"#, &[]);
    let (ok, _, stdout, _) = run(&none, &[]);
    assert!(ok);
    assert_eq!(stdout, "");
    let (ok, _, _, stderr) = run(&none, &["1"]);
    assert!(!ok);
    assert!(stderr.contains("no --invoke"), "{stderr}");
}

#[test]
fn wrong_arguments_are_clear_errors() {
    let a = compile("calc-args", CALC, &[]);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--invoke", "add", "1"],
            &[
                "`add`",
                "(i32, i32) -> (i32)",
                "expected 2 arguments, got 1",
            ],
        ),
        (
            &["--invoke", "add", "1", "2", "3"],
            &["expected 2 arguments, got 3"],
        ),
        (
            &["--invoke", "add", "1", "abc"],
            &["argument `abc` is not a valid i32"],
        ),
        (
            &["--invoke", "add", "1", "1.5"],
            &["argument `1.5` is not a valid i32"],
        ),
        (
            &["--invoke", "add", "1", "4294967296"],
            &["argument `4294967296` is not a valid i32"],
        ),
        (
            &["--invoke", "mul64", "1", "x"],
            &["argument `x` is not a valid i64"],
        ),
        (
            &["--invoke", "half32", "one"],
            &["argument `one` is not a valid f32"],
        ),
        (
            &["--invoke", "missing"],
            &["no exported function `missing`"],
        ),
    ];
    for (args, wants) in cases {
        let (ok, code, stdout, stderr) = run(&a, args);
        assert!(!ok && code == Some(1), "{args:?} succeeded");
        assert_eq!(stdout, "", "{args:?}");
        for w in *wants {
            assert!(stderr.contains(w), "{args:?}: `{stderr}` lacks `{w}`");
        }
    }
}

#[test]
fn corrupted_and_foreign_artifacts_are_errors_not_panics() {
    let a = compile("calc-corrupt", CALC, &[]);
    let good = std::fs::read(&a).unwrap();
    let bad = tmp("bad.o");
    // Truncations.
    for n in [0, 10, 64, good.len() / 3, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..n]).unwrap();
        let (ok, code, _, stderr) = run(&bad, &["--invoke", "add", "1", "2"]);
        assert!(!ok && code == Some(1), "truncated to {n} ran");
        assert!(stderr.starts_with("error: loading"), "{stderr}");
    }
    // Bit flips: `wasmc run` checks the content hash, which covers the
    // header, `.text`, the tables and the module info, so a flip there is a
    // load error; a flip elsewhere (symbols, padding) changes nothing that
    // runs, or breaks the ELF container. Never a panic (checked in `run`) or
    // a signal.
    let parsed = wasmc_loader::artifact::ParsedArtifact::parse(&good).unwrap();
    let r = parsed.ranges().clone();
    let hashed = [r.text, r.meta, r.traps, r.stackmaps, r.addrmap, r.data];
    let mut hash_errors = 0;
    for i in (0..good.len()).step_by(23) {
        let mut b = good.clone();
        b[i] ^= 1 << (i % 8);
        std::fs::write(&bad, &b).unwrap();
        let (ok, code, stdout, stderr) = run(&bad, &["--invoke", "add", "1", "2"]);
        assert!(matches!(code, Some(0) | Some(1)), "flip at {i}: {code:?}");
        if hashed.iter().any(|s| s.contains(&i)) {
            assert!(!ok, "flip at {i} in a hashed section ran");
            hash_errors += usize::from(stderr.contains("content hash"));
        } else if ok {
            assert_eq!(stdout, "3\n", "flip at {i}");
        }
    }
    assert!(hash_errors > 20, "{hash_errors}");
    // Not an artifact at all.
    let wat = tmp("calc-src.wat");
    std::fs::write(&wat, CALC).unwrap();
    // A .wat is compiled by `run` itself (issue 12), not refused.
    let (ok, _, stdout, stderr) = run(&wat, &["--invoke", "add", "1", "2"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "3\n");
    for (path, want) in [
        (
            Path::new(env!("CARGO_BIN_EXE_wasmc")),
            "not a wasmc artifact",
        ),
        (Path::new("/nonexistent/app.o"), "/nonexistent/app.o"),
    ] {
        let (ok, code, _, stderr) = run(path, &[]);
        assert!(!ok && code == Some(1));
        assert!(stderr.contains(want), "{}: {stderr}", path.display());
    }
    // An artifact for another architecture names the field.
    let other = if cfg!(target_arch = "aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let foreign = compile("calc-foreign", CALC, &["--target", other]);
    let (ok, _, _, stderr) = run(&foreign, &["--invoke", "add", "1", "2"]);
    assert!(!ok);
    assert!(stderr.contains("architecture"), "{stderr}");
}

// ----- interruption: --timeout and --fuel -----

const SPIN: &str = r#"
(module $spin
  (func $spin (export "spin") (loop (br 0)))
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
"#;

#[test]
fn timeout_stops_an_infinite_loop_in_wat_and_in_an_artifact() {
    let src = tmp("spin_timeout.wat");
    std::fs::write(&src, SPIN).unwrap();
    let artifact = compile("spin_epochs", SPIN, &["--epoch-interruption"]);
    for input in [&src, &artifact] {
        let t0 = std::time::Instant::now();
        let (ok, code, _, err) = run(input, &["--timeout", "1s", "--invoke", "spin"]);
        let took = t0.elapsed();
        assert!(!ok);
        assert_eq!(code, Some(124), "{err}");
        assert!(
            err.contains("interrupted") && err.contains("--timeout 1s"),
            "{err}"
        );
        assert!(err.contains("wasm trap: interrupt"), "{err}");
        assert!(took >= std::time::Duration::from_secs(1), "{took:?}");
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
    // A guest that finishes in time is not disturbed.
    let (ok, _, out, err) = run(&src, &["--timeout", "10s", "--invoke", "add", "2", "3"]);
    assert!(ok, "{err}");
    assert_eq!(out, "5\n");
}

#[test]
fn fuel_stops_an_infinite_loop_in_wat_and_in_an_artifact() {
    let src = tmp("spin_fuel.wat");
    std::fs::write(&src, SPIN).unwrap();
    let artifact = compile("spin_fuel", SPIN, &["--fuel"]);
    for input in [&src, &artifact] {
        let (ok, code, _, err) = run(input, &["--fuel", "10000", "--invoke", "spin"]);
        assert!(!ok);
        assert_eq!(code, Some(125), "{err}");
        assert!(
            err.contains("out of fuel") && err.contains("10000"),
            "{err}"
        );
        assert!(err.contains("all fuel consumed"), "{err}");
        let (ok, _, out, err) = run(input, &["--fuel", "3", "--invoke", "add", "2", "3"]);
        assert!(ok, "{err}");
        assert_eq!(out, "5\n");
    }
}

#[test]
fn timeout_or_fuel_on_an_artifact_without_the_checks_is_a_clear_error() {
    let plain = compile("spin_plain", SPIN, &[]);
    let (ok, code, _, err) = run(&plain, &["--timeout", "1s", "--invoke", "spin"]);
    assert!(!ok);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("without epoch checks") && err.contains("--epoch-interruption"),
        "{err}"
    );
    let (ok, _, _, err) = run(&plain, &["--fuel", "100", "--invoke", "spin"]);
    assert!(!ok);
    assert!(
        err.contains("without fuel counting") && err.contains("--fuel"),
        "{err}"
    );
    let (ok, _, _, err) = run(&plain, &["--timeout", "5", "--invoke", "spin"]);
    assert!(!ok);
    assert!(err.contains("no unit"), "{err}");
}
